"""The ask/tell loop of MAP-Elites: the scheduler proposes, someone else evaluates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from evolution.qd._archive import GridArchive
from evolution.qd._emitters import Emitter
from evolution.qd._metrics import BatchMetrics, batch_metrics
from evolution.types import Candidate, Outcome, Result


class SchedulerOrderError(RuntimeError):
    """``ask`` and ``tell`` were called out of turn."""


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What ``tell`` returns: each candidate's outcome and the batch's metrics."""

    candidates: tuple[Candidate, ...]
    results: tuple[Result, ...]
    outcomes: tuple[Outcome, ...]
    metrics: BatchMetrics


class Scheduler:
    """Combines an archive, an emitter and a mutation operator; never evaluates anything.

    The first ``ask`` returns the seed alone (batch 0). Every later ``ask(n)`` selects ``n``
    parents with the emitter and mutates them in one operator call. ``tell`` must follow each
    ``ask`` with one result per candidate, in order.

    All state (archive, RNG, counters) is explicit and round-trips through ``to_dict`` /
    ``from_dict``: a run saved between batches and resumed gives exactly the archive of a run
    that never stopped.

    Args:
        archive: Where elites live.
        emitter: Chooses parents.
        operator: Mutation operator (``evolution.mutation.Operator``); ``None`` for a scheduler
            that only tells a batch asked elsewhere (see ``from_dict``).
        seed_text: The seed's mutable program text.
        preamble: Fixed code run before every program of this run.
        rng_seed: Seed of the run's random generator (selection and mutation).
    """

    def __init__(
        self,
        archive: GridArchive,
        emitter: Emitter,
        operator: Any,
        *,
        seed_text: str,
        preamble: str = "",
        rng_seed: int = 0,
    ) -> None:
        self.archive = archive
        self.emitter = emitter
        self.operator = operator
        self.seed_text = seed_text
        self.preamble = preamble
        self.rng = np.random.Generator(np.random.PCG64(rng_seed))
        self.batch = 0
        self.next_id = 0
        self.evaluations = 0
        self._pending: list[Candidate] | None = None
        self.operator_name = "" if operator is None else getattr(operator, "name", type(operator).__name__)

    def ask(self, n: int) -> list[Candidate]:
        """Propose the next batch: the seed first, then ``n`` children of archive elites.

        Raises:
            SchedulerOrderError: If the previous batch was not told yet.
            RuntimeError: If the archive is empty after the seed (the seed itself failed), or the
                scheduler was restored without an operator (``from_dict(operator=None)``).
            ValueError: If ``n < 1``.
        """
        if self._pending is not None:
            raise SchedulerOrderError(
                "ask() was called again before tell(); evaluate the last batch and tell() its results first"
            )
        if n < 1:
            raise ValueError(f"ask(n) needs n >= 1, got {n}")
        if self.next_id == 0:
            self._pending = [Candidate(0, 0, self.seed_text, self.preamble)]
            return list(self._pending)
        if len(self.archive) == 0:
            raise RuntimeError(
                "the archive is empty: the seed program failed, so there is nothing to mutate; "
                "fix the seed (see its recorded failure) and start a new run"
            )
        if self.operator is None:
            raise RuntimeError(
                "this scheduler was restored without a mutation operator, to tell a batch only; "
                "restore it with the run's operator to ask for children"
            )
        parents = self.emitter.select(self.archive, n, rng=self.rng)
        children = self.operator.mutate([p.text for p in parents], rng=self.rng)
        self._pending = [
            Candidate(
                id=self.next_id + i,
                batch=self.batch,
                text=child.text,
                preamble=self.preamble,
                parent_id=parent.genome_id,
                operator=child.operator,
                diff=child.diff,
                message=child.message,
                failure=child.failure,
                failure_message=child.failure_message,
            )
            for i, (parent, child) in enumerate(zip(parents, children))
        ]
        return list(self._pending)

    def tell(self, results: Sequence[Result]) -> BatchReport:
        """Insert the evaluated batch into the archive.

        Raises:
            SchedulerOrderError: If there is no asked batch to tell.
            ValueError: If the results do not match the asked candidates one to one, in order.
        """
        if self._pending is None:
            raise SchedulerOrderError("tell() was called without a pending ask(); call ask(n) first")
        pending = self._pending
        ids = [r.id for r in results]
        if ids != [c.id for c in pending]:
            raise ValueError(
                f"tell() needs one result per asked candidate, in order: expected ids "
                f"{pending[0].id}..{pending[-1].id} ({len(pending)}), got {len(ids)} results"
            )
        outcomes = [
            self.archive.add(r.id, r.fitness, r.descriptor, c.text) if r.valid else Outcome.FAILED
            for c, r in zip(pending, results)
        ]
        self.evaluations += len(results)
        metrics = batch_metrics(
            batch=self.batch,
            evaluations=self.evaluations,
            candidates=pending,
            results=results,
            outcomes=outcomes,
            archive=self.archive,
        )
        self.next_id += len(pending)
        self.batch += 1
        self._pending = None
        return BatchReport(tuple(pending), tuple(results), tuple(outcomes), metrics)

    @property
    def pending(self) -> bool:
        """Whether a batch was asked and not yet told."""
        return self._pending is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, between batches or between ``ask`` and ``tell``.

        Saved between the two, the state holds the asked candidates (``"pending"``): a
        scheduler restored from it takes ``tell`` of their results, so a batch can be asked in
        one process and told in another.
        """
        return {
            "archive": self.archive.to_dict(),
            "rng": self.rng.bit_generator.state,
            "batch": self.batch,
            "next_id": self.next_id,
            "evaluations": self.evaluations,
            "seed_text": self.seed_text,
            "preamble": self.preamble,
            "emitter": self.emitter.name,
            "operator": self.operator_name,
            "pending": None if self._pending is None else [c.to_dict() for c in self._pending],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, emitter: Emitter, operator: Any) -> Scheduler:
        """Restore a scheduler saved by ``to_dict`` (emitter and operator are configuration).

        With ``operator=None`` the scheduler can ``tell`` (a batch saved between ask and tell)
        and save itself, but not ``ask``: a process that only evaluates needs no model.
        """
        scheduler = cls(
            GridArchive.from_dict(data["archive"]),
            emitter,
            operator,
            seed_text=data["seed_text"],
            preamble=data["preamble"],
        )
        scheduler.rng.bit_generator.state = data["rng"]
        scheduler.batch = data["batch"]
        scheduler.next_id = data["next_id"]
        scheduler.evaluations = data["evaluations"]
        if operator is None:
            scheduler.operator_name = data["operator"]
        if data.get("pending") is not None:  # states saved before "pending" existed have none
            scheduler._pending = [Candidate.from_dict(c) for c in data["pending"]]
        return scheduler
