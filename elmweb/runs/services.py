"""Writes for the runs app (Django-Styleguide: ``<entity>_<action>``, keyword-only).

Run control (``run_start``, ``run_pause``, ``run_resume``, ``run_stop``, ``run_clone``) is
used by the API, the admin and tests alike. ``run_step`` is the body of the stepping task:
it claims the run with a conditional UPDATE, runs one batch through the engine, and commits
everything the batch produced in one transaction keyed by ``(run, batch)``; a second copy of
the same step (a redelivered message, a watchdog retry) finds the batch committed and drops
its work. A run that evaluates apart (language-model runs) only asks in its step, on ``llm``;
``run_evaluate_chunk`` evaluates the children on ``sim`` and the last chunk commits. The
database, not the broker, is the truth: ``runs_recover_stale`` (the watchdog) re-enqueues the
step of any run whose step shows no sign of life, and ``traces_recover_stale`` the replay-trace
tasks that never ran.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Sequence

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from elmweb.runs import engine, events
from elmweb.runs.models import ArchiveCell, Evaluation, Genome, PendingBatch, Run, RunEvent, RunMetric, Seed

log = logging.getLogger(__name__)

Status = Run.Status
ELITE_OUTCOMES = (Genome.Outcome.NEW_CELL, Genome.Outcome.IMPROVED)
SEED_FIELDS = ("title", "description", "text", "preamble", "enabled")
#: Fields a clone copies: the whole configuration, nothing of the run's progress.
CONFIG_FIELDS = (
    "seed", "seed_name", "seed_text", "seed_preamble", "terrain", "mutation", "model",
    "api_url", "api_model", "api_mode", "batch_size", "evals", "sim_seconds", "dims", "ranges",
    "rng_seed",
)  # fmt: skip

User = AbstractBaseUser | AnonymousUser


class Conflict(Exception):
    """The run is not in a state that allows the action (the message says which is)."""


# -- seeds -------------------------------------------------------------------------------------
def seed_create(
    *,
    name: str,
    text: str,
    preamble: str = "",
    title: str = "",
    description: str = "",
    enabled: bool = True,
    created_by: AbstractBaseUser | None = None,
) -> Seed:
    """Create a seed after checking it in the sandbox.

    Raises:
        ValidationError: A bad field, a taken name, or a program that builds no walker
            (on ``text``, with the line and the reason).
    """
    seed = Seed(
        name=name, text=text, preamble=preamble, title=title, description=description,
        enabled=enabled, created_by=created_by,
    )  # fmt: skip
    seed.full_clean()
    seed.save()
    return seed


def seed_update(*, seed: Seed, **changes: Any) -> Seed:
    """Change a seed's ``title``, ``description``, ``text``, ``preamble`` or ``enabled``.

    Raises:
        ValidationError: An unknown field, or the changed program builds no walker.
    """
    unknown = sorted(set(changes) - set(SEED_FIELDS))
    if unknown:
        raise ValidationError(
            {name: f"not an editable seed field; edit {', '.join(SEED_FIELDS)}" for name in unknown}
        )
    for name, value in changes.items():
        setattr(seed, name, value)
    seed.full_clean()
    seed.save()
    return seed


# -- run control -------------------------------------------------------------------------------
def run_create(
    *,
    owner: AbstractBaseUser,
    seed: str,
    name: str = "",
    terrain: str = "flat",
    mutation: str = "gp",
    batch_size: int = 64,
    evals: int = 10_000,
    sim_seconds: float = 10.0,
    dims: list[int] | None = None,
    ranges: list[list[float]] | None = None,
    rng_seed: int = 0,
    model: str = "",
    api_url: str = "",
    api_model: str = "",
    api_mode: str = "",
) -> Run:
    """Create a run (status ``created``) from an enabled seed.

    Raises:
        ValidationError: ``{field: message}`` for an unknown or disabled seed, an unknown
            terrain or mutation, bad archive dimensions, or fields the engine lacks.
    """
    seed_row = Seed.objects.filter(name=seed).first()
    if seed_row is None or not seed_row.enabled:
        names = ", ".join(Seed.objects.filter(enabled=True).values_list("name", flat=True))
        state = "is disabled" if seed_row else "does not exist"
        raise ValidationError({"seed": f"seed {seed!r} {state}; choose one of {names}"})
    values = dict(
        seed_name=seed_row.name, terrain=terrain, mutation=mutation, batch_size=batch_size,
        evals=evals, sim_seconds=sim_seconds, rng_seed=rng_seed, model=model, api_url=api_url,
        api_model=api_model, api_mode=api_mode, dims=list(dims or engine.default_dims()),
        ranges=[list(r) for r in (ranges or engine.default_ranges())],
    )  # fmt: skip
    run = Run(owner=owner, name=name, seed=seed_row, seed_text=seed_row.text,
              seed_preamble=seed_row.preamble, **values)  # fmt: skip
    _check_run_config(run)
    run.save()
    _event(run.pk, "status", {"status": run.status})
    log.info("run %d created by %s from seed %s", run.pk, owner, seed_row.name)
    return run


def run_start(*, run: Run, user: User) -> Run:
    """Start a created run: status ``running`` and its first step queued.

    Raises:
        PermissionDenied: If ``user`` does not own the run.
        Conflict: If the run is not ``created`` (a paused run is resumed instead).
    """
    _check_owner(run, user)
    with transaction.atomic():
        now = timezone.now()
        changed = Run.objects.filter(pk=run.pk, status=Status.CREATED).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now, updated_at=now
        )
        if not changed:
            raise Conflict(_conflict(run, "started", "only a created run starts; resume a paused one"))
        _status_changed(run, Status.RUNNING)
    return _fresh(run)


def run_pause(*, run: Run, user: User) -> Run:
    """Pause a running run after the batch in flight (at once if no batch is in flight).

    Raises:
        PermissionDenied: If ``user`` does not own the run.
        Conflict: If the run is not running.
    """
    _check_owner(run, user)
    with transaction.atomic():
        now = timezone.now()
        running = Run.objects.filter(pk=run.pk, status=Status.RUNNING)
        if running.filter(lease_token="").update(status=Status.PAUSED, updated_at=now):
            _status_changed(run, Status.PAUSED)
        elif running.update(status=Status.PAUSING, updated_at=now):
            _status_changed(run, Status.PAUSING)
        else:
            raise Conflict(_conflict(run, "paused", "only a running run pauses"))
    return _fresh(run)


def run_resume(*, run: Run, user: User) -> Run:
    """Resume a paused (or pausing) run from its saved state.

    Raises:
        PermissionDenied: If ``user`` does not own the run.
        Conflict: If the run is neither paused nor pausing.
    """
    _check_owner(run, user)
    with transaction.atomic():
        now = timezone.now()
        if Run.objects.filter(pk=run.pk, status=Status.PAUSED).update(
            status=Status.RUNNING, heartbeat_at=now, updated_at=now
        ):
            _status_changed(run, Status.RUNNING)
        elif Run.objects.filter(pk=run.pk, status=Status.PAUSING).update(
            status=Status.RUNNING, updated_at=now
        ):
            # The batch in flight re-enqueues the next step itself.
            _event(run.pk, "status", {"status": Status.RUNNING})
        else:
            raise Conflict(_conflict(run, "resumed", "only a paused run resumes"))
    return _fresh(run)


def run_stop(*, run: Run, user: User) -> Run:
    """Stop a run for good (status ``finished``); a batch in flight is still stored.

    Raises:
        PermissionDenied: If ``user`` does not own the run.
        Conflict: If the run already finished or failed.
    """
    _check_owner(run, user)
    with transaction.atomic():
        now = timezone.now()
        if not Run.objects.filter(pk=run.pk, status__in=Run.CONTROLLABLE).update(
            status=Status.FINISHED, finished_at=now, updated_at=now
        ):
            raise Conflict(_conflict(run, "stopped", "it has already ended"))
        _event(run.pk, "status", {"status": Status.FINISHED, "stopped": True})
    return _fresh(run)


def run_clone(*, run: Run, owner: AbstractBaseUser, name: str = "") -> Run:
    """A new ``created`` run with ``run``'s configuration, owned by ``owner``.

    Without ``name``, the clone is named after the run, shortened to fit: ``"<name> (clone)"``.
    """
    if not name:
        suffix = " (clone)"
        name = (run.name or run.seed_name)[: Run._meta.get_field("name").max_length - len(suffix)] + suffix
    clone = Run(owner=owner, cloned_from=run, name=name)
    for field in CONFIG_FIELDS:
        setattr(clone, field, getattr(run, field))
    clone.save()
    _event(clone.pk, "status", {"status": clone.status, "cloned_from": run.pk})
    return clone


# -- stepping -----------------------------------------------------------------------------------
@dataclass
class BatchWork:
    """One batch run through the engine, not yet stored."""

    run: Run
    config: Any
    scheduler: Any
    report: Any
    wall_s: float


def run_step(*, run_id: int, batch: int, chunk_s: float | None = None) -> str:
    """Claim a running run at ``batch``, run batches and store each; queue what follows.

    Batches go on in this process while the run is running and ``chunk_s`` (default
    ``STEP_CHUNK_S``) has not passed since the step began, which saves a trip through the
    broker per batch; then the next step is queued, so runs take turns on the workers.
    Each batch is claimed and committed on its own: a pause or a kill costs at most the
    batch in flight.

    A run that evaluates apart (``EVALUATE_APART``: language-model runs by default) only asks
    here: the children are written, saved as a ``PendingBatch``, and evaluated by
    ``evaluate_chunk`` tasks on ``sim`` (see ``run_evaluate_chunk``), the last of which stores
    the batch and queues the next step.

    Returns:
        What ended the step: ``"skipped"`` (not claimable: not running, another step holds
        it, or the batch is already stored), ``"committed"`` (the last batch was stored),
        ``"evaluating"`` (the batch's evaluation is queued on ``sim``), ``"duplicate"``
        (another copy stored that batch meanwhile) or ``"failed"`` (the run failed; see its
        error).

    Raises:
        DatabaseError: If the database fails; the claim is released so a retry can claim.
    """
    deadline = time.monotonic() + (settings.STEP_CHUNK_S if chunk_s is None else chunk_s)
    while True:
        outcome = _run_step_once(run_id=run_id, batch=batch, go_on=lambda: time.monotonic() < deadline)
        if outcome != "continue":
            return outcome
        batch += 1


def _run_step_once(*, run_id: int, batch: int, go_on: Callable[[], bool]) -> str:
    token = uuid.uuid4().hex
    if not _run_claim(run_id=run_id, batch=batch, token=token):
        run_settle_pause(run_id=run_id)
        log.debug("run %d batch %d: not claimable, skipped", run_id, batch)
        return "skipped"
    with _failing_run(run_id=run_id, batch=batch, token=token) as failed:
        with _Heartbeat(run_id=run_id, token=token):
            run = Run.objects.get(pk=run_id)
            if _evaluates_apart(run):
                return _run_ask(run=run, batch=batch, token=token)
            work = _run_batch(run=run, batch=batch)
    if failed:
        return "failed"
    try:
        return _run_commit(work, token=token, go_on=go_on)
    except DatabaseError:
        _run_release(run_id=run_id, token=token)
        raise


@contextlib.contextmanager
def _failing_run(*, run_id: int, batch: int, token: str, release: bool = True) -> Iterator[list[bool]]:
    """Around a batch's engine work: a soft time limit or anything the engine raises fails the
    run with a readable error, and the list yielded gets an item; a database error is raised
    (the task retries), after giving the claim back if ``release``."""
    failed: list[bool] = []
    try:
        yield failed
    except DatabaseError:
        if release:
            _run_release(run_id=run_id, token=token)
        raise
    except SoftTimeLimitExceeded:
        limit = settings.STEP_TIME_LIMIT_S
        error = (
            f"batch {batch} took longer than STEP_TIME_LIMIT_S={limit:.0f} s: clone the run with "
            "a smaller batch_size, or raise STEP_TIME_LIMIT_S for the workers"
        )
        _run_fail(run_id=run_id, token=token, error=error)
        failed.append(True)
    except Exception as exc:  # anything the engine raises ends the run with a readable error
        log.exception("run %d batch %d failed", run_id, batch)
        _run_fail(run_id=run_id, token=token, error=f"batch {batch} failed: {type(exc).__name__}: {exc}")
        failed.append(True)


def _run_claim(*, run_id: int, batch: int, token: str) -> bool:
    """Take the run for one step (healthchecks' idiom: a conditional UPDATE of one row)."""
    now = timezone.now()
    free = Q(lease_token="") | Q(heartbeat_at__lt=now - _stale_after()) | Q(heartbeat_at=None)
    claimable = Run.objects.filter(pk=run_id, status=Status.RUNNING, batches=batch).filter(free)
    return claimable.update(lease_token=token, heartbeat_at=now) == 1


def _evaluates_apart(run: Run) -> bool:
    """Whether the run's children are evaluated by ``evaluate_chunk`` tasks (``EVALUATE_APART``)."""
    return settings.EVALUATE_APART == "ALL" or run.mutation not in engine.CPU_OPERATORS


def _run_scheduler(*, run: Run, batch: int, operator: bool = True) -> tuple[Any, Any]:
    """The run's configuration and its scheduler at ``batch`` (fresh for a new run).

    Raises:
        RuntimeError: If the saved state is not at ``batch``.
    """
    config = engine.run_config(run)
    if run.state is None:
        scheduler = engine.new_scheduler(config, seed_text=run.seed_text, preamble=run.seed_preamble)
    else:
        scheduler = engine.restore_scheduler(run.state, config, operator=operator)
    if scheduler.batch != batch:
        raise RuntimeError(
            f"the saved state is at batch {scheduler.batch}, the run row at {batch}; the run's "
            "state is inconsistent: clone the run to start again"
        )
    return config, scheduler


def _batch_size(config: Any, scheduler: Any) -> int:
    size = min(config.batch, config.evals - scheduler.evaluations)
    if size < 1:
        raise RuntimeError(
            f"the run has spent its budget ({scheduler.evaluations} of {config.evals} evaluations) "
            "but was still running; clone it with a larger budget to go on"
        )
    return size


def _run_batch(*, run: Run, batch: int) -> BatchWork:
    """ask -> evaluate -> tell, in memory only."""
    config, scheduler = _run_scheduler(run=run, batch=batch)
    started = time.perf_counter()
    candidates = scheduler.ask(_batch_size(config, scheduler))
    results = engine.evaluate(candidates, config, workers=settings.EVAL_WORKERS)
    report = scheduler.tell(results)
    return BatchWork(run, config, scheduler, report, time.perf_counter() - started)


# -- runs that evaluate apart: ask on `llm`, evaluate in chunks on `sim` ---------------------------
#: What a chunk reads of its pending batch: not the scheduler's state (the whole archive).
_CHUNK_FIELDS = ("run", "batch", "token", "size", "chunk_size", "results")

def _run_ask(*, run: Run, batch: int, token: str) -> str:
    """Ask for batch ``batch`` and queue its evaluation chunks; or, if it was asked before (a
    re-enqueued step), take its pending batch over and queue only what is missing."""
    if PendingBatch.objects.filter(run=run, batch=batch).exists():
        return _pending_take_over(run=run, batch=batch, token=token)
    config, scheduler = _run_scheduler(run=run, batch=batch)
    started_at = timezone.now()
    scheduler.ask(_batch_size(config, scheduler))
    state = scheduler.to_dict()
    candidates = state.pop("pending")
    with transaction.atomic():
        if not Run.objects.filter(pk=run.pk, batches=batch, lease_token=token).update(heartbeat_at=timezone.now()):
            log.warning("run %d batch %d: claim taken over while writing children; dropped", run.pk, batch)
            return "duplicate"
        pending = PendingBatch.objects.create(
            run=run, batch=batch, token=token, state=state, candidates=candidates, size=len(candidates),
            chunk_size=settings.EVAL_CHUNK_SIZE, started_at=started_at,
        )  # fmt: skip
        # The UPDATE above holds the run's row lock, as every writer of its events does.
        _event(run.pk, "evaluating", {"batch": batch, "children": pending.size, "chunks": pending.chunks})
        for chunk in range(pending.chunks):
            _on_commit(_enqueue_chunk, run_id=run.pk, batch=batch, chunk=chunk)
    log.info("run %d batch %d: %d children written; %d evaluation chunks queued", run.pk, batch, pending.size, pending.chunks)
    return "evaluating"


def _pending_take_over(*, run: Run, batch: int, token: str) -> str:
    with transaction.atomic():
        pending = PendingBatch.objects.select_for_update().only(*_CHUNK_FIELDS).filter(run=run, batch=batch).first()
        if pending is None:  # its last chunk stored it meanwhile
            return "duplicate"
        pending.token = token
        pending.save(update_fields=["token"])
        missing = pending.missing()
        for chunk in missing:
            _on_commit(_enqueue_chunk, run_id=run.pk, batch=batch, chunk=chunk)
    log.warning("run %d batch %d: pending batch taken over; chunks %s queued again", run.pk, batch, missing)
    if missing:
        return "evaluating"
    return _pending_commit(run_id=run.pk, batch=batch)  # every chunk is in; the store was lost


def run_evaluate_chunk(*, run_id: int, batch: int, chunk: int) -> str:
    """Evaluate chunk ``chunk`` of the pending batch ``batch`` of run ``run_id``; the chunk that
    completes the batch stores it (``_run_commit``) and queues the next step.

    Idempotent: a chunk whose results are in, or whose batch is stored, is skipped.

    Returns:
        ``"skipped"``, ``"evaluated"`` (results saved, chunks still missing), or what storing the
        batch returned (``"committed"``, ``"duplicate"``, ``"failed"``).
    """
    pending = PendingBatch.objects.only(*_CHUNK_FIELDS, "candidates").filter(run_id=run_id, batch=batch).first()
    if pending is None or str(chunk) in pending.results or chunk >= pending.chunks:
        return "skipped"
    run = Run.objects.defer("state").get(pk=run_id)
    candidates = pending.candidates[chunk * pending.chunk_size : (chunk + 1) * pending.chunk_size]
    # A database error here keeps the claim: the retried chunk, or its batch's other chunks, go on.
    with _failing_run(run_id=run_id, batch=batch, token=pending.token, release=False) as failed:
        with _Heartbeat(run_id=run_id, token=pending.token):
            results = engine.evaluate(
                [engine.candidate(c) for c in candidates], engine.run_config(run), workers=settings.EVAL_WORKERS
            )
    if failed:
        return "failed"
    with transaction.atomic():
        pending = PendingBatch.objects.select_for_update().only(*_CHUNK_FIELDS).filter(pk=pending.pk).first()
        if pending is None or str(chunk) in pending.results:
            return "skipped"
        pending.results[str(chunk)] = [r.to_dict() for r in results]
        pending.save(update_fields=["results"])
        Run.objects.filter(pk=run_id, lease_token=pending.token).update(heartbeat_at=timezone.now())
    if pending.missing():
        return "evaluated"
    return _pending_commit(run_id=run_id, batch=batch)


def _pending_commit(*, run_id: int, batch: int) -> str:
    """Tell the scheduler a fully evaluated pending batch and store it like any step."""
    pending = PendingBatch.objects.filter(run_id=run_id, batch=batch).first()
    if pending is None:
        return "duplicate"
    with _failing_run(run_id=run_id, batch=batch, token=pending.token, release=False) as failed:
        run = Run.objects.defer("state").get(pk=run_id)
        config = engine.run_config(run)
        state = {**pending.state, "pending": pending.candidates}
        scheduler = engine.restore_scheduler(state, config, operator=False)
        results = [engine.result(r) for i in range(pending.chunks) for r in pending.results[str(i)]]
        report = scheduler.tell(results)
        wall_s = (timezone.now() - pending.started_at).total_seconds()
    if failed:
        return "failed"
    return _run_commit(BatchWork(run, config, scheduler, report, wall_s), token=pending.token, go_on=lambda: False)


def _run_commit(work: BatchWork, *, token: str, go_on: Callable[[], bool]) -> str:
    """Store one batch in one transaction keyed by ``(run, batch)``; queue what follows.

    Returns:
        ``"continue"`` if the run is still running and ``go_on()`` says this step runs the
        next batch itself; else ``"committed"`` (the next step, if any, is queued) or
        ``"duplicate"``.
    """
    outcome = "committed"
    run, scheduler, metrics = work.run, work.scheduler, work.report.metrics
    batch = metrics.batch
    records = engine.genome_records(work.report, scheduler)
    state = scheduler.to_dict()
    try:
        with transaction.atomic():
            current = (
                Run.objects.select_for_update().only("status", "batches", "lease_token", "trace_batches").get(pk=run.pk)
            )
            if current.batches != batch or current.lease_token != token:
                log.warning("run %d batch %d: already stored by another step; dropped", run.pk, batch)
                return "duplicate"
            genomes = _genomes_create(run=run, records=records, config=work.config)
            PendingBatch.objects.filter(run=run, batch__lte=batch).delete()
            changed = _cells_update(run=run, scheduler=scheduler, records=records, genomes=genomes)
            _metric_create(run=run, metrics=metrics, wall_s=work.wall_s)
            status = current.status
            if status in Run.ACTIVE and scheduler.evaluations >= run.evals:
                status = Status.FINISHED
            elif status == Status.PAUSING:
                status = Status.PAUSED
            now = timezone.now()
            owed = _traces_owed(current.trace_batches, add={batch: now} if changed else {})
            stored = Run.objects.filter(pk=run.pk, batches=batch, lease_token=token).update(
                trace_batches=owed,
                batches=scheduler.batch, evaluations=scheduler.evaluations,
                valid=F("valid") + metrics.valid, niches_filled=metrics.niches_filled,
                max_fitness=metrics.max_fitness, qd_score=metrics.qd_score, state=state,
                lease_token="", heartbeat_at=now, updated_at=now, status=status,
                finished_at=now if status == Status.FINISHED else None,
            )  # fmt: skip
            if stored != 1:
                raise IntegrityError(f"run {run.pk} moved past batch {batch} during the commit")
            _event(run.pk, "batch", _batch_payload(metrics, work.wall_s, changed))
            if status != current.status:
                _status_changed(run, status)
            elif status == Status.RUNNING and go_on():
                outcome = "continue"
            elif status == Status.RUNNING:
                _on_commit(_enqueue_step, run_id=run.pk, batch=scheduler.batch, mutation=run.mutation)
            if changed:
                _on_commit(_enqueue_traces, run_id=run.pk, batch=batch)
    except IntegrityError:
        log.warning("run %d batch %d: stored twice? rolled back this copy", run.pk, batch, exc_info=True)
        return "duplicate"
    log.info(
        "run %d batch %d stored: %d genomes, %d evaluations, %.1f evals/s",
        run.pk, batch, len(records), scheduler.evaluations, len(records) / max(work.wall_s, 1e-9),
    )  # fmt: skip
    return outcome


def _genomes_create(*, run: Run, records: list[dict[str, Any]], config: Any) -> dict[int, Genome]:
    """Insert a batch's genomes and their evaluations; return them by engine id."""
    parents = {r["parent_id"] for r in records if r["parent_id"] is not None}
    parent_pks = dict(Genome.objects.filter(run=run, gid__in=parents).values_list("gid", "pk"))
    rows = [
        Genome(
            run=run, gid=r["id"], batch=r["batch"], parent_id=parent_pks.get(r["parent_id"]),
            parent_gid=r["parent_id"], text=r["text"], diff=r["diff"] or "",
            operator=r["operator"], message=(r["message"] or "")[:300], outcome=r["outcome"],
            failure=r["failure"] or "", failure_message=r["failure_message"] or "",
            fitness=r["fitness"], cell=engine.cell_key(r["cell"]) if r["cell"] else "",
            warnings=list(r["warnings"]),
        )  # fmt: skip
        for r in records
    ]
    Genome.objects.bulk_create(rows)
    if any(g.pk is None for g in rows):  # databases that cannot return ids from a bulk insert
        pks = dict(Genome.objects.filter(run=run, gid__in=[g.gid for g in rows]).values_list("gid", "pk"))
        for genome in rows:
            genome.pk = pks[genome.gid]
    how = engine.eval_config(config)
    sim_seconds, settle_seconds = how.settings.sim_seconds, how.settings.settle_seconds
    Evaluation.objects.bulk_create(
        Evaluation(
            genome_id=genome.pk, fitness=r["fitness"], height=r["descriptor"][0],
            width=r["descriptor"][1], mass=r["descriptor"][2], cell=r["cell"],
            terrain=config.terrain, sim_seconds=sim_seconds, settle_seconds=settle_seconds,
        )  # fmt: skip
        for genome, r in zip(rows, records)
        if r["fitness"] is not None
    )
    return {g.gid: g for g in rows}


def _cells_update(
    *, run: Run, scheduler: Any, records: list[dict[str, Any]], genomes: dict[int, Genome]
) -> list[dict[str, Any]]:
    """Point each archive cell the batch changed at its new elite; return the changes."""
    cells = sorted({tuple(r["cell"]) for r in records if r["outcome"] in ELITE_OUTCOMES})
    elites = [scheduler.archive.elite(cell) for cell in cells]
    ArchiveCell.objects.bulk_create(
        [
            ArchiveCell(
                run=run, cell=engine.cell_key(e.cell), coords=list(e.cell),
                genome_id=genomes[e.genome_id].pk, fitness=e.fitness,
                batch=genomes[e.genome_id].batch,
            )  # fmt: skip
            for e in elites
        ],
        update_conflicts=True,
        unique_fields=["run", "cell"],
        update_fields=["genome", "fitness", "batch", "coords"],
    )
    return [{"cell": list(e.cell), "gid": e.genome_id, "fitness": e.fitness} for e in elites]


def _metric_create(*, run: Run, metrics: Any, wall_s: float) -> RunMetric:
    data = metrics.to_dict()
    return RunMetric.objects.create(
        run=run, batch=data["batch"], evaluations=data["evaluations"],
        batch_size=data["batch_size"], valid=data["valid"], valid_rate=data["valid_rate"],
        niches_filled=data["niches_filled"], coverage=data["coverage"],
        max_fitness=data["max_fitness"], qd_score=data["qd_score"], wall_s=wall_s,
        evals_per_s=data["batch_size"] / wall_s if wall_s > 0 else 0.0,
        outcomes=data["outcomes"], failures=data["failures"], operators=data["operators"],
    )  # fmt: skip


def _batch_payload(metrics: Any, wall_s: float, cells: list[dict[str, Any]]) -> dict[str, Any]:
    """What a ``batch`` event carries: the batch's metrics and the cells it changed."""
    data = metrics.to_dict()
    keep = ("batch", "evaluations", "batch_size", "valid", "valid_rate", "niches_filled",
            "coverage", "max_fitness", "qd_score", "outcomes")  # fmt: skip
    payload = {key: data[key] for key in keep}
    payload["evals_per_s"] = data["batch_size"] / wall_s if wall_s > 0 else 0.0
    payload["cells"] = cells
    return payload


def _run_release(*, run_id: int, token: str) -> None:
    """Give the claim back after a database error, so a retry can claim at once."""
    try:
        Run.objects.filter(pk=run_id, lease_token=token).update(lease_token="")
    except DatabaseError:
        log.warning("run %d: could not release its claim; the watchdog will", run_id, exc_info=True)


def _run_fail(*, run_id: int, token: str, error: str) -> None:
    with transaction.atomic():
        now = timezone.now()
        if Run.objects.filter(pk=run_id, lease_token=token).update(
            status=Status.FAILED, error=error, lease_token="", finished_at=now, updated_at=now
        ):
            _event(run_id, "status", {"status": Status.FAILED, "error": error})
            PendingBatch.objects.filter(run_id=run_id).delete()  # its other chunks find nothing to do


def run_settle_pause(*, run_id: int | None = None) -> list[int]:
    """Turn ``pausing`` runs that no live step holds into ``paused``.

    Args:
        run_id: Only this run; ``None``: every such run (the watchdog).

    Returns:
        The ids of the runs now paused.
    """
    stale = timezone.now() - _stale_after()
    runs = Run.objects.filter(status=Status.PAUSING).filter(
        Q(lease_token="") | Q(heartbeat_at__lt=stale) | Q(heartbeat_at=None)
    )
    if run_id is not None:
        runs = runs.filter(pk=run_id)
    paused = []
    for pk in runs.values_list("pk", flat=True):
        with transaction.atomic():
            if Run.objects.filter(pk=pk, status=Status.PAUSING).update(
                status=Status.PAUSED, lease_token="", updated_at=timezone.now()
            ):
                _event(pk, "status", {"status": Status.PAUSED})
                paused.append(pk)
    return paused


def runs_recover_stale() -> list[int]:
    """The watchdog: re-enqueue the step of every running run that shows no sign of life.

    A run is stale when its heartbeat (claim, beat while stepping, or enqueue) is older
    than ``RUN_STALE_AFTER_S``: its worker died, or its queued message was lost with a
    killed worker. Each recovery also refreshes the heartbeat, so a run is retried once
    per period, and a second watchdog racing this one recovers nothing.

    Returns:
        The ids of the runs re-enqueued.
    """
    now = timezone.now()
    stale = Run.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat_at__lt=now - _stale_after()) | Q(heartbeat_at=None)
    )
    recovered = []
    for pk, heartbeat, batch, mutation in stale.values_list("pk", "heartbeat_at", "batches", "mutation"):
        with transaction.atomic():
            if Run.objects.filter(pk=pk, status=Status.RUNNING, heartbeat_at=heartbeat).update(
                lease_token="", heartbeat_at=now
            ):
                _on_commit(_enqueue_step, run_id=pk, batch=batch, mutation=mutation)
                recovered.append(pk)
    if recovered:
        log.warning("watchdog: re-enqueued the step of stale runs %s", recovered)
    run_settle_pause()
    return recovered


