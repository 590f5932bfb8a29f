"""Measure descriptor distributions to choose the default MAP-Elites ranges.

Run: ``make bench-ranges``. Builds the seeds and N random valid walkers (random joint count,
random box size, random muscles, active or passive), computes height, width and mass, and
prints percentiles. The default ranges in ``evolution/sodarace/_descriptors.py`` span about
the 1st-99th percentile of the union of these walkers and the seeds.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evolution.sodarace import DEFAULT_RANGES, build_walker, describe, random_walker, seeds  # noqa: E402

log = logging.getLogger("bench.ranges")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walkers", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rng = random.Random(args.seed)
    specs = [build_walker(s.program) for s in seeds.SEEDS.values()]
    specs += [random_walker(rng, joints=(3, 40), side=(2.0, 30.0)) for _ in range(args.walkers)]
    values = np.array([describe(s).as_tuple() for s in specs])
    log.info("%-8s %8s %8s %8s %8s %8s   default range", "axis", "p1", "p50", "p99", "max", "seeds<=")
    for i, name in enumerate(("height", "width", "mass")):
        p1, p50, p99 = np.percentile(values[:, i], [1, 50, 99])
        lo, hi = DEFAULT_RANGES[i]
        inside = np.mean((values[:, i] >= lo) & (values[:, i] <= hi))
        log.info("%-8s %8.2f %8.2f %8.2f %8.2f %8.2f   [%g, %g] holds %.1f%%", name, p1, p50, p99,
                 values[:, i].max(), values[: len(seeds.SEEDS), i].max(), lo, hi, 100 * inside)
    inside_all = np.mean(np.all([(values[:, i] >= DEFAULT_RANGES[i][0]) & (values[:, i] <= DEFAULT_RANGES[i][1]) for i in range(3)], axis=0))
    log.info("RESULT walkers=%d inside_default_ranges=%.3f", len(specs), inside_all)


if __name__ == "__main__":
    main()
