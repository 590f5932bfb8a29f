"""``Operator``: the interface every mutation operator implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from evolution.mutation._child import Child


@runtime_checkable
class Operator(Protocol):
    """Turns parent program texts into child program texts, in batches.

    An operator is the variation step of MAP-Elites: the GP baseline (``GPMutation``) edits
    the syntax tree at random, a language-model operator asks a diff model for an edit. It
    never runs or scores a program.

    Attributes:
        name: Short identifier recorded in every ``Child.operator``, e.g. ``"gp"``.
    """

    name: str

    def mutate(self, parents: Sequence[str], *, rng: np.random.Generator) -> list[Child]:
        """Return one child per parent, in the same order.

        Args:
            parents: ``(B,)`` parent program texts (the mutable text, without a preamble).
            rng: The only source of randomness; the caller owns it and checkpoints its state,
                so the same parents and the same generator state give the same children.

        Returns:
            ``(B,)`` children; a failed mutation is a ``Child`` with ``failure`` set, never an
            exception.
        """
        ...
