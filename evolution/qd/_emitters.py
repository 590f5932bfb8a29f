"""Emitters choose the parents of the next batch from the archive."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from evolution.qd._archive import Elite, GridArchive


@runtime_checkable
class Emitter(Protocol):
    """Chooses ``n`` parents from a non-empty archive, drawing randomness only from ``rng``."""

    name: str

    def select(self, archive: GridArchive, n: int, *, rng: np.random.Generator) -> list[Elite]:
        ...


class UniformEmitter:
    """The paper's selection: each parent is an elite drawn uniformly over occupied cells."""

    name = "uniform"

    def select(self, archive: GridArchive, n: int, *, rng: np.random.Generator) -> list[Elite]:
        """Draw ``n`` elites with replacement, uniformly over occupied cells.

        Raises:
            ValueError: If the archive is empty.
        """
        elites = list(archive.elites())
        if not elites:
            raise ValueError("cannot select parents from an empty archive; insert the seed first")
        return [elites[i] for i in rng.integers(0, len(elites), size=n)]
