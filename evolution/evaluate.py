"""Evaluate candidates: sandbox each program into a walker, then race the walkers.

``evaluate_candidates`` does one chunk in this process; ``Evaluator`` spreads a batch over
worker processes (one sandbox and one simulator per core). Either way every candidate gets a
``Result``: scores, or the failure that stopped it (mutation, sandbox, walker or simulation),
never an exception.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

from evolution.sodarace import DEFAULT_SETTINGS, SimSettings, SimulationDiverged, simulate_batch
from evolution.types import Candidate, Result, WalkerSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """How candidates are evaluated.

    Attributes:
        terrain: Terrain name.
        settings: Simulation settings.
        timeout: Wall-clock seconds a program may run in the sandbox.
    """

    terrain: str = "flat"
    settings: SimSettings = field(default_factory=lambda: DEFAULT_SETTINGS)
    timeout: float = 2.0


def evaluate_candidates(candidates: Sequence[Candidate], config: EvalConfig) -> list[Result]:
    """Evaluate a chunk in this process (programs still run in the sandbox's children)."""
    from evolution.sandbox import ProgramFailure, SandboxLimits, evaluate_program

    limits = SandboxLimits(timeout_s=config.timeout, cpu_s=config.timeout)
    results: dict[int, Result] = {}
    built: list[tuple[Candidate, WalkerSpec]] = []
    for cand in candidates:
        program = cand.program
        if program is None:
            results[cand.id] = Result(cand.id, failure=cand.failure or "no_program", failure_message=cand.failure_message)
            continue
        outcome = evaluate_program(program, limits=limits)
        if isinstance(outcome, ProgramFailure):
            results[cand.id] = Result(cand.id, failure=outcome.kind, failure_message=_where(cand, outcome))
        else:
            built.append((cand, outcome))
    evaluations = simulate_batch([spec for _, spec in built], config.terrain, config.settings)
    for (cand, spec), ev in zip(built, evaluations):
        if isinstance(ev, SimulationDiverged):
            results[cand.id] = Result(cand.id, failure="diverged", failure_message=str(ev), warnings=spec.warnings)
        else:
            results[cand.id] = Result(cand.id, ev.fitness, ev.descriptor.as_tuple(), warnings=spec.warnings)
    return [results[c.id] for c in candidates]


def _where(cand: Candidate, failure: object) -> str:
    """The failure's message, prefixed with its line in the candidate's own text."""
    line = getattr(failure, "line", None)
    message = getattr(failure, "message", str(failure))
    if line is None:
        return message
    own = cand.text_line(line)
    return f"line {own}: {message}" if own > 0 else f"line {line} of the fixed preamble: {message}"


class Evaluator:
    """Evaluates batches over ``workers`` processes (spawned clean, not forked).

    Results never depend on the number of workers: simulation is bit-identical in any batch,
    and programs are seeded by their own text.

    Args:
        config: How to evaluate.
        workers: Worker processes; ``0`` evaluates in this process.
    """

    def __init__(self, config: EvalConfig, *, workers: int = 2) -> None:
        self.config = config
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(self, candidates: Sequence[Candidate]) -> list[Result]:
        """One ``Result`` per candidate, in order."""
        if self.workers <= 0 or len(candidates) < 2:
            return evaluate_candidates(candidates, self.config)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=mp.get_context("spawn"), initializer=_exit_with_parent, initargs=(os.getpid(),)
            )
        size = math.ceil(len(candidates) / self.workers)
        chunks = [list(candidates[i : i + size]) for i in range(0, len(candidates), size)]
        futures = [self._pool.submit(evaluate_candidates, chunk, self.config) for chunk in chunks]
        return [r for f in futures for r in f.result()]

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _exit_with_parent(parent_pid: int, *, poll_s: float = 0.5) -> None:
    """Worker initializer: leave when the process that started the pool is gone.

    A pool's workers outlive a parent killed by a signal (SIGTERM, SIGKILL, a crashed
    Celery child) and would wait on its queue forever; this watcher makes them exit.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        log.warning("evaluation worker %d: parent %d is gone; exiting", os.getpid(), parent_pid)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
