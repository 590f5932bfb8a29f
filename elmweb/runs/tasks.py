"""Celery entry points of the runs app: thin, they take ids and call services.

* ``step_run(run_id, batch)``: one batch of a run (queue ``sim``, or ``llm`` for runs whose
  operator is a language model: ``engine.step_queue``); it queues the next step itself.
* ``evaluate_chunk(run_id, batch, chunk)``: evaluate a slice of a batch whose children a step
  wrote (runs that evaluate apart, ``EVALUATE_APART``; queue ``sim``); the last chunk of a
  batch stores it and queues the next step.
* ``record_traces(run_id, batch)``: replay traces of the batch's new elites (queue ``sim``).
* The watchdog: a thread in each worker's main process that calls
  ``services.runs_recover_stale`` and ``services.traces_recover_stale`` every
  ``WATCHDOG_INTERVAL_S``, because the embedded brokers lose the messages a killed worker had
  reserved.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from elmweb.runs import engine, services
from elmweb.training.services import models_recover_stale

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    soft_time_limit=settings.STEP_TIME_LIMIT_S,
    time_limit=settings.STEP_TIME_LIMIT_S + 60,
)
def step_run(self: Task, run_id: int, batch: int) -> str:
    """Run batch ``batch`` of run ``run_id`` (skipped if it is not claimable)."""
    try:
        return services.run_step(run_id=run_id, batch=batch)
    except DatabaseError as exc:
        log.warning("run %d batch %d: database error, retrying: %s", run_id, batch, exc)
        raise self.retry(exc=exc, countdown=2, max_retries=10) from exc


@shared_task(
    bind=True,
    acks_late=True,
    soft_time_limit=settings.STEP_TIME_LIMIT_S,
    time_limit=settings.STEP_TIME_LIMIT_S + 60,
)
def evaluate_chunk(self: Task, run_id: int, batch: int, chunk: int) -> str:
    """Evaluate chunk ``chunk`` of the pending batch ``batch`` of run ``run_id``."""
    try:
        return services.run_evaluate_chunk(run_id=run_id, batch=batch, chunk=chunk)
    except DatabaseError as exc:
        log.warning("run %d batch %d chunk %d: database error, retrying: %s", run_id, batch, chunk, exc)
        raise self.retry(exc=exc, countdown=2, max_retries=10) from exc


@shared_task(acks_late=True)
def record_traces(run_id: int, batch: int) -> int:
    """Store the replay traces of the new elites of batch ``batch`` of run ``run_id``."""
    return services.run_record_traces(run_id=run_id, batch=batch)


class Watchdog(threading.Thread):
    """Every ``WATCHDOG_INTERVAL_S`` seconds, from the worker's main process: re-enqueues stale
    runs and lost replay-trace tasks, and fails training jobs whose worker died."""

    def __init__(self) -> None:
        super().__init__(name="elmweb-watchdog", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            close_old_connections()
            try:
                services.runs_recover_stale()
                services.traces_recover_stale()
                models_recover_stale()
            except DatabaseError:
                log.warning("watchdog: database error; trying again next round", exc_info=True)
            if self.stopping.wait(settings.WATCHDOG_INTERVAL_S):
                return


_watchdog: Watchdog | None = None


@worker_ready.connect
def _start_watchdog(**kwargs: Any) -> None:
    global _watchdog
    _watchdog = Watchdog()
    _watchdog.start()
    log.info("watchdog: checking for stale runs every %.1f s", settings.WATCHDOG_INTERVAL_S)


@worker_shutdown.connect
def _stop_watchdog(**kwargs: Any) -> None:
    if _watchdog is not None:
        _watchdog.stopping.set()


@worker_process_init.connect
def _allow_evaluation_processes(**kwargs: Any) -> None:
    """Let a pool process start the evaluator's processes (``EVAL_WORKERS`` > 0).

    Celery's pool processes are billiard processes that also stand in for
    ``multiprocessing``'s current process: daemonic (``multiprocessing`` refuses children to
    daemonic processes), with an authentication key of billiard's type, which the spawn
    start method refuses to pickle. Only this process's own children see either: the
    evaluator's processes exit when their parent dies, and ``_close_evaluators`` stops
    them on a clean shutdown.
    """
    from multiprocessing.process import AuthenticationString

    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    config["daemon"] = False
    config["authkey"] = AuthenticationString(bytes(config["authkey"]))


@worker_process_shutdown.connect
def _close_evaluators(**kwargs: Any) -> None:
    engine.close_evaluators()
