"""Domain vocabulary shared by every part of the engine.

These are plain, immutable values made of numbers, strings and tuples, so they cross process
boundaries (the sandbox, Celery) and go into a database unchanged. Nothing here imports
pymunk, numpy or a web framework.

Shapes in comments use J for joints and M for muscles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Fitness = float
"""Distance travelled by the walker's centre of mass along x, in world units (>= 0)."""


@dataclass(frozen=True, slots=True)
class MuscleSpec:
    """One spring between two joints.

    Attributes:
        a: Index of the first joint.
        b: Index of the second joint (never equal to ``a``).
        amplitude: Program-level amplitude; ``0.0`` for a passive muscle. The physics maps it
            to a bounded strain (see ``evolution.sodarace.physics``).
        phase: Phase offset in cycles (1.0 is a whole period).
    """

    a: int
    b: int
    amplitude: float = 0.0
    phase: float = 0.0

    @property
    def active(self) -> bool:
        """Whether the muscle's rest length oscillates."""
        return self.amplitude != 0.0


@dataclass(frozen=True, slots=True)
class WalkerSpec:
    """A validated Sodaracer: joints and muscles, plain numbers only.

    Build one with ``walker_creator`` (``evolution.sodarace``) or ``WalkerSpec.from_dict``;
    both validate against ``WalkerLimits``.

    Attributes:
        joints: ``(J, 2)`` joint positions ``(x, y)`` in program units, y pointing up.
        muscles: ``(M,)`` muscles.
        warnings: Soft problems found while building (e.g. a dropped self-muscle).
    """

    joints: tuple[tuple[float, float], ...]
    muscles: tuple[MuscleSpec, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; ``from_dict`` reverses it exactly."""
        return {
            "joints": [[x, y] for x, y in self.joints],
            "muscles": [[m.a, m.b, m.amplitude, m.phase] for m in self.muscles],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WalkerSpec:
        """Rebuild and re-validate a spec from ``to_dict`` output.

        Raises:
            InvalidWalker: If the data breaks a walker rule or is malformed.
        """
        # Imported here: the validator lives with the walker API, which imports this module.
        from evolution.sodarace._walker import spec_from_dict

        return spec_from_dict(data)

    @property
    def num_active(self) -> int:
        """Number of muscles whose rest length oscillates."""
        return sum(1 for m in self.muscles if m.active)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """The MAP-Elites behaviour descriptor of a walker (the paper's three axes).

    Attributes:
        height: Vertical extent of the joints, in program units.
        width: Horizontal extent of the joints, in program units.
        mass: Total mass: joint masses plus muscle length times density.
    """

    height: float
    width: float
    mass: float

    def as_tuple(self) -> tuple[float, float, float]:
        """Return ``(height, width, mass)``."""
        return (self.height, self.width, self.mass)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of simulating one walker on one terrain.

    Attributes:
        fitness: ``|x_end - x_start|`` of the centre of mass over the measured interval.
        displacement: Signed ``x_end - x_start`` (positive is to the right).
        descriptor: Height, width and mass.
        terrain: Terrain name.
        sim_seconds: Measured simulated time (after settling).
        settle_seconds: Settling time before measuring.
        trace: Optional replay (``evolution.sodarace.Trace``), ``None`` unless requested.
    """

    fitness: Fitness
    displacement: float
    descriptor: Descriptor
    terrain: str
    sim_seconds: float
    settle_seconds: float
    trace: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.fitness):
            raise ValueError(f"fitness must be finite, got {self.fitness!r}")


class Outcome(str, Enum):
    """What the archive did with an evaluated candidate."""

    NEW_CELL = "new_cell"
    IMPROVED = "improved"
    NOT_KEPT = "not_kept"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A program the scheduler asks to have evaluated.

    Attributes:
        id: Genome id, increasing from 0 (the seed) within a run.
        batch: Batch number (0 for the seed).
        text: The mutable program text, or ``None`` if mutation produced no program.
        preamble: Fixed code run before ``text`` (the seed's; never mutated).
        parent_id: The parent's genome id (``None`` for the seed).
        operator: Operator name (``"seed"`` for the seed).
        diff: Unified diff from the parent's text ("" for the seed).
        message: The operator's description of the edit (a commit message for LLMs).
        failure: Mutation failure kind when ``text`` is ``None``.
        failure_message: Its explanation.
    """

    id: int
    batch: int
    text: str | None
    preamble: str = ""
    parent_id: int | None = None
    operator: str = "seed"
    diff: str = ""
    message: str = ""
    failure: str | None = None
    failure_message: str = ""

    @property
    def program(self) -> str | None:
        """The full text to run, or ``None`` if there is no program."""
        if self.text is None:
            return None
        return f"{self.preamble}\n\n{self.text}" if self.preamble else self.text

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; ``from_dict`` reverses it exactly."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        """Rebuild a candidate from ``to_dict`` output."""
        return cls(**data)

    def text_line(self, program_line: int) -> int:
        """The line of ``text`` that line ``program_line`` of ``program`` is (<= 0: preamble)."""
        return program_line - (f"{self.preamble}\n\n".count("\n") if self.preamble else 0)


@dataclass(frozen=True, slots=True)
class Result:
    """An evaluated candidate: its scores, or why it has none.

    Attributes:
        id: The candidate's genome id.
        fitness: Distance travelled, ``None`` if it failed.
        descriptor: ``(height, width, mass)``, ``None`` if it failed.
        failure: Failure kind (mutation, sandbox, walker or simulation), ``None`` if valid.
        failure_message: Readable reason.
        warnings: Soft problems found while building the walker.
    """

    id: int
    fitness: float | None = None
    descriptor: tuple[float, ...] | None = None
    failure: str | None = None
    failure_message: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether the candidate produced a scored walker."""
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; ``from_dict`` reverses it exactly."""
        data = {name: getattr(self, name) for name in self.__slots__}
        data["descriptor"] = None if self.descriptor is None else list(self.descriptor)
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """Rebuild a result from ``to_dict`` output."""
        fields = dict(data)
        if fields.get("descriptor") is not None:
            fields["descriptor"] = tuple(fields["descriptor"])
        fields["warnings"] = tuple(fields.get("warnings", ()))
        return cls(**fields)
