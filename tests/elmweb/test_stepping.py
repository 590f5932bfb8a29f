"""The stepping service: claim, one batch, one transaction per (run, batch), watchdog, failures."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from elmweb.runs import engine, services
from elmweb.runs.models import ArchiveCell, Evaluation, Genome, Run, RunEvent, RunMetric
from tests.elmweb.conftest import Queue, make_run, step_until_done

pytestmark = pytest.mark.django_db(transaction=True)


def started(user, **config) -> Run:
    return services.run_start(run=make_run(user, **config), user=user)


def test_one_step_stores_the_seed_batch_and_queues_the_next(user, queue: Queue) -> None:
    run = started(user)

    assert services.run_step(run_id=run.pk, batch=0) == "committed"

    run.refresh_from_db()
    assert (run.batches, run.evaluations, run.lease_token) == (1, 1, "")
    seed = Genome.objects.get(run=run)
    assert (seed.gid, seed.parent, seed.operator, seed.outcome) == (0, None, "seed", "new_cell")
    assert seed.text == run.seed_text
    assert Evaluation.objects.get(genome=seed).fitness == pytest.approx(seed.fitness)
    assert ArchiveCell.objects.get(run=run).genome == seed
    assert RunMetric.objects.get(run=run).batch == 0
    assert run.state["batch"] == 1
    assert queue.step_batches(run) == [0, 1]
    assert queue.traces == [(run.pk, 0)]
    batch_event = RunEvent.objects.filter(run=run, kind="batch").get()
    assert batch_event.payload["cells"] == [{"cell": seed.evaluation.cell, "gid": 0, "fitness": seed.fitness}]


def test_a_run_steps_to_its_budget_and_finishes_with_every_genome_stored(user) -> None:
    run = step_until_done(started(user, evals=25))

    assert run.status == Run.Status.FINISHED and run.finished_at is not None
    gids = list(Genome.objects.filter(run=run).values_list("gid", flat=True))
    assert gids == list(range(25))
    assert list(RunMetric.objects.filter(run=run).values_list("batch_size", flat=True)) == [1, 8, 8, 8]
    assert run.evaluations == 25 and run.batches == 4
    assert ArchiveCell.objects.filter(run=run).count() == run.niches_filled
    children = Genome.objects.filter(run=run, gid__gt=0)
    assert all(g.parent is not None and g.parent.gid == g.parent_gid for g in children)
    assert RunEvent.objects.filter(run=run).last().payload == {"status": "finished"}


def test_the_archive_rows_match_the_engine_state(user) -> None:
    run = step_until_done(started(user, evals=33))

    elites = {tuple(e["cell"]): e["genome_id"] for e in run.state["archive"]["elites"]}
    rows = {tuple(c.coords): c.genome.gid for c in ArchiveCell.objects.filter(run=run)}
    assert rows == elites


def test_a_second_copy_of_a_stored_step_is_skipped(user, queue: Queue) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)

    assert services.run_step(run_id=run.pk, batch=0) == "skipped"
    assert Genome.objects.filter(run=run).count() == 1


def test_a_step_whose_claim_was_taken_over_drops_its_batch(user) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)

    def race(*args, **kwargs):
        results = evaluate(*args, **kwargs)
        # Meanwhile the watchdog gave the run to another step, which stored batch 1.
        Run.objects.filter(pk=run.pk).update(lease_token="another-step")
        return results

    evaluate = engine.evaluate
    with mock.patch("elmweb.runs.engine.evaluate", side_effect=race):
        assert services.run_step(run_id=run.pk, batch=1) == "duplicate"
    assert Genome.objects.filter(run=run).count() == 1
    assert RunMetric.objects.filter(run=run).count() == 1


def test_a_step_while_another_holds_the_run_is_skipped(user) -> None:
    run = started(user)
    Run.objects.filter(pk=run.pk).update(lease_token="live-step", heartbeat_at=timezone.now())

    assert services.run_step(run_id=run.pk, batch=0) == "skipped"
    assert not Genome.objects.exists()


def test_pause_takes_effect_after_the_batch_in_flight(user, queue: Queue) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)

    def pause_meanwhile(*args, **kwargs):
        services.run_pause(run=run, user=user)
        return evaluate(*args, **kwargs)

    evaluate = engine.evaluate
    with mock.patch("elmweb.runs.engine.evaluate", side_effect=pause_meanwhile):
        services.run_step(run_id=run.pk, batch=1)

    run.refresh_from_db()
    assert run.status == Run.Status.PAUSED
    assert run.batches == 2  # the batch in flight was stored
    assert queue.step_batches(run) == [0, 1]  # and nothing new was queued
    events = [e.payload.get("status") for e in RunEvent.objects.filter(run=run, kind="status")]
    assert events[-2:] == ["pausing", "paused"]


def test_a_paused_and_resumed_run_ends_exactly_like_one_that_never_stopped(user) -> None:
    straight = step_until_done(started(user, evals=41, rng_seed=3))
    interrupted = started(user, evals=41, rng_seed=3)
    services.run_step(run_id=interrupted.pk, batch=0)
    services.run_step(run_id=interrupted.pk, batch=1)
    services.run_pause(run=interrupted, user=user)
    services.run_resume(run=interrupted, user=user)
    step_until_done(interrupted)

    def genomes(run: Run) -> list[tuple]:
        return list(Genome.objects.filter(run=run).values_list("gid", "parent_gid", "text", "outcome", "fitness"))

    assert genomes(interrupted) == genomes(straight)


def test_the_watchdog_requeues_a_running_run_whose_step_died(user, queue: Queue, settings) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER_S + 1)
    Run.objects.filter(pk=run.pk).update(lease_token="dead-step", heartbeat_at=long_ago)

    assert services.runs_recover_stale() == [run.pk]

    assert queue.step_batches(run) == [0, 1, 1]
    assert services.runs_recover_stale() == []  # the recovery counts as a sign of life
    assert services.run_step(run_id=run.pk, batch=1) == "committed"


def test_the_watchdog_leaves_live_runs_alone(user, queue: Queue) -> None:
    run = started(user)

    assert services.runs_recover_stale() == []
    assert queue.step_batches(run) == [0]


def test_the_watchdog_settles_a_pausing_run_whose_step_died(user, settings) -> None:
    run = started(user)
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER_S + 1)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.PAUSING, lease_token="dead", heartbeat_at=long_ago)

    services.runs_recover_stale()

    assert Run.objects.get(pk=run.pk).status == Run.Status.PAUSED


def test_a_step_keeps_its_run_alive_with_heartbeats(user, settings) -> None:
    settings.RUN_HEARTBEAT_S = 0.05
    run = started(user)
    beats = []

    def slow(*args, **kwargs):
        import time

        first = Run.objects.get(pk=run.pk).heartbeat_at
        time.sleep(0.5)
        beats.append((first, Run.objects.get(pk=run.pk).heartbeat_at))
        return evaluate(*args, **kwargs)

    evaluate = engine.evaluate
    with mock.patch("elmweb.runs.engine.evaluate", side_effect=slow):
        services.run_step(run_id=run.pk, batch=0)

    assert beats[0][1] > beats[0][0]


def test_a_seed_that_fails_fails_its_run_with_a_readable_error(user, queue: Queue) -> None:
    run = started(user)
    Run.objects.filter(pk=run.pk).update(seed_text="def make_walker():\n    return 1 / 0\n")

    run = step_until_done(run)

    assert run.status == Run.Status.FAILED
    assert "batch 1 failed" in run.error and "the seed program failed" in run.error
    seed = Genome.objects.get(run=run)
    assert seed.outcome == "failed" and "ZeroDivisionError" in seed.failure_message
    assert RunEvent.objects.filter(run=run).last().payload["status"] == "failed"
    assert Run.objects.get(pk=run.pk).lease_token == ""


def test_a_batch_that_runs_out_of_time_fails_its_run_saying_what_to_change(user) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    run = started(user)
    with mock.patch("elmweb.runs.engine.evaluate", side_effect=SoftTimeLimitExceeded()):
        assert services.run_step(run_id=run.pk, batch=0) == "failed"

    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "smaller batch_size" in run.error and "STEP_TIME_LIMIT_S" in run.error


def test_traces_are_stored_for_the_new_elites_of_a_batch_only(user) -> None:
    run = step_until_done(started(user, evals=17))

    stored = sum(services.run_record_traces(run_id=run.pk, batch=b) for b in range(run.batches))

    elites = Genome.objects.filter(run=run, outcome__in=services.ELITE_OUTCOMES)
    with_trace = Evaluation.objects.filter(genome__run=run, trace__isnull=False)
    assert stored == elites.count() == with_trace.count()
    assert set(with_trace.values_list("genome__outcome", flat=True)) <= {"new_cell", "improved"}
    assert services.run_record_traces(run_id=run.pk, batch=0) == 0  # idempotent


def test_a_batch_with_new_elites_owes_its_replays_until_its_trace_task_has_run(user, queue: Queue) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)

    row = Run.objects.get(pk=run.pk)
    assert list(row.trace_batches) == ["0"] and datetime.fromisoformat(row.trace_batches["0"]) <= timezone.now()
    services.run_record_traces(run_id=run.pk, batch=0)
    row = Run.objects.get(pk=run.pk)
    assert row.trace_batches == {}


def test_the_watchdog_queues_again_a_trace_task_that_never_ran(user, queue: Queue, settings) -> None:
    run = started(user, evals=9)
    services.run_step(run_id=run.pk, batch=0)
    services.run_step(run_id=run.pk, batch=1)
    services.run_record_traces(run_id=run.pk, batch=1)  # batch 0's task was lost with its worker
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER_S + 1)
    Run.objects.filter(pk=run.pk).update(trace_batches={"0": long_ago.isoformat()})

    assert services.traces_recover_stale() == [(run.pk, 0)]

    assert queue.traces[-1] == (run.pk, 0)
    assert services.traces_recover_stale() == []  # queued again just now: not stale
    services.run_record_traces(run_id=run.pk, batch=0)
    assert Evaluation.objects.filter(genome__run=run, genome__batch=0, trace__isnull=False).count() == 1
    assert Run.objects.get(pk=run.pk).trace_batches == {}


def test_the_watchdog_leaves_trace_tasks_queued_moments_ago_alone(user, queue: Queue) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)

    assert services.traces_recover_stale() == []
    assert queue.traces == [(run.pk, 0)]


def test_a_trace_task_that_could_make_no_trace_still_pays_its_batch(user, queue: Queue) -> None:
    run = started(user)
    services.run_step(run_id=run.pk, batch=0)

    with mock.patch("elmweb.runs.engine.trace_bytes", return_value=None):
        assert services.run_record_traces(run_id=run.pk, batch=0) == 0

    assert Run.objects.get(pk=run.pk).trace_batches == {}


def test_a_step_runs_batches_back_to_back_for_its_chunk_of_time(user, queue: Queue) -> None:
    run = started(user, evals=25)

    assert services.run_step(run_id=run.pk, batch=0, chunk_s=600) == "committed"

    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and run.batches == 4
    assert queue.step_batches(run) == [0]  # no trip through the broker between batches


def test_a_chunked_step_stops_at_a_pause_after_the_batch_in_flight(user, queue: Queue) -> None:
    run = started(user, evals=400)
    calls = []

    def pause_in_batch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            services.run_pause(run=run, user=user)
        return evaluate(*args, **kwargs)

    evaluate = engine.evaluate
    with mock.patch("elmweb.runs.engine.evaluate", side_effect=pause_in_batch_two):
        services.run_step(run_id=run.pk, batch=0, chunk_s=600)

    run.refresh_from_db()
    assert (run.status, run.batches) == (Run.Status.PAUSED, 2)
    assert queue.step_batches(run) == [0]


def test_a_chunked_step_queues_the_next_step_when_its_time_is_up(user, queue: Queue) -> None:
    run = started(user, evals=400)

    services.run_step(run_id=run.pk, batch=0, chunk_s=0.0)

    assert queue.step_batches(run) == [0, 1]


def test_a_step_queues_what_follows_even_when_redis_refuses_its_websocket_nudge(user, queue: Queue, settings) -> None:
    """Redis restarting: channels_redis raises redis-py's ConnectionError (not the builtin one) from
    the nudge, which ran first among the commit hooks and skipped the next step's and the traces'."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    settings.EVENTS_TAIL_TABLE = False  # workers nudge through the Redis channel layer
    layer = mock.Mock()
    layer.group_send = mock.AsyncMock(side_effect=RedisConnectionError("Connection reset by peer"))
    run = started(user)

    with mock.patch("elmweb.runs.events.get_channel_layer", return_value=layer):
        assert services.run_step(run_id=run.pk, batch=0, chunk_s=0) == "committed"

    assert layer.group_send.await_count >= 1
    assert queue.step_batches(run) == [0, 1]
    assert queue.traces == [(run.pk, 0)]
