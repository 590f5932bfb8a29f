"""Random valid walkers, for calibrating descriptor ranges, benchmarks and tests."""

from __future__ import annotations

import random

from evolution.sodarace._limits import InvalidWalker
from evolution.sodarace._walker import walker_creator
from evolution.types import WalkerSpec


def random_walker(
    rng: random.Random,
    *,
    joints: tuple[int, int] = (3, 12),
    side: tuple[float, float] = (8.0, 16.0),
    active: float = 0.5,
) -> WalkerSpec:
    """Draw a random valid walker.

    Joints are uniform in a box whose sides are drawn from ``side``; between ``J - 1`` and
    ``4 J`` random muscles join them, each active with probability ``active`` (amplitude in
    [-10, 10], phase in [0, 1)). Draws that break a walker rule are redrawn.

    Args:
        rng: The random source (the result is a function of its state).
        joints: Inclusive range of the joint count.
        side: Range of the box's side lengths, program units.
        active: Probability that a muscle is active.
    """
    while True:
        wc = walker_creator()
        width, height = rng.uniform(*side), rng.uniform(*side)
        handles = [wc.add_joint(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(rng.randint(*joints))]
        for _ in range(rng.randint(len(handles) - 1, 4 * len(handles))):
            a, b = rng.sample(handles, 2)
            if rng.random() < active:
                wc.add_muscle(a, b, rng.uniform(-10, 10), rng.random())
            else:
                wc.add_muscle(a, b)
        try:
            return wc.get_walker()
        except InvalidWalker:
            continue