def run_record_traces(*, run_id: int, batch: int) -> int:
    """Store replay traces of the genomes of ``batch`` that entered the archive.

    Idempotent: genomes that already have a trace are skipped. The traces stored are
    announced by one ``trace`` event (payload: ``batch`` and the engine ids ``gids``), so a
    page waiting for a replay, such as the run page's best walker, fetches it then. The batch
    is then no longer owed (``Run.trace_batches``), even where no trace could be made (a
    walker whose re-run diverged): the watchdog only re-queues tasks that never ran.

    Returns:
        How many traces were stored.
    """
    run = Run.objects.defer("state").get(pk=run_id)
    config = engine.run_config(run)
    todo = Evaluation.objects.filter(
        genome__run_id=run_id, genome__batch=batch, genome__outcome__in=ELITE_OUTCOMES, trace=None
    ).select_related("genome")
    traces = {}  # simulated before the transaction: it holds no lock while walkers walk
    for evaluation in todo:
        data = engine.trace_bytes(text=evaluation.genome.text, preamble=run.seed_preamble, config=config)
        if data is not None:
            traces[evaluation] = data
    with transaction.atomic():
        _lock_events(run_id)
        gids = sorted(
            evaluation.genome.gid
            for evaluation, data in traces.items()  # another copy of this task may have stored some
            if Evaluation.objects.filter(pk=evaluation.pk, trace=None).update(trace=data)
        )
        if gids:
            _event(run_id, "trace", {"batch": batch, "gids": gids})
        owed = Run.objects.filter(pk=run_id).values_list("trace_batches", flat=True).first()
        if owed and str(batch) in owed:
            owed = _traces_owed(owed, drop=[batch])
            Run.objects.filter(pk=run_id).update(trace_batches=owed)
    return len(gids)


