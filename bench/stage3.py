"""Stage-3 benchmark: train a terrain-conditioned inventor, then compare it with best-of-N per terrain.

Run: ``make bench-stage3`` (``ARGS="--terrains walls-bumpy"`` for the paper's other set). Needs
a stage-2 model: ``bench/out/stage2/model`` from ``make bench-stage2``, or ``--model DIR``.
Steps: PPO training of the stage-2 model plus a terrain embedding network on the terrain set
with the default settings (20 minutes of wall time; on a GPU the same settings run faster),
then the paper's evaluation: on each terrain, the inventor's programs against the best of N
(default 1,024) samples from the stage-2 model and the best of N programs from its dataset.
Prints the table, writes ``bench/out/stage3/`` (the model, ``reward_curve.png``,
``eval-<terrain>.png``, ``eval.json``).

Last line: ``RESULT stage3_beats_best_of_n_terrains=<count>/<total>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.lm.stage3 import TERRAIN_SETS, Stage3Config, evaluate_stage3, format_table, train_stage3  # noqa: E402

log = logging.getLogger("bench.stage3")
OUT = ROOT / "bench" / "out" / "stage3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "bench" / "out" / "stage2" / "model",
                        help="the stage-2 model (default: make bench-stage2's)")
    parser.add_argument("--terrains", choices=sorted(TERRAIN_SETS), default="walls-tunnel", help="the paper's terrain set")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget")
    parser.add_argument("--samples", type=int, default=1024, help="N: best-of-N samples per baseline (paper: 1024)")
    parser.add_argument("--conditional", type=int, default=64, help="programs the inventor writes per terrain")
    parser.add_argument("--workers", type=int, default=2, help="evaluation processes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not (args.model / "config.json").is_file():
        sys.exit(f"no stage-2 model at {args.model}; make one with `make bench-stage2` or pass --model DIR")
    OUT.mkdir(parents=True, exist_ok=True)

    model = OUT / "model"
    shutil.rmtree(model, ignore_errors=True)
    config = Stage3Config(out=model, model=args.model, terrains=TERRAIN_SETS[args.terrains],
                          time_limit_s=args.minutes * 60, workers=args.workers)
    started = time.perf_counter()
    train_stage3(config)
    train_s = time.perf_counter() - started
    shutil.copy(model / "reward_curve.png", OUT / "reward_curve.png")
    evaluation = evaluate_stage3(model, samples=args.samples, conditional=args.conditional, workers=args.workers,
                                 plots=OUT)
    history = json.loads((model / "training_log.json").read_text())["history"]
    (OUT / "eval.json").write_text(json.dumps(evaluation | {"train_s": train_s, "iterations": len(history)}, indent=1))

    log.info("stage 3 on %s: %d PPO iterations in %.0f s from %s", ", ".join(config.terrains), len(history), train_s,
             args.model)
    # one iteration holds a few episodes per terrain: compare means over the first and last tenth
    span = max(1, len(history) // 10)

    def mean_score(points: list[dict], terrain: str) -> float:
        return sum(p["terrains"][terrain]["score"] for p in points) / len(points)

    for terrain in config.terrains:
        log.info("  %-11s mean reward %6.2f over iterations 1-%d -> %6.2f over iterations %d-%d", terrain,
                 mean_score(history[:span], terrain), span, mean_score(history[-span:], terrain),
                 len(history) - span + 1, len(history))
    for line in format_table(evaluation):
        log.info("%s", line)
    log.info("RESULT stage3_beats_best_of_n_terrains=%d/%d", evaluation["beats"], evaluation["total"])


if __name__ == "__main__":
    main()
