"""Models: seeds are checked in the sandbox, shipped seeds load, batches cannot be stored twice."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from elmweb.runs.models import Genome, Run, RunMetric, Seed
from evolution.sodarace import seeds as shipped
from tests.elmweb.conftest import load_seeds, make_run

pytestmark = pytest.mark.django_db

BROKEN = """\
def make_walker():
    wc = walker_creator()
    j = wc.add_joint(0, 0)
    return undefined_name
"""


def test_the_data_migration_loads_every_shipped_seed() -> None:
    Seed.objects.all().delete()

    load_seeds(apps, None)

    assert sorted(Seed.objects.values_list("name", flat=True)) == sorted(shipped.SEEDS)
    cppn = Seed.objects.get(name="cppn_fixed")
    assert cppn.builtin and cppn.enabled
    assert cppn.preamble == shipped.get_seed("cppn_fixed").preamble


def test_a_good_seed_is_saved_with_its_fitness_on_flat_ground() -> None:
    seed = Seed(name="square2", text=shipped.get_seed("square").text)

    seed.save()

    assert Seed.objects.get(name="square2").fitness == pytest.approx(seed.fitness)
    assert seed.fitness > 0


def test_a_broken_seed_is_refused_with_the_line_and_the_reason_and_nothing_is_saved() -> None:
    seed = Seed(name="broken", text=BROKEN)

    with pytest.raises(ValidationError) as excinfo:
        seed.save()

    message = " ".join(excinfo.value.message_dict["text"])
    assert "line 4" in message
    assert "undefined_name" in message
    assert not Seed.objects.filter(name="broken").exists()


def test_an_empty_seed_is_refused_with_a_hint() -> None:
    with pytest.raises(ValidationError, match="make_walker"):
        Seed(name="empty", text="   ").full_clean()


def test_a_seed_checked_by_clean_is_not_run_again_by_save(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = Seed(name="twice", text=shipped.get_seed("square").text)
    seed.full_clean()
    calls = []
    monkeypatch.setattr("elmweb.runs.engine.check_seed", lambda **kw: calls.append(kw) or 1.0)

    seed.save()

    assert calls == []


def test_a_genome_id_is_unique_within_a_run(user) -> None:
    run = make_run(user)
    Genome.objects.create(run=run, gid=0, batch=0, operator="seed", outcome="new_cell")

    with pytest.raises(IntegrityError), transaction.atomic():
        Genome.objects.create(run=run, gid=0, batch=0, operator="seed", outcome="new_cell")


def test_a_batch_has_one_metric_row_per_run(user) -> None:
    run = make_run(user)
    values = dict(run=run, batch=0, evaluations=1, batch_size=1, valid=1, valid_rate=1.0,
                  niches_filled=1, coverage=0.1, max_fitness=1.0, qd_score=1.0, wall_s=1.0,
                  evals_per_s=1.0)  # fmt: skip
    RunMetric.objects.create(**values)

    with pytest.raises(IntegrityError), transaction.atomic():
        RunMetric.objects.create(**values)


def test_a_run_copies_its_seed_program_so_editing_the_seed_later_changes_nothing(user) -> None:
    run = make_run(user)
    Seed.objects.filter(name="square").update(text="changed")

    run.refresh_from_db()
    assert run.seed_text == shipped.get_seed("square").text
    assert run.status == Run.Status.CREATED
