"""Named limits every walker must respect, and the error raised when one is broken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class InvalidWalker(ValueError):
    """A walker broke one of the rules in ``WalkerLimits``.

    Attributes:
        rule: Short machine-readable name of the broken rule (e.g. ``"max_joints"``).
        values: The offending values, for the failure record.
    """

    def __init__(self, rule: str, message: str, **values: Any) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message
        self.values = values


@dataclass(frozen=True, slots=True)
class WalkerLimits:
    """Limits that keep every valid walker simulable, fast and comparable.

    The paper names the kinds of limit (muscles per joint, muscle strength, minimum distance)
    but gives no values; these were chosen to admit every seed of the paper and of OpenELM
    (its Runner has 40 joints, 417 muscles and a joint with 37 muscles) with room to grow.

    Attributes:
        max_joints: Joints per walker.
        max_muscles: Muscles per walker (after dropping self-muscles).
        max_muscles_per_joint: Muscles attached to any one joint.
        coordinate_limit: Every joint satisfies ``|x| <= limit`` and ``|y| <= limit``.
        min_muscle_length: Shortest allowed muscle rest length. Joints may coincide; a muscle
            between coincident joints (length exactly 0) has no direction to act along and
            is dropped with a warning, like a muscle from a joint to itself.
        max_amplitude: ``|amplitude| <= max_amplitude`` (the physics saturates well before).
        max_phase: ``|phase| <= max_phase`` cycles (larger values lose float precision).
    """

    max_joints: int = 128
    max_muscles: int = 1024
    max_muscles_per_joint: int = 48
    coordinate_limit: float = 50.0
    min_muscle_length: float = 0.01
    max_amplitude: float = 100.0
    max_phase: float = 1.0e6


DEFAULT_LIMITS = WalkerLimits()
