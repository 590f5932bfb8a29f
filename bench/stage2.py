"""Stage-2 benchmark: train the default stage-2 model on what a short GP + LLM run found.

Run: ``make bench-stage2`` (``ARGS="--samples 1024"`` for the paper's sample count). Steps:
a GP run and a diff-model run from the Square seed on flat ground (``bench/out/stage2/``), the
dataset of their programs within 50% of their niche's best, the default stage-2 training from
the embedded model (10 minutes of wall time), then the paper's evaluation: sample programs from
the trained model and from the untrained embedded model, evaluate them, and place each set in a
fresh archive. Prints the table, writes ``bench/out/stage2/eval.json``.

Last line: ``RESULT stage2_valid_rate=<x> stage2_niches=<n> baseline_niches=<n>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.lm.dataset import build_dataset, write_dataset  # noqa: E402
from evolution.lm.stage2 import Stage2Config, evaluate_model, run_archive_summary, train_stage2  # noqa: E402
from evolution.loop import RunConfig, RunDirectory, run  # noqa: E402
from evolution.mutation import DEFAULT_DIFF_MODEL  # noqa: E402

log = logging.getLogger("bench.stage2")
OUT = ROOT / "bench" / "out" / "stage2"


def evolve(name: str, config: RunConfig) -> Path:
    from tqdm import tqdm

    directory = RunDirectory(OUT / "runs" / name)
    shutil.rmtree(directory.path, ignore_errors=True)
    directory.create(config)
    with tqdm(total=config.evals, desc=f"run {name}", unit="eval") as bar:
        run(directory, workers=2, on_batch=lambda p: bar.update(p.evaluations - bar.n))
    return directory.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gp-evals", type=int, default=3000)
    parser.add_argument("--llm-evals", type=int, default=640)
    parser.add_argument("--samples", type=int, default=256, help="programs sampled from each model (paper: 1024)")
    parser.add_argument("--minutes", type=float, default=10.0, help="stage-2 training budget")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not (DEFAULT_DIFF_MODEL / "config.json").is_file():
        sys.exit(f"the embedded diff model is missing ({DEFAULT_DIFF_MODEL}); build it with `make train-mutator`")
    OUT.mkdir(parents=True, exist_ok=True)

    runs = [evolve("gp", RunConfig(seed="square", evals=args.gp_evals, mutation="gp")),
            evolve("diff", RunConfig(seed="square", evals=args.llm_evals, mutation="diff", rng_seed=1))]
    records = build_dataset(runs, threshold=args.threshold)
    dataset = write_dataset(records, OUT / "dataset.jsonl")
    model = OUT / "model"
    shutil.rmtree(model, ignore_errors=True)
    default = Stage2Config(out=model, dataset=dataset, base=DEFAULT_DIFF_MODEL)
    started = time.perf_counter()
    train_stage2(replace(default, train=replace(default.train, time_limit_s=args.minutes * 60)))
    train_s = time.perf_counter() - started
    rows = {"stage-2 model": evaluate_model(model, args.samples), "untrained": evaluate_model(DEFAULT_DIFF_MODEL, args.samples)}
    summaries = [run_archive_summary(r) for r in runs]
    (OUT / "eval.json").write_text(json.dumps({"models": rows, "runs": summaries, "train_s": train_s,
                                               "dataset": {"programs": len(records)}}, indent=1))

    log.info("dataset: %d programs (threshold %.2f) from %s; training %.0f s", len(records), args.threshold,
             ", ".join(r.name for r in runs), train_s)
    log.info("%-16s %8s %8s %9s %8s %10s %9s", "source", "samples", "valid", "distinct", "niches", "QD score", "max fit")
    for name, r in rows.items():
        log.info("%-16s %8d %7.1f%% %9d %8d %10.1f %9.2f", name, r["samples"], 100 * r["valid_rate"], r["distinct"],
                 r["niches"], r["qd_score"], r["max_fitness"])
    for s in summaries:
        log.info("%-16s %8d %8s %9s %8d %10.1f %9.2f", "run " + Path(s["run"]).name, s["evaluations"], "", "",
                 s["niches"], s["qd_score"], s["max_fitness"])
    m, b = rows["stage-2 model"], rows["untrained"]
    log.info("RESULT stage2_valid_rate=%.3f stage2_niches=%d baseline_niches=%d", m["valid_rate"], m["niches"], b["niches"])


if __name__ == "__main__":
    main()
