"""Runs that evaluate apart: the step writes the children, `evaluate_chunk` tasks evaluate them.

The runs here are GP runs with ``EVALUATE_APART=ALL`` (the path a language-model run takes by
default, without loading a model); ``test_worker`` runs a diff-model run through real workers.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from elmweb.runs import services
from elmweb.runs.models import Genome, PendingBatch, Run, RunEvent, RunMetric
from tests.elmweb.conftest import Queue, evaluate_chunks, make_run, step_until_done

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _apart(settings) -> None:
    settings.EVALUATE_APART = "ALL"
    settings.EVAL_CHUNK_SIZE = 3


def started(user, **config) -> Run:
    return services.run_start(run=make_run(user, **config), user=user)


def at_batch_one(user, **config) -> Run:
    """A started run whose seed batch is stored, and whose batch 1 (8 children) is asked."""
    run = started(user, **config)
    assert services.run_step(run_id=run.pk, batch=0) == "evaluating"
    assert evaluate_chunks(run) == ["committed"]
    assert services.run_step(run_id=run.pk, batch=1) == "evaluating"
    return run


def genomes(run: Run) -> list[tuple]:
    return list(Genome.objects.filter(run=run).values_list("gid", "parent_gid", "text", "outcome", "fitness"))


def test_a_step_writes_the_children_and_queues_one_chunk_per_slice_without_evaluating(user, queue: Queue) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)
    evaluate_chunks(run)

    with mock.patch("elmweb.runs.engine.evaluate", side_effect=AssertionError("the step evaluated")):
        assert services.run_step(run_id=run.pk, batch=1) == "evaluating"

    pending = PendingBatch.objects.get(run=run, batch=1)
    assert (pending.size, pending.chunks, pending.missing()) == (8, 3, [0, 1, 2])
    assert [c for c in queue.chunks if c[1] == 1] == [(run.pk, 1, 0), (run.pk, 1, 1), (run.pk, 1, 2)]
    assert Genome.objects.filter(run=run, batch=1).count() == 0
    row = Run.objects.get(pk=run.pk)
    assert row.batches == 1 and row.lease_token == pending.token  # the run stays held while sim works
    event = RunEvent.objects.filter(run=run).last()
    assert (event.kind, event.payload) == ("evaluating", {"batch": 1, "children": 8, "chunks": 3})


def test_the_chunk_that_completes_a_batch_stores_it_and_queues_the_next_step(user, queue: Queue) -> None:
    run = at_batch_one(user)

    assert services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=2) == "evaluated"
    assert services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=0) == "evaluated"
    assert Genome.objects.filter(run=run, batch=1).count() == 0
    assert services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=1) == "committed"

    row = Run.objects.get(pk=run.pk)
    assert (row.batches, row.evaluations, row.lease_token) == (2, 9, "")
    assert Genome.objects.filter(run=run, batch=1).count() == 8
    assert not PendingBatch.objects.filter(run=run).exists()
    assert queue.step_batches(run) == [0, 1, 2]
    assert RunMetric.objects.get(run=run, batch=1).wall_s > 0


def test_a_run_evaluated_apart_ends_exactly_like_one_evaluated_in_its_step(user, settings) -> None:
    apart = step_until_done(started(user, evals=33))
    settings.EVALUATE_APART = "LLM"
    together = step_until_done(started(user, evals=33))

    assert apart.status == together.status == Run.Status.FINISHED
    assert genomes(apart) == genomes(together) and len(genomes(apart)) == 33
    assert apart.state == together.state


def test_a_chunk_delivered_twice_or_after_its_batch_was_stored_is_skipped(user) -> None:
    run = at_batch_one(user)
    services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=0)

    assert services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=0) == "skipped"
    evaluate_chunks(run)
    assert services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=2) == "skipped"
    assert Genome.objects.filter(run=run, batch=1).count() == 8


def test_a_step_requeued_by_the_watchdog_queues_only_the_missing_chunks_and_takes_the_batch_over(
    user, queue: Queue, settings
) -> None:
    run = at_batch_one(user)
    services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=1)
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER_S + 1)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)  # chunks 0 and 2 were lost
    queue.chunks.clear()

    assert services.runs_recover_stale() == [run.pk]
    assert services.run_step(run_id=run.pk, batch=1) == "evaluating"

    assert queue.chunks == [(run.pk, 1, 0), (run.pk, 1, 2)]
    token = Run.objects.get(pk=run.pk).lease_token
    assert PendingBatch.objects.get(run=run).token == token
    assert evaluate_chunks(run) == ["evaluated", "committed"]
    assert Run.objects.get(pk=run.pk).batches == 2


def test_a_step_requeued_after_every_chunk_was_in_but_the_store_was_lost_stores_the_batch(user, settings) -> None:
    run = at_batch_one(user)
    with mock.patch("elmweb.runs.services._pending_commit", return_value="lost"):
        evaluate_chunks(run)
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER_S + 1)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)

    services.runs_recover_stale()
    assert services.run_step(run_id=run.pk, batch=1) == "committed"

    assert Genome.objects.filter(run=run, batch=1).count() == 8


def test_a_paused_run_stores_the_batch_in_flight_then_pauses(user, queue: Queue) -> None:
    run = at_batch_one(user)
    services.run_pause(run=run, user=user)

    evaluate_chunks(run)

    row = Run.objects.get(pk=run.pk)
    assert (row.status, row.batches) == (Run.Status.PAUSED, 2)
    assert queue.step_batches(run) == [0, 1]


def test_a_chunk_whose_evaluation_raises_fails_the_run_with_a_readable_error(user) -> None:
    run = at_batch_one(user)

    with mock.patch("elmweb.runs.engine.evaluate", side_effect=ValueError("no such terrain")):
        assert services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=0) == "failed"

    row = Run.objects.get(pk=run.pk)
    assert row.status == Run.Status.FAILED and row.lease_token == ""
    assert row.error == "batch 1 failed: ValueError: no such terrain"
    assert services.run_evaluate_chunk(run_id=run.pk, batch=1, chunk=1) == "skipped"  # nothing left to do


def test_a_batch_pending_across_the_upgrade_keeps_its_candidates(user) -> None:
    from django.apps import apps

    migration = importlib.import_module("elmweb.runs.migrations.0004_pending_candidates_apart")
    run = at_batch_one(user)
    pending = PendingBatch.objects.get(run=run)
    asked = pending.candidates
    PendingBatch.objects.filter(pk=pending.pk).update(state={**pending.state, "pending": asked}, candidates=[])

    migration.move_candidates(apps, None)

    pending.refresh_from_db()
    assert pending.candidates == asked and "pending" not in pending.state
    assert evaluate_chunks(run)[-1] == "committed"
