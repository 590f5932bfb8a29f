"""The admin: seeds are curated (a broken one is a form error), runs and genomes are read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from elmweb.runs import services
from elmweb.runs.models import Run, Seed
from evolution.sodarace import seeds as shipped
from tests.elmweb.conftest import make_run, step_until_done

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client: Client, django_user_model) -> Client:
    client.force_login(django_user_model.objects.create_superuser(username="root", password="pw-root-123"))
    return client


def seed_form(**fields: object) -> dict[str, object]:
    return {"name": "", "title": "", "description": "", "text": "", "preamble": "", "enabled": "on", **fields}


def test_a_broken_seed_is_a_form_error_with_the_line_and_nothing_is_saved(root: Client) -> None:
    text = "def make_walker():\n    wc = walker_creator()\n    return wc.nothing()\n"

    response = root.post("/admin/runs/seed/add/", seed_form(name="bad", text=text))

    assert response.status_code == 200  # the form again, with its error
    errors = response.context["adminform"].form.errors["text"]
    assert "line 3" in errors[0] and "nothing" in errors[0]
    assert not Seed.objects.filter(name="bad").exists()


def test_a_good_seed_is_saved_with_its_creator_and_previewed_fitness(root: Client) -> None:
    response = root.post("/admin/runs/seed/add/", seed_form(name="mine", text=shipped.get_seed("radial").text))

    assert response.status_code == 302
    seed = Seed.objects.get(name="mine")
    assert seed.created_by.username == "root" and seed.fitness > 0


def test_seeds_are_enabled_disabled_and_previewed_in_bulk(root: Client) -> None:
    ids = list(Seed.objects.filter(name__in=["square", "radial"]).values_list("pk", flat=True))

    root.post("/admin/runs/seed/", {"action": "disable", "_selected_action": ids})
    assert set(Seed.objects.filter(pk__in=ids).values_list("enabled", flat=True)) == {False}
    root.post("/admin/runs/seed/", {"action": "enable", "_selected_action": ids})
    assert set(Seed.objects.filter(pk__in=ids).values_list("enabled", flat=True)) == {True}
    root.post("/admin/runs/seed/", {"action": "check_and_preview", "_selected_action": ids})
    assert all(f > 0 for f in Seed.objects.filter(pk__in=ids).values_list("fitness", flat=True))


def test_runs_and_genomes_are_searchable_and_read_only(root: Client, user) -> None:
    run = services.run_start(run=make_run(user, name="searchable", evals=9), user=user)
    step_until_done(run)

    runs = root.get("/admin/runs/run/?q=searchable")
    assert runs.status_code == 200 and b"searchable" in runs.content
    assert root.get(f"/admin/runs/run/{run.pk}/change/").status_code == 200
    assert root.get("/admin/runs/run/add/").status_code == 403
    genomes = root.get(f"/admin/runs/genome/?q={run.pk}&outcome__exact=new_cell")
    assert genomes.status_code == 200
    genome = run.genomes.first()
    page = root.get(f"/admin/runs/genome/{genome.pk}/change/")
    assert page.status_code == 200 and b"Save" not in page.content


def test_run_actions_in_the_admin_call_the_run_services(root: Client, user) -> None:
    run = make_run(user)

    root.post("/admin/runs/run/", {"action": "run_started", "_selected_action": [run.pk]})
    assert Run.objects.get(pk=run.pk).status == Run.Status.RUNNING
    root.post("/admin/runs/run/", {"action": "run_stopped", "_selected_action": [run.pk]})
    assert Run.objects.get(pk=run.pk).status == Run.Status.FINISHED
    root.post("/admin/runs/run/", {"action": "clone", "_selected_action": [run.pk]})
    assert Run.objects.filter(cloned_from=run).count() == 1