def traces_recover_stale() -> list[tuple[int, int]]:
    """The watchdog, for replays: queue again every trace task queued longer ago than
    ``RUN_STALE_AFTER_S`` that has not run (its message was lost with a killed worker, or it
    waits behind a long queue: a second copy is harmless, the task is idempotent).

    Returns:
        The ``(run id, batch)`` pairs queued again.
    """
    now = timezone.now()
    stale = now - _stale_after()
    requeued = []
    owing = Run.objects.exclude(trace_batches={}).values_list("pk", "trace_batches")
    for pk in [pk for pk, owed in owing if _late_traces(owed, stale)]:
        with transaction.atomic():
            owed = Run.objects.select_for_update().filter(pk=pk).values_list("trace_batches", flat=True).first()
            late = _late_traces(owed or {}, stale)
            if not late:
                continue
            Run.objects.filter(pk=pk).update(trace_batches=_traces_owed(owed, add={b: now for b in late}))
            for batch in late:
                _on_commit(_enqueue_traces, run_id=pk, batch=batch)
                requeued.append((pk, batch))
    if requeued:
        log.warning("watchdog: queued again the replay traces of (run, batch) %s", requeued)
    return requeued


def _traces_owed(
    owed: dict[str, str], *, add: dict[int, datetime] | None = None, drop: Sequence[int] = ()
) -> dict[str, str]:
    """``Run.trace_batches`` with batches added (queued at the given times) or dropped."""
    owed = {**owed, **{str(batch): at.isoformat() for batch, at in (add or {}).items()}}
    for batch in drop:
        owed.pop(str(batch), None)
    return owed


