"""Sandbox benchmark: the seed programs through ``evolution.sandbox`` vs plain in-process exec.

Run: ``make bench-sandbox``. Every seed program (square, radial, CPPN fixed/mutable, wheel,
galloper) is built from its text, round-robin, on 1 and 2 workers: in-process with
``build_walker`` (the unsafe baseline; 2 workers are 2 processes) and through the sandbox
(``SandboxPool(workers=1)`` one program at a time; ``SandboxPool(workers=2)`` with
``run_many``). The two are measured in alternating rounds, because this machine is shared.

The overhead of one program is its latency through the sandbox (caller to caller, one worker,
nothing else running) minus the median in-process time of the same seed; the sandbox's
latency includes handing the text to the fork server, checking and compiling it there, the
fork, the lock-down, the run, the JSON answer and the parent's re-validation of the walker.

Last line: ``RESULT sandbox_overhead_ms=<median over programs> programs_per_s_2_workers=<x>``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.sandbox import SandboxPool  # noqa: E402
from evolution.sodarace import build_walker, seeds  # noqa: E402

log = logging.getLogger("bench.sandbox")


def in_process_times(texts: list[str], repeats: int) -> dict[str, list[float]]:
    """Seconds per ``build_walker`` call, per seed."""
    times: dict[str, list[float]] = {name: [] for name in texts}
    for _ in range(repeats):
        for name, text in texts.items():
            start = time.perf_counter()
            build_walker(text)
            times[name].append(time.perf_counter() - start)
    return times


def _in_process_worker(args: tuple[list[str], int]) -> int:
    texts, count = args
    for i in range(count):
        build_walker(texts[i % len(texts)])
    return count


def in_process_rate(texts: list[str], *, workers: int, count: int, context: mp.context.BaseContext) -> float:
    """Programs per second built in-process by ``workers`` processes (startup excluded)."""
    with context.Pool(workers) as pool:
        pool.map(_in_process_worker, [(texts, 10)] * workers)  # warm
        start = time.perf_counter()
        done = sum(pool.map(_in_process_worker, [(texts, count // workers)] * workers))
        return done / (time.perf_counter() - start)


def sandbox_latencies(pool: SandboxPool, texts: dict[str, str], repeats: int) -> dict[str, list[float]]:
    """Seconds per program through a one-worker sandbox, caller to caller, per seed."""
    times: dict[str, list[float]] = {name: [] for name in texts}
    for _ in range(repeats):
        for name, text in texts.items():
            start = time.perf_counter()
            run = pool.run(text)
            times[name].append(time.perf_counter() - start)
            if not run.ok:
                raise RuntimeError(f"seed {name} failed in the sandbox: {run.result}")
    return times


def sandbox_rate(pool: SandboxPool, texts: list[str], count: int) -> float:
    """Programs per second through ``pool`` (all its workers busy)."""
    batch = [texts[i % len(texts)] for i in range(count)]
    start = time.perf_counter()
    runs = pool.run_many(batch)
    elapsed = time.perf_counter() - start
    failed = [run.result for run in runs if not run.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} seed runs failed in the sandbox, e.g. {failed[0]}")
    return len(batch) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds")
    parser.add_argument("--repeats", type=int, default=40, help="runs of each seed per round (latency)")
    parser.add_argument("--count", type=int, default=600, help="programs per round (throughput)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    texts = {name: seed.program for name, seed in seeds.SEEDS.items()}
    programs = list(texts.values())
    context = mp.get_context("spawn")
    one, two = SandboxPool(workers=1).start(), SandboxPool(workers=2).start()
    layers = one.isolation_report()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, uid {os.geteuid()}")
    print("isolation layers: " + ", ".join(f"{k}={'on' if v else 'OFF'}" for k, v in layers.items()))
    for name, reason in one.inactive_reasons().items():
        print(f"  {name} is off: {reason}")

    in_proc: dict[str, list[float]] = {name: [] for name in texts}
    sandboxed: dict[str, list[float]] = {name: [] for name in texts}
    rates: dict[tuple[str, int], list[float]] = {
        (kind, w): [] for kind in ("in-process", "sandbox") for w in (1, 2)
    }
    for _ in range(args.rounds):
        for name, values in in_process_times(texts, args.repeats).items():
            in_proc[name] += values
        for name, values in sandbox_latencies(one, texts, args.repeats).items():
            sandboxed[name] += values
        for workers, pool in ((1, one), (2, two)):
            rates["in-process", workers].append(
                in_process_rate(programs, workers=workers, count=args.count, context=context)
            )
            rates["sandbox", workers].append(sandbox_rate(pool, programs, args.count))
    one.close()
    two.close()

    print()
    print(f"{'seed':14s} {'in-process ms':>14s} {'sandbox ms':>11s} {'overhead ms':>12s}")
    overheads = []
    for name in texts:
        base = statistics.median(in_proc[name])
        overheads += [t - base for t in sandboxed[name]]
        print(
            f"{name:14s} {base * 1e3:14.3f} {statistics.median(sandboxed[name]) * 1e3:11.3f} "
            f"{(statistics.median(sandboxed[name]) - base) * 1e3:12.3f}"
        )
    print()
    print(f"{'workers':>7s} {'in-process programs/s':>22s} {'sandbox programs/s':>19s}")
    for workers in (1, 2):
        print(
            f"{workers:7d} {statistics.median(rates['in-process', workers]):22.0f} "
            f"{statistics.median(rates['sandbox', workers]):19.0f}"
        )
    overhead_ms = statistics.median(overheads) * 1e3
    print(
        f"\nmedian overhead {overhead_ms:.2f} ms per program (p90 "
        f"{statistics.quantiles(overheads, n=10)[-1] * 1e3:.2f} ms) over {len(overheads)} programs"
    )
    print(
        f"RESULT sandbox_overhead_ms={overhead_ms:.2f} programs_per_s_2_workers="
        f"{statistics.median(rates['sandbox', 2]):.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
