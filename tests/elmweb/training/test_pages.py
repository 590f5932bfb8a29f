"""The Models pages: the list with its "Train a model" form, and one model's live page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from elmweb.runs.models import Run
from elmweb.training.models import TrainedModel
from tests.elmweb.conftest import make_run
from tests.elmweb.training.conftest import logged_in

pytestmark = pytest.mark.django_db


def make_model(owner: User, runs: list[Run], **fields) -> TrainedModel:
    job = TrainedModel.objects.create(owner=owner, base="/models/base", **fields)
    job.runs.set(runs)
    return job


@pytest.fixture
def run(user: User) -> Run:
    return make_run(user, name="square walkers")


def test_the_models_page_lists_the_models_and_the_form(user, run) -> None:
    job = make_model(user, [run], name="first try", status="training", progress=0.4, dataset_programs=120)
    html = logged_in(user).get("/models/").content.decode()
    for element in ('id="model-list"', 'id="new-model-form"', 'id="run-choices"', 'id="dataset-link"',
                    'name="threshold"', 'name="heldout"', 'name="init"', 'name="minutes"', 'name="samples"',
                    'name="name"', "frontend/pages/models.js"):
        assert element in html, element
    assert f'href="/models/{job.pk}/"' in html
    assert "first try" in html
    assert f'data-model-id="{job.pk}" data-status="training"' in html


def test_the_form_lists_the_runs_with_their_seed_mutation_and_evaluations(user, run) -> None:
    html = logged_in(user).get("/models/").content.decode()
    assert f'<input type="checkbox" name="runs" value="{run.pk}">' in html
    assert "square walkers" in html
    assert f"square · {run.mutation} · 0 evaluations" in html


def test_the_form_starts_from_the_usual_defaults(user) -> None:
    html = logged_in(user).get("/models/").content.decode()
    assert 'name="threshold" type="number" min="0" max="1" step="any" value="0.5"' in html
    assert 'name="heldout" type="number" min="0" max="0.9" step="any" value="0.1"' in html
    assert 'value="10"' in html and 'value="256"' in html
    assert '<option value="pretrained" selected>' in html
    assert "No trained models yet" in html


def test_the_nav_links_to_the_models(user) -> None:
    assert 'href="/models/">Models</a>' in logged_in(user).get("/").content.decode()


def test_a_training_model_page_shows_its_live_parts(user, run) -> None:
    job = make_model(user, [run], name="live one", status="training", progress=0.25, dataset_programs=80,
                     loss=[{"step": 1, "loss": 3.0}])
    answer = logged_in(user).get(f"/models/{job.pk}/")
    assert answer.status_code == 200
    html = answer.content.decode()
    for element in ('id="model-status"', 'data-status="training"', 'id="model-progress"', 'id="loss-curve"',
                    'id="cancel-button"', 'id="model-error"', 'id="archive-map"', 'id="evaluation-figures"',
                    'id="dataset-programs"', 'id="model-data"', "frontend/pages/model.js", "live one"):
        assert element in html, element
    assert 'id="cancel-button">' in html, "cancel is offered while the job runs"
    assert f'href="/runs/{run.pk}/"' in html
    assert f"/api/models/dataset?runs={run.pk}&amp;threshold=0.5&amp;heldout=0.1" in html


def test_a_finished_model_page_offers_no_cancel_and_shows_its_folder(user, run) -> None:
    job = make_model(user, [run], status="done", progress=1.0, path="/data/models/7/model",
                     evaluation={"samples": 4, "valid_rate": 0.5, "niches": 2, "archive": {"elites": []}})
    html = logged_in(user).get(f"/models/{job.pk}/").content.decode()
    assert 'id="cancel-button" disabled hidden' in html
    assert "/data/models/7/model" in html
    assert "mutation <code>diff</code>" in html


def test_a_failed_model_page_shows_the_error(user, run) -> None:
    job = make_model(user, [run], status="failed", error="no training program above the threshold")
    html = logged_in(user).get(f"/models/{job.pk}/").content.decode()
    assert "no training program above the threshold" in html


def test_an_unknown_model_is_a_404(user) -> None:
    assert logged_in(user).get("/models/999/").status_code == 404


@pytest.mark.parametrize("path", ["/models/", "/models/1/"])
def test_anonymous_users_are_sent_to_log_in(path: str) -> None:
    answer = Client().get(path)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/?next=")


# -- stage 3 -----------------------------------------------------------------------------------
def make_inventor(owner: User, parent: TrainedModel, **fields) -> TrainedModel:
    return TrainedModel.objects.create(owner=owner, stage=3, parent=parent, base=parent.path or "/models/p",
                                       terrain_set="walls-tunnel", **fields)


def test_a_finished_model_page_offers_stage3_with_both_terrain_sets_and_small_defaults(user, run) -> None:
    job = make_model(user, [run], status="done", path="/data/models/7/model")
    html = logged_in(user).get(f"/models/{job.pk}/").content.decode()
    assert '<form id="inventor-form" class="inventor-form" novalidate>' in html
    assert '<option value="walls-tunnel" selected>walls-tunnel: left-wall, right-wall, tunnel</option>' in html
    assert '<option value="walls-bumpy">walls-bumpy: left-wall, right-wall, bumpy</option>' in html
    for name, value in (("minutes", "5"), ("iterations", "50"), ("batch_size", "12"), ("samples", "32"), ("conditional", "12")):
        assert f'name="{name}"' in html and f'value="{value}"' in html, name
    for name in ("terrain_set", "batch_size", "sim_seconds", "max_new_tokens", "__all__"):
        assert f'data-error-for="{name}"' in html, name
    assert 'id="stage3-wait" class="muted" hidden' in html


def test_a_model_still_training_shows_stage3_waiting_for_it(user, run) -> None:
    job = make_model(user, [run], status="training")
    html = logged_in(user).get(f"/models/{job.pk}/").content.decode()
    assert 'id="inventor-form" class="inventor-form" novalidate hidden' in html
    assert "Available once this model is done." in html


def test_a_model_page_lists_the_inventors_trained_from_it(user, run) -> None:
    job = make_model(user, [run], status="done", path="/data/models/7/model")
    inventor = make_inventor(user, job, name="tunnel rat", status="training")
    html = logged_in(user).get(f"/models/{job.pk}/").content.decode()
    assert f'<a href="/models/{inventor.pk}/">inventor {inventor.pk} · tunnel rat</a>' in html


def test_an_inventor_page_shows_its_reward_curves_evaluation_and_a_replay_pair_per_terrain(user, run) -> None:
    parent = make_model(user, [run], status="done", path="/data/models/7/model")
    inventor = make_inventor(user, parent, status="training", rewards=[{"iteration": 1, "terrains": {}}])
    answer = logged_in(user).get(f"/models/{inventor.pk}/")
    assert answer.status_code == 200
    html = answer.content.decode()
    for element in ('id="reward-curve"', 'id="reward-legend"', 'id="evaluation-table"', 'id="replays"', 'id="cancel-button">',
                    'id="model-status"', 'data-status="training"', 'id="model-data"', "frontend/pages/inventor.js",
                    f'id="parent-link" href="/models/{parent.pk}/"'):
        assert element in html, element
    for i, terrain in enumerate(("left-wall", "right-wall", "tunnel")):
        assert f'<li data-series="{i}" data-terrain="{terrain}">' in html
        for source in ("conditional", "unconditional"):
            assert f'<canvas class="replay" data-terrain="{terrain}" data-source="{source}"' in html
    assert "frontend/pages/model.js" not in html


def test_the_models_list_shows_an_inventor_with_its_terrains_and_result(user, run) -> None:
    parent = make_model(user, [run], status="done", path="/data/models/7/model")
    inventor = make_inventor(user, parent, status="done", evaluation={"beats": 1, "total": 3, "terrains": {}})
    html = logged_in(user).get("/models/").content.decode()
    assert f'data-model-id="{inventor.pk}" data-status="done" data-stage="3"' in html
    assert f"stage 3 · from model {parent.pk} · walls-tunnel" in html
    assert "left-wall, right-wall, tunnel" in html and "beats best-of-N on 1 of 3 terrains" in html