def _late_traces(owed: dict[str, str], stale: datetime) -> list[int]:
    """The batches of ``Run.trace_batches`` whose trace task was queued before ``stale``."""
    return [int(batch) for batch, queued in owed.items() if datetime.fromisoformat(queued) < stale]


# -- helpers ------------------------------------------------------------------------------------
class _Heartbeat:
    """While a step works, refresh its run's heartbeat from a thread every ``RUN_HEARTBEAT_S``."""

    def __init__(self, *, run_id: int, token: str) -> None:
        self.run_id, self.token = run_id, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.RUN_HEARTBEAT_S):
                try:
                    Run.objects.filter(pk=self.run_id, lease_token=self.token).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:
                    log.warning("run %d: heartbeat not written; retrying", self.run_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.RUN_STALE_AFTER_S)


def _check_owner(run: Run, user: User) -> None:
    if not user.is_authenticated:
        raise PermissionDenied("log in to control runs")
    if run.owner_id != user.pk and not user.is_superuser:
        raise PermissionDenied(f"run {run.pk} belongs to another user; clone it to run your own copy")


def _check_run_config(run: Run) -> None:
    try:
        config = engine.run_config(run)
    except ValueError as exc:
        raise ValidationError({"mutation": str(exc)}) from exc
    except TypeError as exc:
        raise ValidationError({"dims": f"dims and ranges must be lists of numbers: {exc}"}) from exc
    errors = engine.check_config(config)
    if errors:
        raise ValidationError(errors)


