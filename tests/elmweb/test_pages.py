"""The lab's pages: each renders its DOM contract, 404s unknown ids, and needs a login like the API."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from elmweb.runs.api import RunCreateForm
from elmweb.runs.models import Genome, Run
from tests.elmweb.conftest import make_run

pytestmark = pytest.mark.django_db






def html(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def data_script(page: str, element_id: str) -> object:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S)
    assert match, f"no #{element_id} json_script"
    return json.loads(match.group(1))


# -- dashboard ----------------------------------------------------------------------------------
def test_anonymous_visitors_see_a_login_link_and_no_runs_or_controls(client: Client, user) -> None:
    make_run(user)

    page = html(client.get("/"))

    assert 'class="button login-link" href="/accounts/login/?next=/"' in page
    assert "data-run-id" not in page
    assert "new-run-form" not in page
    assert "data-action" not in page


def test_the_dashboard_lists_runs_with_status_controls_and_links(ada: Client, user) -> None:
    run = make_run(user)

    page = html(ada.get("/"))

    row = re.search(rf'<tr class="run-row" data-run-id="{run.pk}".*?</tr>', page, re.S).group(0)
    assert '<span class="run-status status-badge" data-status="created">created</span>' in row
    assert f'<a class="run-link" href="/runs/{run.pk}/">' in row
    assert '<button type="button" data-action="start">' in row
    assert '<button type="button" data-action="stop">' in row
    assert '<button type="button" data-action="pause" disabled>' in row
    assert '<button type="button" data-action="resume" disabled>' in row
    assert "frontend/pages/dashboard.js" in page


def test_the_new_run_form_names_its_fields_as_the_api_does(ada: Client) -> None:
    page = html(ada.get("/"))

    form = re.search(r'<form id="new-run-form".*?</form>', page, re.S).group(0)
    names = set(re.findall(r'name="([a-z_]+)"', form))
    assert {"seed", "terrain", "mutation", "model", "batch_size", "evals", "sim_seconds"} <= names
    assert names <= set(RunCreateForm.base_fields)
    assert '<option value="square" selected>square</option>' in form
    assert '<option value="bumpy">bumpy</option>' in form
    assert '<option value="gp">gp</option>' in form
    assert '<button type="submit"' in form


def test_staff_see_the_admin_in_the_menu_and_others_do_not(client: Client, user, staff) -> None:
    def menu() -> str:
        return re.search(r'<nav aria-label="Main">.*?</nav>', html(client.get("/")), re.S).group(0)

    client.force_login(user)
    assert "/admin/" not in menu()
    client.force_login(staff)
    assert 'href="/admin/">Admin</a>' in menu()


# -- run page -----------------------------------------------------------------------------------
def test_the_run_page_has_the_live_elements(ada: Client, finished_run: Run) -> None:
    page = html(ada.get(f"/runs/{finished_run.pk}/"))

    assert '<span id="run-status" class="status-badge" data-status="finished">finished</span>' in page
    assert f'<span id="evaluations">{finished_run.evaluations}</span>' in page
    assert re.search(rf'<canvas id="archive-map" data-filled="{finished_run.niches_filled}"', page)
    assert '<ol id="genome-feed"' in page
    assert '<button type="button" data-action="pause" disabled>' in page
    assert data_script(page, "run-data")["id"] == finished_run.pk
    assert "frontend/pages/run.js" in page


def test_only_the_owner_gets_enabled_controls_on_the_run_page(client: Client, user, other_user) -> None:
    run = make_run(user)
    client.force_login(other_user)

    page = html(client.get(f"/runs/{run.pk}/"))

    assert '<button type="button" data-action="start" disabled>' in page


def test_pages_of_unknown_runs_and_genomes_are_404s(ada: Client) -> None:
    for url in (
        "/runs/999/", "/genomes/999/", "/genomes/999/lineage/", "/runs/999/genomes/0/", "/compare/?runs=999",
    ):
        response = ada.get(url)
        assert response.status_code == 404, url


def test_pages_redirect_anonymous_visitors_to_the_login_page(client: Client, finished_run: Run) -> None:
    genome = Genome.objects.filter(run=finished_run).first()
    pk, run_id = genome.pk, finished_run.pk
    for url in (f"/runs/{run_id}/", f"/genomes/{pk}/", f"/genomes/{pk}/lineage/", "/compare/", "/seeds/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


# -- genome, lineage ----------------------------------------------------------------------------
def test_the_genome_page_shows_its_program_diff_replay_and_lineage_link(
    ada: Client, finished_run: Run
) -> None:
    with_trace = Genome.objects.filter(run=finished_run, evaluation__trace__isnull=False)
    child = with_trace.exclude(gid=0).first()

    page = html(ada.get(f"/genomes/{child.pk}/"))

    assert '<canvas id="replay" data-frame="0"' in page
    assert f'<a id="lineage-link" href="/genomes/{child.pk}/lineage/">' in page
    assert '<pre id="program" class="code"><code>' in page and "make_walker" in page
    assert '<pre id="diff"' in page
    assert f'href="/genomes/{child.parent_id}/"' in page
    meta = {"id": child.pk, "run": finished_run.pk, "gid": child.gid, "has_trace": True}
    assert data_script(page, "genome-data") == meta


def test_a_failed_genome_shows_its_failure_reason(ada: Client, finished_run: Run) -> None:
    failed = Genome.objects.filter(run=finished_run, outcome="failed").first()
    if failed is None:
        pytest.skip("this small run had no failed child")

    page = html(ada.get(f"/genomes/{failed.pk}/"))

    assert f"<strong>{failed.failure}</strong>" in page
    assert data_script(page, "genome-data")["has_trace"] is False


def test_engine_ids_redirect_to_the_genome_page(ada: Client, finished_run: Run) -> None:
    seed = Genome.objects.get(run=finished_run, gid=0)

    response = ada.get(f"/runs/{finished_run.pk}/genomes/0/")

    assert response.status_code == 302 and response["Location"] == f"/genomes/{seed.pk}/"


def test_the_lineage_page_lists_each_step_from_the_seed(ada: Client, finished_run: Run) -> None:
    deepest = max(
        Genome.objects.filter(run=finished_run).exclude(parent=None),
        key=lambda g: len(list(_ancestors(g))),
    )

    page = html(ada.get(f"/genomes/{deepest.pk}/lineage/"))

    ids = [int(i) for i in re.findall(r'<li data-genome-id="(\d+)"', page)]
    assert ids == [g.pk for g in reversed(list(_ancestors(deepest)))]
    assert re.search(r'<li data-genome-id="\d+" data-gid="0" data-operator="seed">', page)
    assert ids[-1] == deepest.pk
    assert '<canvas id="descendants"' in page and '<ol id="lineage"' in page


def _ancestors(genome: Genome):
    while genome is not None:
        yield genome
        genome = genome.parent


# -- compare, seeds -----------------------------------------------------------------------------
def test_the_compare_page_shows_one_map_per_run(ada: Client, user, finished_run: Run) -> None:
    other = make_run(user)

    page = html(ada.get(f"/compare/?runs={finished_run.pk},{other.pk}"))

    assert page.count('class="compare-map"') == 2
    assert [r["id"] for r in data_script(page, "compare-data")] == [finished_run.pk, other.pk]


def test_the_compare_page_explains_bad_run_lists(ada: Client) -> None:
    response = ada.get("/compare/?runs=1,x")
    assert response.status_code == 400
    assert "is not a list of run ids" in response.content.decode()
    assert ada.get("/compare/?runs=1,2,3,4,5").status_code == 400
    assert ada.get("/compare/").status_code == 200


def test_the_seeds_gallery_has_a_replay_per_seed_and_admin_links_for_staff(
    client: Client, user, staff
) -> None:
    client.force_login(user)
    page = html(client.get("/seeds/"))
    assert '<canvas class="seed-replay" data-seed="square"' in page
    assert "/admin/runs/seed/" not in page
    client.force_login(staff)
    assert "/admin/runs/seed/add/" in html(client.get("/seeds/"))


def test_staff_get_admin_links_on_the_run_and_genome_pages(
    client: Client, staff, user, finished_run: Run
) -> None:
    run = finished_run
    seed = Genome.objects.get(run=run, gid=0)
    client.force_login(user)
    assert "/admin/runs/run/" not in html(client.get(f"/runs/{run.pk}/"))
    client.force_login(staff)
    assert f'href="/admin/runs/run/{run.pk}/change/"' in html(client.get(f"/runs/{run.pk}/"))
    assert f'href="/admin/runs/genome/{seed.pk}/change/"' in html(client.get(f"/genomes/{seed.pk}/"))


def test_the_favicon_address_browsers_ask_for_leads_to_the_lab_icon(client) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"].endswith("favicon.svg")
