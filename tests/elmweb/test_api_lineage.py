"""The API's lineage, descendants and seed-replay endpoints (used by the lineage and seeds pages)."""

from __future__ import annotations

import pytest
from django.test import Client

from elmweb.runs.models import Genome, Run

pytestmark = pytest.mark.django_db






def test_the_lineage_runs_from_the_seed_to_the_genome_with_diffs(ada: Client, finished_run: Run) -> None:
    child = Genome.objects.filter(run=finished_run).exclude(parent=None).order_by("-gid").first()

    steps = ada.get(f"/api/runs/{finished_run.pk}/genomes/{child.gid}/lineage").json()["results"]

    assert steps[0]["gid"] == 0 and steps[0]["operator"] == "seed"
    assert steps[-1]["gid"] == child.gid and steps[-1]["id"] == child.pk
    assert steps[-1]["diff"] == child.diff
    assert steps[-2]["gid"] == child.parent_gid
    assert all(step["fitness"] is not None for step in steps[:-1]), "parents are elites"


def test_the_descendants_of_the_seed_are_every_genome_of_the_run(ada: Client, finished_run: Run) -> None:
    answer = ada.get(f"/api/runs/{finished_run.pk}/genomes/0/descendants").json()

    linked = Genome.objects.filter(run=finished_run).exclude(parent=None, gid__gt=0).count()
    assert answer["root"] == 0 and answer["truncated"] is False
    assert len(answer["nodes"]) == linked
    assert answer["nodes"][0] == {**answer["nodes"][0], "gid": 0, "depth": 0}
    depths = [n["depth"] for n in answer["nodes"]]
    assert depths == sorted(depths)
    assert all("id" in n and "parent_gid" in n for n in answer["nodes"])


def test_descendants_are_cut_at_the_limit_and_say_so(ada: Client, finished_run: Run) -> None:
    answer = ada.get(f"/api/runs/{finished_run.pk}/genomes/0/descendants?limit=3").json()

    assert answer["truncated"] is True and len(answer["nodes"]) == 3
    assert ada.get(f"/api/runs/{finished_run.pk}/genomes/0/descendants?limit=0").status_code == 400


def test_lineage_and_descendants_of_unknown_genomes_are_404s(ada: Client, finished_run: Run) -> None:
    for what in ("lineage", "descendants"):
        response = ada.get(f"/api/runs/{finished_run.pk}/genomes/9999/{what}")
        assert response.status_code == 404 and "has no genome 9999" in response.json()["error"]


def test_a_seed_replay_is_a_trace_of_its_walker(ada: Client) -> None:
    trace = ada.get("/api/seeds/square/trace").json()

    frames, joints, two = trace["shape"]
    assert frames > 10 and joints >= 4 and two == 2
    assert trace["terrain"]["name"] == "flat"
    assert ada.get("/api/seeds/square/trace?terrain=moon").status_code == 400
    assert ada.get("/api/seeds/nope/trace").status_code == 404


def test_the_new_endpoints_need_a_login(client: Client, finished_run: Run) -> None:
    genome = f"/api/runs/{finished_run.pk}/genomes/0"
    for url in (f"{genome}/lineage", f"{genome}/descendants", "/api/seeds/square/trace"):
        assert client.get(url).status_code == 401, url
