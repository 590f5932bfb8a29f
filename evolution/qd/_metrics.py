"""Per-batch metrics: the paper's niches filled, max fitness and QD score, and more."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from evolution.qd._archive import GridArchive
from evolution.types import Candidate, Outcome, Result


@dataclass(frozen=True, slots=True)
class BatchMetrics:
    """What one batch did, and where the archive stands after it.

    Attributes:
        batch: Batch number.
        evaluations: Evaluations so far in the run, this batch included.
        batch_size: Candidates in this batch.
        valid: Candidates that produced a scored walker.
        valid_rate: ``valid / batch_size``.
        niches_filled: Occupied cells.
        coverage: ``niches_filled / cells``.
        max_fitness: Best fitness in the archive.
        qd_score: Sum of elite fitnesses (fitness >= 0, so no offset is needed).
        outcomes: Count of each ``Outcome`` value in this batch.
        failures: Count of each failure kind in this batch.
        operators: Per operator: ``children``, ``valid``, ``new_cell``, ``improved``.
    """

    batch: int
    evaluations: int
    batch_size: int
    valid: int
    valid_rate: float
    niches_filled: int
    coverage: float
    max_fitness: float
    qd_score: float
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    operators: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSONL and the database."""
        return asdict(self)


def batch_metrics(
    *,
    batch: int,
    evaluations: int,
    candidates: Sequence[Candidate],
    results: Sequence[Result],
    outcomes: Sequence[Outcome],
    archive: GridArchive,
) -> BatchMetrics:
    """Summarise one told batch."""
    valid = sum(r.valid for r in results)
    operators: dict[str, Counter[str]] = {}
    for cand, res, out in zip(candidates, results, outcomes):
        counts = operators.setdefault(cand.operator, Counter())
        counts["children"] += 1
        counts["valid"] += res.valid
        counts["new_cell"] += out is Outcome.NEW_CELL
        counts["improved"] += out is Outcome.IMPROVED
    return BatchMetrics(
        batch=batch,
        evaluations=evaluations,
        batch_size=len(results),
        valid=valid,
        valid_rate=valid / len(results) if results else 0.0,
        niches_filled=len(archive),
        coverage=archive.coverage,
        max_fitness=archive.max_fitness,
        qd_score=archive.qd_score,
        outcomes=dict(Counter(o.value for o in outcomes)),
        failures=dict(Counter(r.failure for r in results if r.failure)),
        operators={op: dict(c) for op, c in operators.items()},
    )