def _conflict(run: Run, verb: str, rule: str) -> str:
    status = Run.objects.filter(pk=run.pk).values_list("status", flat=True).first()
    return f"run {run.pk} is {status}, so it cannot be {verb}: {rule}"


def _fresh(run: Run) -> Run:
    run.refresh_from_db()
    return run


def _status_changed(run: Run, status: str) -> None:
    """Record a status change; a run that becomes ``running`` gets its next step queued."""
    _event(run.pk, "status", {"status": status})
    if status == Status.RUNNING:
        current = Run.objects.filter(pk=run.pk).values_list("batches", "mutation").get()
        _on_commit(_enqueue_step, run_id=run.pk, batch=current[0], mutation=current[1])


def _lock_events(run_id: int) -> None:
    """Take the run's row lock, as every other writer of its events holds it (a step's commit, run
    control's conditional UPDATEs), before writing an event in this transaction.

    A run's event ids must become visible in id order: a WebSocket consumer sends what lies
    after the last id it sent, so an event committed after a higher id was sent is never sent.
    """
    Run.objects.select_for_update().filter(pk=run_id).values_list("pk", flat=True).first()


def _event(run_id: int, kind: str, payload: dict[str, Any]) -> RunEvent:
    """Write an event and nudge its run's clients after the commit.

    The caller holds the run's row lock in this transaction (``_lock_events``), or the run is
    new, so that the run's events commit in id order.
    """
    event = RunEvent.objects.create(run_id=run_id, kind=kind, payload=payload)
    _on_commit(events.notify, run_id=run_id, event_id=event.id)
    return event


