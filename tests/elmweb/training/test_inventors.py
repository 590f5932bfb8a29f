"""Stage 3 in the lab: starting an inventor from a stage-2 model, the job, its rewards over the
WebSocket (through the real ASGI app), its evaluation and the replays of its walkers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from elmweb.asgi import application
from elmweb.training import services
from elmweb.training.models import TrainedModel
from evolution.lm.dataset import ProgramRecord, write_dataset
from evolution.sodarace import DEFAULT_SETTINGS, build_walker, seeds, simulate
from tests.elmweb.training.conftest import logged_in, post
from tests.evolution.mutation.tiny_model import build_tiny_model

pytestmark = pytest.mark.django_db(transaction=True)

SQUARE = seeds.get_seed("square").program
TINY = {"iterations": 2, "batch_size": 3, "max_new_tokens": 12, "sim_seconds": 1.0, "samples": 2, "conditional": 2}
"""A stage-3 job that takes seconds: two PPO iterations of one program per terrain."""


@pytest.fixture(scope="module")
def stage2_folder(tmp_path_factory):
    """A stage-2 model folder as a stage-2 job leaves it: a tiny random GPT-2 whose training log
    names its dataset (one program: the Square seed, which walks on every terrain)."""
    root = tmp_path_factory.mktemp("stage2")
    folder = build_tiny_model(root / "model", eos_bias=4.0)
    data = write_dataset([ProgramRecord(SQUARE, (0, 0, 0), 1.0, 1.0, "run 1", 1)], root / "dataset.jsonl")
    (folder / "training_log.json").write_text(json.dumps({"steps": 2, "stage2": {"dataset": str(data)}}))
    return folder


@pytest.fixture
def stage2(user, finished_run, stage2_folder) -> TrainedModel:
    """A finished stage-2 model of ``finished_run``."""
    job = TrainedModel.objects.create(owner=user, base=str(stage2_folder), status="done", progress=1.0,
                                      path=str(stage2_folder), evaluation={"samples": 2, "valid_rate": 0.5, "niches": 1})
    job.runs.set([finished_run])
    return job


def start_inventor(user, stage2: TrainedModel, **options) -> TrainedModel:
    with mock.patch("elmweb.training.tasks.train_model.apply_async"):
        return services.inventor_create(owner=user, parent_id=stage2.pk, **{**TINY, **options})


def evaluated(stage2: TrainedModel, user, **programs: list[dict[str, Any]]) -> TrainedModel:
    """A finished inventor whose evaluation kept ``programs`` per source on the tunnel."""
    row = {"conditional": {"n": 2, "median": 0.0, "best": 0.0, "programs": programs.get("conditional", [])},
           "stage2": {"n": 2, "best": 0.0, "programs": programs.get("stage2", [])},
           "dataset": {"n": 1, "best": 1.0, "programs": programs.get("dataset", [])}, "beats": False}
    return TrainedModel.objects.create(owner=user, stage=3, parent=stage2, base=stage2.path, terrain_set="walls-tunnel",
                                       status="done", sim_seconds=1.0,
                                       evaluation={"terrains": {"tunnel": row}, "beats": 0, "total": 1, "samples": 2})


# -- starting stage 3 --------------------------------------------------------------------------
def test_starting_stage3_from_a_finished_model_queues_a_train_task_with_small_defaults(user, stage2, queued) -> None:
    answer = post(logged_in(user), f"/api/models/{stage2.pk}/stage3", {"terrain_set": "walls-bumpy"})
    assert answer.status_code == 201, answer.content
    job = answer.json()
    assert (job["stage"], job["parent"], job["status"]) == (3, stage2.pk, "queued")
    assert job["terrains"] == ["left-wall", "right-wall", "bumpy"]
    assert job["base"] == stage2.path and job["runs"] == sorted(stage2.runs.values_list("pk", flat=True))
    assert {k: job[k] for k in services.INVENTOR_DEFAULTS if k != "terrain_set"} == {
        k: v for k, v in services.INVENTOR_DEFAULTS.items() if k != "terrain_set"}
    assert queued == [(job["id"], "train")]


def test_an_unknown_terrain_set_is_refused_next_to_the_field(user, stage2, queued) -> None:
    answer = post(logged_in(user), f"/api/models/{stage2.pk}/stage3", {"terrain_set": "lava"})
    assert answer.status_code == 400
    assert "terrain_set" in answer.json()["fields"] and queued == []


def test_fewer_programs_per_iteration_than_terrains_are_refused_next_to_the_batch_size(user, stage2) -> None:
    answer = post(logged_in(user), f"/api/models/{stage2.pk}/stage3", {"batch_size": 2})
    assert answer.status_code == 400
    assert "at least 3" in answer.json()["fields"]["batch_size"][0]


@pytest.mark.parametrize("field, value", [("iterations", 0), ("minutes", -1), ("samples", "many"), ("sim_seconds", 0)])
def test_a_setting_out_of_bounds_is_refused_next_to_its_field(user, stage2, field, value) -> None:
    answer = post(logged_in(user), f"/api/models/{stage2.pk}/stage3", {field: value})
    assert answer.status_code == 400
    assert list(answer.json()["fields"]) == [field]


def test_stage3_waits_for_the_stage2_model_to_finish_training(user, stage2) -> None:
    TrainedModel.objects.filter(pk=stage2.pk).update(status="training")
    answer = post(logged_in(user), f"/api/models/{stage2.pk}/stage3")
    assert answer.status_code == 409
    assert "wait until it is done" in answer.json()["error"]


def test_stage3_does_not_start_from_an_inventor(user, stage2) -> None:
    inventor = evaluated(stage2, user)
    answer = post(logged_in(user), f"/api/models/{inventor.pk}/stage3")
    assert answer.status_code == 400
    assert "starts from a stage-2 model" in answer.json()["error"]


def test_stage3_from_a_model_whose_folder_is_gone_says_to_train_it_again(user, stage2, tmp_path) -> None:
    TrainedModel.objects.filter(pk=stage2.pk).update(path=str(tmp_path / "gone"))
    answer = post(logged_in(user), f"/api/models/{stage2.pk}/stage3")
    assert answer.status_code == 400
    assert "train the stage-2 model again" in answer.json()["error"]


def test_stage3_of_an_unknown_model_is_a_404_and_anonymous_users_cannot_start_it(user, stage2) -> None:
    assert post(logged_in(user), "/api/models/999/stage3").status_code == 404
    assert post(Client(), f"/api/models/{stage2.pk}/stage3").status_code == 401
    assert logged_in(user).get(f"/api/models/{stage2.pk}/stage3").status_code == 405


# -- the job -----------------------------------------------------------------------------------
def test_a_stage3_job_trains_the_inventor_records_rewards_and_evaluates_it_on_each_terrain(user, stage2, settings) -> None:
    job = start_inventor(user, stage2, terrain_set="walls-tunnel")
    assert services.model_train(model_id=job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.error, job.progress) == ("done", "", 1.0)
    assert job.path == str(settings.MODELS_DIR / f"model-{job.pk}" / "model")
    assert [p["iteration"] for p in job.rewards] == [1, 2]
    assert all(set(p["terrains"]) == {"left-wall", "right-wall", "tunnel"} for p in job.rewards)
    assert set(job.rewards[0]["terrains"]["tunnel"]) == {"score", "valid_rate", "best"}

    evaluation = logged_in(user).get(f"/api/models/{job.pk}/evaluation").json()
    assert evaluation["total"] == 3 and evaluation["samples"] == 2
    for terrain, row in evaluation["terrains"].items():
        assert row["conditional"]["n"] == 2 and row["stage2"]["n"] == 2
        # the dataset's Square walks; its program is kept for the replay, farthest first
        walked = simulate(build_walker(SQUARE), terrain, DEFAULT_SETTINGS.with_(sim_seconds=1.0)).fitness
        assert row["dataset"]["programs"] == [{"text": SQUARE, "distance": pytest.approx(walked)}]
    summary = logged_in(user).get(f"/api/models/{job.pk}").json()["evaluation"]
    assert "distances" not in json.dumps(summary) and "programs" not in json.dumps(summary)
    assert summary["terrains"]["tunnel"]["dataset"]["best"] == pytest.approx(evaluation["terrains"]["tunnel"]["dataset"]["best"])


def test_a_cancel_during_stage3_stops_after_the_iteration_and_keeps_the_inventor(user, stage2) -> None:
    job = start_inventor(user, stage2, iterations=50)
    TrainedModel.objects.filter(pk=job.pk).update(cancel_requested=True)  # arrives once training has begun
    assert services.model_train(model_id=job.pk) == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and len(job.rewards) == 1 and job.evaluation is None
    assert (django_settings.MODELS_DIR / f"model-{job.pk}" / "model" / "ten.pt").is_file()


def test_a_stage3_job_whose_stage2_model_vanished_fails_with_the_reason(user, stage2, tmp_path) -> None:
    doomed = tmp_path / "doomed"
    shutil.copytree(stage2.path, doomed)
    TrainedModel.objects.filter(pk=stage2.pk).update(path=str(doomed))
    job = start_inventor(user, stage2)
    shutil.rmtree(doomed)
    assert services.model_train(model_id=job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "doomed" in job.error


def test_the_watchdog_fails_a_stage3_job_whose_worker_stopped(user, stage2, settings) -> None:
    settings.TRAIN_STALE_AFTER_S = 60
    job = start_inventor(user, stage2)
    TrainedModel.objects.filter(pk=job.pk).update(status="training", updated_at=timezone.now() - timedelta(seconds=120))
    assert services.models_recover_stale() == [job.pk]
    assert TrainedModel.objects.get(pk=job.pk).status == "failed"


# -- the WebSocket, through the real ASGI app ----------------------------------------------------
def socket_messages(user, model_id: int) -> tuple[list[dict[str, Any]], Any]:
    client = logged_in(user)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"

    async def scenario() -> tuple[list[dict[str, Any]], Any]:
        headers = [(b"origin", b"http://localhost"), (b"cookie", cookie.encode())]
        comm = WebsocketCommunicator(application, f"/ws/models/{model_id}/", headers=headers)
        connected, code = await comm.connect()
        if not connected:
            return [], code
        first = await comm.receive_json_from(timeout=5)
        return [first], await comm.receive_output(timeout=5)

    return async_to_sync(scenario)()


def test_the_websocket_streams_the_rewards_per_terrain_then_closes_when_the_job_ends(user, stage2) -> None:
    job = start_inventor(user, stage2)
    services.model_train(model_id=job.pk)
    (message,), closed = socket_messages(user, job.pk)
    assert message["status"] == "done" and message["loss"] == []
    assert [p["iteration"] for p in message["rewards"]] == [1, 2]
    assert set(message["rewards"][-1]["terrains"]) == {"left-wall", "right-wall", "tunnel"}
    assert message["evaluation"]["total"] == 3 and "programs" not in json.dumps(message["evaluation"])
    assert closed["type"] == "websocket.close"


def test_the_websocket_of_an_inventor_refuses_clients_without_a_session(stage2, user) -> None:
    inventor = evaluated(stage2, user)

    async def scenario() -> Any:
        comm = WebsocketCommunicator(application, f"/ws/models/{inventor.pk}/", headers=[(b"origin", b"http://localhost")])
        return await comm.connect()

    assert async_to_sync(scenario)() == (False, 4401)


# -- replays -----------------------------------------------------------------------------------
def test_the_replay_of_a_kept_walker_is_its_walk_on_that_terrain(user, stage2) -> None:
    walked = simulate(build_walker(SQUARE), "tunnel", DEFAULT_SETTINGS.with_(sim_seconds=1.0)).fitness
    inventor = evaluated(stage2, user, dataset=[{"text": SQUARE, "distance": walked}])
    answer = logged_in(user).get(f"/api/models/{inventor.pk}/replay?terrain=tunnel&source=dataset&rank=0")
    assert answer.status_code == 200, answer.content
    trace = answer.json()
    assert trace["terrain"]["name"] == "tunnel" and trace["distance"] == walked and trace["text"] == SQUARE
    ceilings = [s for s in trace["terrain"]["segments"] if s[1] == s[3] and s[1] > 0]
    assert len(ceilings) == 1, "the tunnel's ceiling is in the trace, for the replay to draw"
    frames, joints, two = trace["shape"]
    assert two == 2 and joints == len(build_walker(SQUARE).joints) and frames > 1


@pytest.mark.parametrize("query, status, words", [
    ("terrain=bumpy&source=dataset", 400, "evaluated on tunnel"),
    ("terrain=tunnel&source=mine", 400, "conditional, stage2, dataset"),
    ("terrain=tunnel&source=dataset&rank=one", 400, "whole number"),
    ("terrain=tunnel&source=dataset&rank=1", 404, "ask for rank 0 to 0"),
    ("terrain=tunnel&source=conditional", 404, "no program of conditional walked on tunnel"),
])
def test_a_replay_that_cannot_be_is_a_4xx_that_says_why(user, stage2, query, status, words) -> None:
    inventor = evaluated(stage2, user, dataset=[{"text": SQUARE, "distance": 1.0}])
    answer = logged_in(user).get(f"/api/models/{inventor.pk}/replay?{query}")
    assert answer.status_code == status
    assert words in answer.json()["error"]


def test_a_stage2_model_or_an_unevaluated_inventor_has_no_replays(user, stage2) -> None:
    assert logged_in(user).get(f"/api/models/{stage2.pk}/replay?terrain=tunnel").status_code == 400
    inventor = start_inventor(user, stage2)
    answer = logged_in(user).get(f"/api/models/{inventor.pk}/replay?terrain=tunnel")
    assert answer.status_code == 404 and "no evaluation yet" in answer.json()["error"]


def test_the_web_process_offers_the_terrain_sets_without_loading_torch() -> None:
    code = ("import django, sys; django.setup(); import elmweb.urls, elmweb.asgi, elmweb.training.views, "
            "elmweb.training.api, elmweb.training.selectors; print('torch' in sys.modules)")
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "elmweb.settings"})
    assert answer.stdout.strip() == "False", answer.stderr
