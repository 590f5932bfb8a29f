"""Stage-1 loop benchmark: throughput of the whole loop vs the bare simulator, and coverage.

Run: ``make bench-evolve``. Part 1 runs GP mutation from the Square seed on flat ground
(10 s simulated, 2 workers) and compares the loop's evaluations per second (mutation +
sandbox + simulation + archive + files) with the bare simulator's rate on the same walkers
(the run's valid children, simulated again in the same batch sizes over the same number of
processes). Part 2 runs 10,000 evaluations from each of the paper's four seeds and reports
coverage after 2,000 / 5,000 / 10,000 evaluations, with a plot in ``bench/out/``.

Part 1 also splits one child's cost into its three stages, each measured alone on the same
children and cores: GP mutation (the loop's own ``ask`` time), the sandbox (every program run
again through a pool of ``workers`` fork servers) and the simulator. The stages share the same
cores, so ``ceiling`` is the ratio a loop would reach if it ran them back to back and added
nothing of its own: simulation / (mutation + sandbox + simulation).

Last line: ``RESULT loop_evals_per_s=<x> loop_vs_bare_sim=<ratio> coverage_10k_square=<%>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.loop import RunConfig, RunDirectory, run  # noqa: E402
from evolution.sandbox import SandboxPool  # noqa: E402
from evolution.sodarace import DEFAULT_SETTINGS, seeds, simulate_batch  # noqa: E402
from evolution.types import WalkerSpec  # noqa: E402

log = logging.getLogger("bench.evolve")
OUT = ROOT / "bench" / "out"
PAPER_SEEDS = ("square", "radial", "cppn_fixed", "cppn_mutable")
CHECKPOINTS = (2000, 5000, 10000)


def fresh(name: str, config: RunConfig) -> RunDirectory:
    path = OUT / name
    shutil.rmtree(path, ignore_errors=True)
    directory = RunDirectory(path)
    directory.create(config)
    return directory


def _simulate_chunks(chunks: list[list[dict]]) -> int:
    specs = [[WalkerSpec.from_dict(d) for d in chunk] for chunk in chunks]
    for chunk in specs:
        simulate_batch(chunk, "flat", DEFAULT_SETTINGS)
    return sum(len(c) for c in specs)


def bare_rate(specs: list[WalkerSpec], *, workers: int, batch: int) -> float:
    """Walkers per second simulating ``specs`` in the loop's chunking over ``workers`` processes."""
    per_worker = -(-batch // workers)
    chunks = [[s.to_dict() for s in specs[i : i + per_worker]] for i in range(0, len(specs), per_worker)]
    shares = [chunks[w::workers] for w in range(workers)]
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_simulate_chunks, [[c[:1]] for c in chunks[:workers]])  # warm the workers up
        t0 = time.perf_counter()
        done = sum(pool.map(_simulate_chunks, shares))
        return done / (time.perf_counter() - t0)


def part_throughput(evals: int, workers: int, batch: int) -> dict[str, float]:
    """The loop's rate, the bare simulator's, and the milliseconds one child spends in each stage."""
    directory = fresh("evolve-throughput", RunConfig(seed="square", evals=evals, batch=batch))
    run(directory, workers=workers)
    metrics = directory.metrics()[1:]  # batch 0 is the seed alone (and pays the start-up)
    children = sum(m["batch_size"] for m in metrics)
    loop = children / sum(m["wall_s"] for m in metrics)
    texts = [json.loads(line) for line in directory.genomes_file.read_text().splitlines()]
    programs = [seeds.get_seed("square").preamble + r["text"] for r in texts[1:] if r["failure"] is None]
    with SandboxPool(workers=workers) as pool:
        pool.run_many(programs[: 4 * workers])  # start the servers and warm them up
        started = time.perf_counter()
        runs = pool.run_many(programs)
        sandbox_s = time.perf_counter() - started
    specs = [r.result for r in runs if isinstance(r.result, WalkerSpec)]
    bare = bare_rate(specs, workers=workers, batch=batch)
    valid_share = len(specs) / children
    # the loop also evaluates children that fail; the bare simulator only races valid ones
    ms = {
        "mutation": 1000 * sum(m["ask_s"] for m in metrics) / children,
        "sandbox": 1000 * sandbox_s / len(programs),
        "simulation": 1000 * valid_share / bare,
    }
    return {"loop": loop, "bare": bare, "valid_share": valid_share, **{f"{k}_ms": v for k, v in ms.items()},
            "ceiling": ms["simulation"] / sum(ms.values())}


def part_coverage(evals: int, workers: int, batch: int) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {}
    for name in PAPER_SEEDS:
        directory = fresh(f"evolve-{name}", RunConfig(seed=name, evals=evals, batch=batch))
        started = time.perf_counter()
        run(directory, workers=workers)
        log.info("%s: %d evaluations in %.0f s", name, evals, time.perf_counter() - started)
        metrics = directory.metrics()
        table[name] = {c: next((m["coverage"] for m in metrics if m["evaluations"] >= c), metrics[-1]["coverage"])
                       for c in CHECKPOINTS if c <= evals}
        table[name]["curve"] = [(m["evaluations"], m["coverage"]) for m in metrics]  # type: ignore[assignment]
    return table


def plot(table: dict[str, dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for name, row in table.items():
        xs, ys = zip(*row["curve"])
        ax.plot(xs, [100 * y for y in ys], label=name)
    ax.set(xlabel="evaluations", ylabel="niches filled (%)", title="GP mutation, flat terrain, 10 s")
    ax.grid(alpha=0.3)
    ax.legend()
    path = OUT / "evolve-coverage.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput-evals", type=int, default=3000)
    parser.add_argument("--evals", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    OUT.mkdir(parents=True, exist_ok=True)

    t = part_throughput(args.throughput_evals, args.workers, args.batch)
    loop, bare = t["loop"], t["bare"]
    log.info("%-34s %10s", "GP from square, flat, 10 s, %d workers" % args.workers, "evals/s")
    log.info("%-34s %10.1f", "whole loop (all children)", loop)
    log.info("%-34s %10.1f", "bare simulator (valid children)", bare)
    log.info("%-34s %10.1f", "bare simulator per child", bare / t["valid_share"])
    log.info("valid children: %.1f%%; loop / bare simulator = %.2f", 100 * t["valid_share"], loop / bare)
    log.info("%-34s %10s", "one child, each stage alone", "ms (wall)")
    for stage in ("mutation", "sandbox", "simulation"):
        log.info("%-34s %10.2f", f"  {stage}", t[f"{stage}_ms"])
    log.info("%-34s %10.2f", "  whole loop", 1000 / loop)
    log.info("ceiling (the stages back to back, no loop overhead): %.2f of the bare simulator; the loop reaches %.0f%% of it",
             t["ceiling"], 100 * (loop / bare) / t["ceiling"])

    table = part_coverage(args.evals, args.workers, args.batch)
    log.info("%-14s %s", "seed", " ".join(f"{c:>9d}" for c in CHECKPOINTS if c <= args.evals))
    for name, row in table.items():
        log.info("%-14s %s", name, " ".join(f"{100 * row[c]:8.2f}%" for c in CHECKPOINTS if c <= args.evals))
    log.info("coverage plot: %s", plot(table))
    final = max(c for c in CHECKPOINTS if c <= args.evals)
    log.info("RESULT loop_evals_per_s=%.1f loop_vs_bare_sim=%.2f coverage_10k_square=%.2f",
             loop, loop / bare, 100 * table["square"][final])


if __name__ == "__main__":
    main()
