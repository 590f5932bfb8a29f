"""The paper's behaviour descriptor: height, width and mass of a walker."""

from __future__ import annotations

import math

from evolution.sodarace._physics import joint_masses
from evolution.sodarace._settings import DEFAULT_SETTINGS, SimSettings
from evolution.types import Descriptor, WalkerSpec

# Default MAP-Elites ranges (height, width, mass), 12 bins each. Measured by
# `make bench-ranges` on the seeds and 20,000 random valid walkers (3-40 joints in boxes of
# 2-30 units): p1/p50/p99 were height 1.9/13.5/28.2, width 1.9/13.6/28.3, mass 4.8/42.1/115.2,
# and the seeds lie at heights and widths of 4-11 and masses of 8-24. Each range runs from 0
# to about the 99th percentile; values beyond a range fall in its edge bin.
DESCRIPTOR_NAMES = ("height", "width", "mass")
DEFAULT_RANGES: tuple[tuple[float, float], ...] = ((0.0, 30.0), (0.0, 30.0), (0.0, 120.0))
DEFAULT_BINS = (12, 12, 12)


def describe(spec: WalkerSpec, settings: SimSettings = DEFAULT_SETTINGS) -> Descriptor:
    """Height and width of the joints' bounding box, and the walker's total mass.

    Mass is ``joint_mass * J + muscle_density * (total muscle length)``, exactly the mass the
    physics simulates.
    """
    xs = [x for x, _ in spec.joints]
    ys = [y for _, y in spec.joints]
    return Descriptor(
        height=max(ys) - min(ys),
        width=max(xs) - min(xs),
        mass=math.fsum(joint_masses(spec, settings)),
    )
