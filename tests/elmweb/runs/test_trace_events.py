"""A run announces the replay traces it stores, so pages show a replay when it exists."""

from __future__ import annotations

import pytest

from elmweb.runs import services
from elmweb.runs.models import Evaluation, RunEvent
from tests.elmweb.conftest import make_run, step_until_done

pytestmark = pytest.mark.django_db


def trace_events(run) -> list[dict]:
    return [e.payload for e in RunEvent.objects.filter(run=run, kind="trace")]


def test_recording_traces_publishes_one_event_naming_the_genomes_that_got_one(user) -> None:
    run = step_until_done(services.run_start(run=make_run(user, evals=17), user=user))
    assert trace_events(run) == []  # the run ended before any trace was recorded

    stored = {b: services.run_record_traces(run_id=run.pk, batch=b) for b in range(run.batches)}

    traced = set(
        Evaluation.objects.filter(genome__run=run, trace__isnull=False).values_list("genome__gid", flat=True)
    )
    events = trace_events(run)
    assert [e["batch"] for e in events] == [b for b, n in stored.items() if n]
    assert sorted(gid for e in events for gid in e["gids"]) == sorted(traced)
    assert all(len(e["gids"]) == stored[e["batch"]] for e in events)


def test_the_trace_event_comes_after_the_run_finished_and_lists_its_best_elite(user) -> None:
    run = step_until_done(services.run_start(run=make_run(user, evals=17), user=user))
    best = run.cells.order_by("-fitness").values_list("genome__gid", "genome__batch").first()

    services.run_record_traces(run_id=run.pk, batch=best[1])

    last = RunEvent.objects.filter(run=run).last()
    assert last.kind == "trace" and best[0] in last.payload["gids"]
    finished = RunEvent.objects.filter(run=run, kind="status", payload__status="finished").get()
    assert finished.id < last.id


def test_recording_the_same_traces_again_publishes_nothing(user) -> None:
    run = step_until_done(services.run_start(run=make_run(user, evals=9), user=user))
    services.run_record_traces(run_id=run.pk, batch=0)
    before = RunEvent.objects.filter(run=run).count()

    assert services.run_record_traces(run_id=run.pk, batch=0) == 0

    assert RunEvent.objects.filter(run=run).count() == before