def _on_commit(func: Any, **kwargs: Any) -> None:
    transaction.on_commit(functools.partial(func, **kwargs))


def _enqueue_step(*, run_id: int, batch: int, mutation: str) -> None:
    from elmweb.runs.tasks import step_run

    try:
        step_run.apply_async(args=(run_id, batch), queue=engine.step_queue(mutation))
    except BrokerError:
        log.warning(
            "run %d: its step could not be queued; the watchdog retries within %.0f s",
            run_id, settings.RUN_STALE_AFTER_S, exc_info=True,
        )  # fmt: skip


def _enqueue_chunk(*, run_id: int, batch: int, chunk: int) -> None:
    from elmweb.runs.tasks import evaluate_chunk

    try:
        evaluate_chunk.delay(run_id, batch, chunk)
    except BrokerError:
        log.warning(
            "run %d: chunk %d of batch %d could not be queued; the watchdog retries within %.0f s",
            run_id, chunk, batch, settings.RUN_STALE_AFTER_S, exc_info=True,
        )  # fmt: skip


def _enqueue_traces(*, run_id: int, batch: int) -> None:
    from elmweb.runs.tasks import record_traces

    try:
        record_traces.delay(run_id, batch)
    except BrokerError:
        log.warning("run %d: traces of batch %d not queued", run_id, batch, exc_info=True)
