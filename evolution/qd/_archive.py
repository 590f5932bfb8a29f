"""A grid MAP-Elites archive: one elite per cell of a regular grid over the descriptors."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

from evolution.sodarace import DEFAULT_BINS, DEFAULT_RANGES, DESCRIPTOR_NAMES
from evolution.types import Outcome

Cell = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Elite:
    """The best genome found so far in one cell.

    Attributes:
        genome_id: Id of the genome.
        fitness: Its fitness.
        descriptor: Its descriptor values (one per archive dimension).
        text: Its mutable program text (what mutation starts from).
        cell: The cell it occupies.
    """

    genome_id: int
    fitness: float
    descriptor: tuple[float, ...]
    text: str
    cell: Cell


class GridArchive:
    """Regular grid over bounded descriptor ranges, keeping the fittest genome of each cell.

    Values outside a range fall into that dimension's edge bin. A candidate replaces the
    incumbent only if strictly fitter, so ties keep the earlier genome (deterministic).

    Args:
        dims: Bins per dimension; default 12 x 12 x 12 (the paper's 1,728 niches).
        ranges: ``(low, high)`` per dimension; default from the Sodarace module.
        names: A name per dimension, for reports.

    Raises:
        ValueError: If dims, ranges and names disagree in length or a range is empty.
    """

    def __init__(
        self,
        *,
        dims: Sequence[int] = DEFAULT_BINS,
        ranges: Sequence[tuple[float, float]] = DEFAULT_RANGES,
        names: Sequence[str] = DESCRIPTOR_NAMES,
    ) -> None:
        if not (len(dims) == len(ranges) == len(names)):
            raise ValueError(
                f"dims ({len(dims)}), ranges ({len(ranges)}) and names ({len(names)}) must have "
                "one entry per descriptor dimension"
            )
        for n, (lo, hi) in zip(dims, ranges):
            if int(n) < 1 or not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"each dimension needs >= 1 bin and a finite range low < high; got {n}, {(lo, hi)}")
        self.dims = tuple(int(n) for n in dims)
        self.ranges = tuple((float(lo), float(hi)) for lo, hi in ranges)
        self.names = tuple(names)
        self._elites: dict[Cell, Elite] = {}

    # -- reading ------------------------------------------------------------------------
    @property
    def cells(self) -> int:
        """Total number of cells."""
        return math.prod(self.dims)

    def __len__(self) -> int:
        return len(self._elites)

    @property
    def coverage(self) -> float:
        """Fraction of cells holding an elite."""
        return len(self._elites) / self.cells

    @property
    def qd_score(self) -> float:
        """Sum of elite fitnesses (fitness is a distance, never negative: no offset)."""
        return math.fsum(e.fitness for e in self._elites.values())

    @property
    def max_fitness(self) -> float:
        """Best fitness in the archive (0.0 when empty)."""
        return max((e.fitness for e in self._elites.values()), default=0.0)

    def cell_of(self, descriptor: Sequence[float]) -> Cell:
        """The cell a descriptor falls in (clipped to the edge bins).

        Raises:
            ValueError: If the descriptor has the wrong length or a non-finite value.
        """
        if len(descriptor) != len(self.dims):
            raise ValueError(f"expected {len(self.dims)} descriptor values, got {len(descriptor)}")
        cell = []
        for value, n, (lo, hi) in zip(descriptor, self.dims, self.ranges):
            if not math.isfinite(value):
                raise ValueError(f"descriptor values must be finite, got {value!r}")
            cell.append(min(n - 1, max(0, int((value - lo) / (hi - lo) * n))))
        return tuple(cell)

    def elite(self, cell: Cell) -> Elite | None:
        """The elite of ``cell``, or ``None`` if it is empty."""
        return self._elites.get(tuple(cell))

    def elites(self) -> Iterator[Elite]:
        """Every elite, in cell order."""
        for cell in sorted(self._elites):
            yield self._elites[cell]

    # -- writing ------------------------------------------------------------------------
    def add(self, genome_id: int, fitness: float | None, descriptor: Sequence[float] | None, text: str | None) -> Outcome:
        """Offer one evaluated genome; ``fitness is None`` means it failed.

        Returns:
            ``NEW_CELL``, ``IMPROVED``, ``NOT_KEPT`` or ``FAILED``.
        """
        if fitness is None or descriptor is None or text is None:
            return Outcome.FAILED
        cell = self.cell_of(descriptor)
        incumbent = self._elites.get(cell)
        if incumbent is not None and not fitness > incumbent.fitness:
            return Outcome.NOT_KEPT
        self._elites[cell] = Elite(genome_id, float(fitness), tuple(map(float, descriptor)), text, cell)
        return Outcome.NEW_CELL if incumbent is None else Outcome.IMPROVED

    # -- state --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; ``from_dict`` restores it exactly."""
        return {
            "dims": list(self.dims),
            "ranges": [list(r) for r in self.ranges],
            "names": list(self.names),
            "elites": [asdict(e) | {"cell": list(e.cell), "descriptor": list(e.descriptor)} for e in self.elites()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridArchive:
        """Restore an archive saved by ``to_dict``."""
        archive = cls(dims=data["dims"], ranges=[tuple(r) for r in data["ranges"]], names=data["names"])
        for e in data["elites"]:
            cell = tuple(e["cell"])
            archive._elites[cell] = Elite(e["genome_id"], e["fitness"], tuple(e["descriptor"]), e["text"], cell)
        return archive
