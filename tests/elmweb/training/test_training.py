"""Stage 2 in the lab: dataset downloads, training jobs through the API, the job itself, its WebSocket."""

from __future__ import annotations

import json
import time
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from elmweb.runs import services as run_services
from elmweb.training import services
from elmweb.training.consumers import TrainingConsumer
from elmweb.training.models import TrainedModel
from tests.elmweb.training.conftest import logged_in, post
from tests.evolution.mutation.tiny_model import build_tiny_model

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A tiny random GPT-2 whose samples end quickly (a stand-in base model, no download)."""
    return build_tiny_model(tmp_path_factory.mktemp("base"), eos_bias=4.0)


def test_the_dataset_download_keeps_programs_near_their_niche_best(user, finished_run) -> None:
    answer = logged_in(user).get(f"/api/models/dataset?runs={finished_run.pk}&threshold=0.5&heldout=0")
    assert answer.status_code == 200
    assert answer["Content-Disposition"] == f'attachment; filename="dataset-runs-{finished_run.pk}-t0.5.jsonl"'
    lines = [json.loads(line) for line in answer.content.decode().splitlines()]
    assert lines and all(r["fitness"] >= 0.5 * r["best_in_cell"] for r in lines)
    assert len({r["text"].strip() for r in lines}) == len(lines)
    assert {r["run"] for r in lines} == {f"run {finished_run.pk}"}


def test_the_dataset_of_an_unknown_run_is_a_400_that_names_it(user) -> None:
    answer = logged_in(user).get("/api/models/dataset?runs=999")
    assert answer.status_code == 400
    assert "no run with id 999" in answer.json()["error"]


def test_anonymous_users_cannot_start_training(finished_run) -> None:
    assert post(Client(), "/api/models", {"runs": [finished_run.pk]}).status_code == 401


def test_a_bad_threshold_is_refused_next_to_the_field(user, finished_run, tiny_base) -> None:
    answer = post(logged_in(user), "/api/models", {"runs": [finished_run.pk], "threshold": 2, "base": str(tiny_base)})
    assert answer.status_code == 400
    assert "threshold" in answer.json()["fields"]


def test_a_missing_base_model_is_refused_with_how_to_build_it(user, finished_run, tmp_path) -> None:
    answer = post(logged_in(user), "/api/models", {"runs": [finished_run.pk], "base": str(tmp_path / "none")})
    assert answer.status_code == 400
    assert "make train-mutator" in answer.json()["fields"]["base"][0]


def test_starting_training_queues_a_train_task_and_records_the_dataset(user, finished_run, tiny_base, queued) -> None:
    answer = post(logged_in(user), "/api/models", {"runs": [finished_run.pk], "base": str(tiny_base), "threshold": 0.5})
    assert answer.status_code == 201, answer.content
    job = answer.json()
    assert job["status"] == "queued" and job["runs"] == [finished_run.pk]
    records = services.dataset([finished_run.pk], threshold=0.5, heldout=0.1)
    assert job["dataset_programs"] + job["dataset_heldout"] == len(records) > 0
    assert queued == [(job["id"], "train")]


def start_job(user, run, base, **options) -> TrainedModel:
    with mock.patch("elmweb.training.tasks.train_model.apply_async"):
        return services.model_create(owner=user, runs=[run.pk], base=str(base), heldout=0.0, **options)


def test_a_training_job_trains_saves_and_evaluates_its_model(user, finished_run, tiny_base, settings) -> None:
    job = start_job(user, finished_run, tiny_base, max_steps=3, samples=3, minutes=1)
    assert services.model_train(model_id=job.pk) == "done"
    job.refresh_from_db()
    assert job.status == "done" and job.error == "" and job.progress == 1.0
    assert [p["step"] for p in job.loss] == [1, 2, 3]
    assert job.path == str(settings.MODELS_DIR / f"model-{job.pk}" / "model")
    assert json.loads((settings.MODELS_DIR / f"model-{job.pk}" / "model" / "training_log.json").read_text())["steps"] == 3
    assert job.evaluation["samples"] == 3 and "archive" in job.evaluation
    detail = logged_in(user).get(f"/api/models/{job.pk}").json()
    assert detail["evaluation"]["samples"] == 3 and "archive" not in detail["evaluation"]
    assert logged_in(user).get(f"/api/models/{job.pk}/evaluation").json()["archive"]["elites"] is not None
    # selectable as a run's mutation model
    run = run_services.run_create(owner=user, seed="square", mutation="diff", model=job.path, evals=10)
    assert run.model == job.path


def test_a_cancel_during_training_stops_after_the_step_and_keeps_the_model(user, finished_run, tiny_base) -> None:
    job = start_job(user, finished_run, tiny_base, max_steps=50, samples=2)
    TrainedModel.objects.filter(pk=job.pk).update(cancel_requested=True)  # arrives once training has begun
    assert services.model_train(model_id=job.pk) == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.path and job.evaluation is None


def test_cancelling_a_queued_job_ends_it_at_once_and_a_second_cancel_is_a_409(user, finished_run, tiny_base, other_user) -> None:
    job = start_job(user, finished_run, tiny_base)
    assert post(logged_in(other_user), f"/api/models/{job.pk}/cancel").status_code == 403
    answer = post(logged_in(user), f"/api/models/{job.pk}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert post(logged_in(user), f"/api/models/{job.pk}/cancel").status_code == 409
    assert services.model_train(model_id=job.pk) == "cancelled"  # a late task does nothing


def test_a_job_whose_base_model_vanished_fails_with_the_reason_and_the_worker_goes_on(user, finished_run, tmp_path) -> None:
    base = build_tiny_model(tmp_path / "doomed")
    job = start_job(user, finished_run, base, max_steps=2)
    for f in base.iterdir():
        f.unlink()
    assert services.model_train(model_id=job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "doomed" in job.error


def test_the_websocket_streams_status_and_loss_then_closes_when_the_job_ends(user, finished_run, tiny_base) -> None:
    job = start_job(user, finished_run, tiny_base, max_steps=2, samples=2)
    services.model_train(model_id=job.pk)

    async def scenario() -> list[dict[str, Any]]:
        comm = WebsocketCommunicator(TrainingConsumer.as_asgi(), f"/ws/models/{job.pk}/")
        comm.scope["user"] = user
        comm.scope["url_route"] = {"kwargs": {"model_id": job.pk}}
        connected, _ = await comm.connect()
        assert connected
        first = await comm.receive_json_from(timeout=5)
        closed = await comm.receive_output(timeout=5)
        return [first, closed]

    first, closed = async_to_sync(scenario)()
    assert first["status"] == "done" and [p["step"] for p in first["loss"]] == [1, 2]
    assert first["evaluation"]["samples"] == 2 and "archive" not in first["evaluation"]
    assert closed["type"] == "websocket.close"


def test_the_websocket_refuses_anonymous_clients() -> None:
    from django.contrib.auth.models import AnonymousUser

    async def scenario() -> Any:
        comm = WebsocketCommunicator(TrainingConsumer.as_asgi(), "/ws/models/1/")
        comm.scope["user"] = AnonymousUser()
        comm.scope["url_route"] = {"kwargs": {"model_id": 1}}
        return await comm.connect()

    connected, code = async_to_sync(scenario)()
    assert not connected and code == 4401


def test_staff_see_trained_models_in_the_admin_read_only(django_user_model, user, finished_run, tiny_base) -> None:
    admin = django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    job = start_job(user, finished_run, tiny_base)
    client = logged_in(admin)
    assert client.get("/admin/training/trainedmodel/").status_code == 200
    page = client.get(f"/admin/training/trainedmodel/{job.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_the_watchdog_fails_a_training_job_whose_worker_stopped_and_leaves_live_ones(user, finished_run, tiny_base, settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    settings.TRAIN_STALE_AFTER_S = 60
    dead, alive, queued = (start_job(user, finished_run, tiny_base) for _ in range(3))
    long_ago = timezone.now() - timedelta(seconds=120)
    TrainedModel.objects.filter(pk=dead.pk).update(status="training", updated_at=long_ago)
    TrainedModel.objects.filter(pk=alive.pk).update(status="evaluating", updated_at=timezone.now())
    TrainedModel.objects.filter(pk=queued.pk).update(updated_at=long_ago)
    assert services.models_recover_stale() == [dead.pk]
    statuses = dict(TrainedModel.objects.values_list("pk", "status"))
    assert (statuses[dead.pk], statuses[alive.pk], statuses[queued.pk]) == ("failed", "evaluating", "queued")
    assert "start the training again" in TrainedModel.objects.get(pk=dead.pk).error
    assert services.models_recover_stale() == []


def test_a_training_job_touches_its_row_while_it_runs(user, finished_run, tiny_base, settings) -> None:
    settings.TRAIN_HEARTBEAT_S = 0.05
    job = start_job(user, finished_run, tiny_base)
    before = TrainedModel.objects.get(pk=job.pk).updated_at
    with services._Heartbeat(job.pk):
        time.sleep(0.3)
    assert TrainedModel.objects.get(pk=job.pk).updated_at > before
