"""The JSON API: auth, CSRF, run control, reads, and 4xx messages (never a 500) for bad input."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from elmweb.runs import services
from elmweb.runs.models import Run, Seed
from evolution.sodarace import seeds as shipped
from tests.elmweb.conftest import make_run

pytestmark = pytest.mark.django_db


def post(client: Client, url: str, data: object = None, **extra: str):
    return client.post(url, json.dumps(data or {}), content_type="application/json", **extra)






def test_reads_and_writes_need_a_login(client: Client) -> None:
    for url in ("/api/runs", "/api/seeds", "/api/runs/1"):
        response = client.get(url)
        assert response.status_code == 401
        assert "POST /api/login" in response.json()["error"]
    assert post(client, "/api/runs", {"seed": "square"}).status_code == 401


def test_a_user_logs_in_with_username_and_password(client: Client, user) -> None:
    assert client.get("/api/me").json() == {"authenticated": False}

    response = post(client, "/api/login", {"username": "ada", "password": "pw-ada-123"})

    assert response.status_code == 200 and response.json()["username"] == "ada"
    assert client.get("/api/me").json()["username"] == "ada"


def test_a_wrong_password_is_a_400_with_a_hint(client: Client, user) -> None:
    response = post(client, "/api/login", {"username": "ada", "password": "nope"})

    assert response.status_code == 400
    assert "wrong username or password" in response.json()["error"]


def test_unsafe_requests_need_the_csrf_token(user) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    refused = post(client, "/api/runs", {"seed": "square"})
    assert refused.status_code == 403
    assert "X-CSRFToken" in refused.json()["error"]

    token = client.get("/api/csrf").json()["csrf_token"]
    accepted = post(client, "/api/runs", {"seed": "square"}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_it_creates_a_run_and_answers_its_configuration(ada: Client) -> None:
    response = post(ada, "/api/runs", {"seed": "radial", "batch_size": 8, "evals": 100, "terrain": "bumpy"})

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "created" and body["owner"] == "ada" and body["can_control"]
    assert body["config"]["seed"] == "radial" and body["config"]["terrain"] == "bumpy"
    assert body["config"]["batch_size"] == 8 and body["config"]["sim_seconds"] == 10.0
    assert body["cells"] == 12**3


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({}, "seed", "required"),
        ({"seed": "nope"}, "seed", "does not exist"),
        ({"seed": "square", "batch_size": 0}, "batch_size", "greater than or equal to 1"),
        ({"seed": "square", "evals": "many"}, "evals", "whole number"),
        ({"seed": "square", "dims": "12"}, "dims", "list of bin counts"),
        ({"seed": "square", "ranges": [[0, 1]]}, "dims", "one entry per descriptor"),
        ({"seed": "square", "terrain": "lava"}, "terrain", "unknown terrain"),
        ({"seed": "square", "mutation": "magic"}, "mutation", "unknown mutation"),
        ({"seed": "square", "mutation": "diff", "model": "/nowhere/model"}, "mutation", "no model folder at /nowhere"),
        ({"seed": "square", "mutation": "diff", "api_url": "ftp://x"}, "mutation", "http://HOST:PORT"),
    ],
)
def test_bad_run_input_is_a_400_naming_the_field(ada: Client, data, field, words) -> None:
    response = post(ada, "/api/runs", data)

    assert response.status_code == 400
    body = response.json()
    assert words in " ".join(body["fields"][field])
    assert field in body["error"]


def test_a_body_that_is_not_a_json_object_is_a_400(ada: Client) -> None:
    assert ada.post("/api/runs", "{nope", content_type="application/json").status_code == 400
    assert "JSON object" in post(ada, "/api/runs", [1, 2]).json()["error"]


def test_json_nested_too_deeply_to_decode_is_a_400_not_a_500(ada: Client) -> None:
    for deep in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000):
        response = ada.post("/api/runs", deep, content_type="application/json")

        assert response.status_code == 400
        assert "nested too deeply" in response.json()["error"]


@pytest.mark.parametrize("name", ["batch_size", "evals", "sim_seconds", "rng_seed", "dims", "ranges"])
def test_a_run_field_sent_as_null_takes_its_default(ada: Client, name: str) -> None:
    response = post(ada, "/api/runs", {"seed": "square", name: None})

    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert getattr(run, name) == Run._meta.get_field(name).get_default()


def test_a_run_field_left_empty_in_a_form_post_takes_its_default(ada: Client) -> None:
    response = ada.post("/api/runs", {"seed": "square", "rng_seed": "", "evals": ""})

    assert response.status_code == 201, response.content
    assert (response.json()["config"]["rng_seed"], response.json()["config"]["evals"]) == (0, 10_000)


@pytest.mark.parametrize("password", [3.5, 10**30, [], {}, ["pw-ada-123"], True])
def test_a_login_whose_password_is_not_text_is_a_400(client: Client, user, password: object) -> None:
    response = post(client, "/api/login", {"username": "ada", "password": password})

    assert response.status_code == 400
    assert client.get("/api/me").json() == {"authenticated": False}


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_login_with_a_nul_character_is_a_400_naming_the_field(client: Client, user, field: str) -> None:
    data = {"username": "ada", "password": "pw-ada-123"} | {field: "ada\x00"}

    response = client.post("/api/login", data)  # a form post, as well as JSON

    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_the_owner_starts_pauses_resumes_and_stops_a_run(ada: Client, user) -> None:
    run = make_run(user)

    assert post(ada, f"/api/runs/{run.pk}/start").json()["status"] == "running"
    assert post(ada, f"/api/runs/{run.pk}/pause").json()["status"] == "paused"
    assert post(ada, f"/api/runs/{run.pk}/resume").json()["status"] == "running"
    assert post(ada, f"/api/runs/{run.pk}/stop").json()["status"] == "finished"


def test_a_wrong_transition_is_a_409_saying_why(ada: Client, user) -> None:
    run = make_run(user)

    response = post(ada, f"/api/runs/{run.pk}/resume")

    assert response.status_code == 409
    assert "is created, so it cannot be resumed" in response.json()["error"]


def test_another_user_cannot_control_a_run_but_can_read_and_clone_it(client: Client, user, other_user) -> None:
    run = make_run(user)
    client.force_login(other_user)

    refused = post(client, f"/api/runs/{run.pk}/start")
    assert refused.status_code == 403 and "clone it" in refused.json()["error"]
    assert client.get(f"/api/runs/{run.pk}").json()["can_control"] is False
    clone = post(client, f"/api/runs/{run.pk}/clone")
    assert clone.status_code == 201
    assert clone.json()["owner"] == "bob" and clone.json()["cloned_from"] == run.pk


@pytest.mark.parametrize("name", ["x" * 201, "a\x00b"])
def test_a_clone_name_too_long_or_with_a_nul_character_is_a_400(ada: Client, user, name: str) -> None:
    run = make_run(user)

    for response in (post(ada, f"/api/runs/{run.pk}/clone", {"name": name}),
                     ada.post(f"/api/runs/{run.pk}/clone", {"name": name})):  # fmt: skip
        assert response.status_code == 400
        assert "name" in response.json()["fields"]
    assert Run.objects.count() == 1


def test_unknown_things_are_404s_with_messages(ada: Client, user) -> None:
    run = make_run(user)

    assert ada.get("/api/runs/999").json()["error"] == "there is no run 999"
    assert post(ada, f"/api/runs/{run.pk}/explode").status_code == 404
    assert ada.get(f"/api/runs/{run.pk}/genomes/5").json()["error"] == f"run {run.pk} has no genome 5"
    assert ada.get("/api/nothing/here").status_code == 404
    assert ada.get("/api/nothing/here")["Content-Type"] == "application/json"


def test_a_wrong_method_is_a_405_with_the_allowed_ones(ada: Client) -> None:
    response = ada.delete("/api/runs")

    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_it_lists_runs_newest_first_and_filters_mine_and_status(ada: Client, user, other_user) -> None:
    mine = make_run(user)
    theirs = make_run(other_user)
    services.run_start(run=mine, user=user)

    assert [r["id"] for r in ada.get("/api/runs").json()["results"]] == [theirs.pk, mine.pk]
    assert [r["id"] for r in ada.get("/api/runs?mine=1").json()["results"]] == [mine.pk]
    assert [r["id"] for r in ada.get("/api/runs?status=running").json()["results"]] == [mine.pk]
    assert ada.get("/api/runs?status=sleeping").status_code == 400


def test_metrics_archive_and_events_of_a_finished_run(ada: Client, finished_run: Run) -> None:
    base = f"/api/runs/{finished_run.pk}"

    metrics = ada.get(f"{base}/metrics").json()["results"]
    assert [m["batch"] for m in metrics] == [0, 1, 2, 3, 4]
    assert metrics[-1]["evaluations"] == 33
    assert [m["batch"] for m in ada.get(f"{base}/metrics?after_batch=2").json()["results"]] == [3, 4]

    archive = ada.get(f"{base}/archive").json()
    assert archive["dims"] == [12, 12, 12]
    assert len(archive["cells"]) == finished_run.niches_filled
    assert {"cell", "gid", "fitness", "descriptor", "batch", "operator"} <= set(archive["cells"][0])

    events = ada.get(f"{base}/events").json()["results"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    after = ada.get(f"{base}/events?after={events[-2]['id']}").json()["results"]
    assert after == events[-1:]


def test_genomes_are_filtered_and_paginated_by_id(ada: Client, finished_run: Run) -> None:
    base = f"/api/runs/{finished_run.pk}/genomes"

    first = ada.get(f"{base}?limit=10").json()
    assert first["count"] == 33 and [g["gid"] for g in first["results"]] == list(range(10))
    second = ada.get(f"{base}?limit=10&after={first['next_after']}").json()
    assert [g["gid"] for g in second["results"]] == list(range(10, 20))

    kept = ada.get(f"{base}?outcome=new_cell&limit=500").json()
    assert kept["count"] >= 1 and all(g["outcome"] == "new_cell" for g in kept["results"])
    cell = kept["results"][0]["cell"]
    in_cell = ada.get(f"{base}?cell={','.join(map(str, cell))}").json()["results"]
    assert in_cell and all(g["cell"] == cell for g in in_cell)
    assert all(g["operator"] == "gp" for g in ada.get(f"{base}?operator=gp").json()["results"])
    assert [g["gid"] for g in ada.get(f"{base}?batch=0").json()["results"]] == [0]


@pytest.mark.parametrize("query", ["outcome=great", "cell=a,b", "limit=0", "limit=9999", "after=x"])
def test_bad_genome_filters_are_400s(ada: Client, finished_run: Run, query: str) -> None:
    response = ada.get(f"/api/runs/{finished_run.pk}/genomes?{query}")

    assert response.status_code == 400 and response.json()["error"]


def test_a_genome_comes_with_its_lineage_to_the_seed_and_its_children(ada: Client, finished_run: Run) -> None:
    last = finished_run.genomes.filter(outcome__in=["new_cell", "improved"]).order_by("-gid").first()

    body = ada.get(f"/api/runs/{finished_run.pk}/genomes/{last.gid}").json()

    lineage = [g["gid"] for g in body["lineage"]]
    assert lineage[0] == last.gid and lineage[-1] == 0
    assert all(a["parent_gid"] == b["gid"] for a, b in zip(body["lineage"], body["lineage"][1:]))
    assert body["text"] == last.text and body["diff"]
    assert body["evaluation"]["has_trace"] is True
    seed = ada.get(f"/api/runs/{finished_run.pk}/genomes/0").json()
    assert seed["lineage"][0]["gid"] == 0 and len(seed["lineage"]) == 1
    assert {c["gid"] for c in seed["children"]} == set(
        finished_run.genomes.filter(parent_gid=0).values_list("gid", flat=True)
    )


def test_an_elite_has_a_replay_trace_and_a_failure_does_not(ada: Client, finished_run: Run) -> None:
    elite = finished_run.genomes.filter(outcome="new_cell").first()

    trace = ada.get(f"/api/runs/{finished_run.pk}/genomes/{elite.gid}/trace").json()

    assert trace["fps"] > 0 and trace["frames_b64"] and len(trace["shape"]) == 3
    loser = finished_run.genomes.exclude(outcome__in=["new_cell", "improved"]).first()
    missing = ada.get(f"/api/runs/{finished_run.pk}/genomes/{loser.gid}/trace")
    assert missing.status_code == 404 and "only elites" in missing.json()["error"]


def test_seeds_are_listed_for_users_and_edited_by_staff_only(ada: Client, client: Client, staff) -> None:
    names = [s["name"] for s in ada.get("/api/seeds").json()["results"]]
    assert names == sorted(shipped.SEEDS)
    assert "text" in ada.get("/api/seeds/square").json()
    refused = post(ada, "/api/seeds", {"name": "x", "text": "y"})
    assert refused.status_code == 403 and "only staff" in refused.json()["error"]

    client.force_login(staff)
    created = post(client, "/api/seeds", {"name": "square3", "text": shipped.get_seed("square").text})
    assert created.status_code == 201 and created.json()["fitness"] > 0
    broken = post(client, "/api/seeds", {"name": "bad", "text": "def make_walker(:\n"})
    assert broken.status_code == 400 and "syntax" in broken.json()["fields"]["text"][0]
    disabled = post(client, "/api/seeds/square3", {"enabled": False})
    assert disabled.json()["enabled"] is False
    assert "square3" not in [s["name"] for s in client.get("/api/seeds?enabled=1").json()["results"]]
    assert post(client, "/api/seeds/square3", {"owner": "me"}).status_code == 400
    assert not Seed.objects.filter(name="bad").exists()


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/api/runs", {"seed": ["square"]}),
        ("/api/runs", {"seed": "square", "evals": {"a": 1}}),
        ("/api/runs", {"seed": "square", "batch_size": 1e99}),
        ("/api/runs", {"seed": "square", "dims": [10**9, 12, 12]}),
        ("/api/runs", {"seed": "square", "dims": [True, 12, 12]}),
        ("/api/runs", {"seed": "square", "sim_seconds": "nan"}),
        ("/api/runs", {"seed": "square", "ranges": [[0, "a"], [0, 1], [0, 1]]}),
        ("/api/runs", {"seed": "square", "ranges": [[0, 1e400], [0, 1], [0, 1]]}),
        ("/api/runs", {"seed": "square", "rng_seed": -1}),
        ("/api/seeds", {}),
        ("/api/seeds", {"name": "bad name!", "text": 5}),
        ("/api/seeds/square", {"enabled": "perhaps"}),
        ("/api/login", {"username": ["x"], "password": None}),
    ],
)
def test_odd_input_is_answered_with_a_4xx_never_a_500(client: Client, staff, url: str, data: object) -> None:
    client.force_login(staff)

    response = post(client, url, data)

    assert 400 <= response.status_code < 500, response.content
    assert response.json()["error"]
