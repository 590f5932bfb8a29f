"""Side-by-side simulator benchmark: elmweb's pymunk Sodarace vs OpenELM 0.9.2's Box2D one.

Run: ``make bench-sim``. OpenELM lives in its own throw-away venv (``bench/peer/setup.sh``);
its seven shipped walkers (square, radial, CPPN fixed/mutable, wheel, galloper, runner) are
built through OpenELM's API on its side and, from the same program text, through ours here.

For every walker x simulated time (1, 10, 30 s; OpenELM rounds to 1.05, 10.15, 29.75 s, and
ours runs the same total: ``min(1 s, T/4)`` settling plus the rest measured, same 1/60 s
step) x processes (1, 2), the peer and ours are measured back to back (interleaved, because
this machine is shared and the peer's own rate varied 2x with load).

One of our evaluations is one walker through ``simulate_batch`` (placement, physics, scoring)
in batches of ``--batch`` walkers; to keep the batch honest, copies of a walker differ by a
sub-millimetre translation, so no result is reused from a duplicate. One peer evaluation is
a fresh ``SodaraceSimulator(body).evaluate(ms)``.

Last line: ``RESULT sim_per_core_ratio=<geometric mean over walkers at 30 s, 1 process>
two_core_speedup=<geometric mean over walkers at 30 s of ours(2 processes)/ours(1)>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.sodarace import DEFAULT_SETTINGS, SimSettings, build_walker, simulate_batch  # noqa: E402
from evolution.types import WalkerSpec  # noqa: E402

log = logging.getLogger("bench.sim")
PEER_DIR = ROOT / "bench" / "peer"
WALKERS = ("square", "radial", "cppn_fixed", "cppn_mutable", "wheel", "galloper", "runner")


def peer_python() -> str:
    """Set up (idempotently) and return the peer venv's python."""
    out = subprocess.run(
        ["bash", str(PEER_DIR / "setup.sh"), "--print-python"], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"could not set up the OpenELM peer venv:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def peer_json(python: str, *args: str) -> list[dict]:
    """Run the peer script; return its JSON lines."""
    out = subprocess.run(
        [python, str(PEER_DIR / "openelm_peer.py"), *args], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"the OpenELM peer failed ({' '.join(args)}):\n{out.stderr[-2000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def our_program(info: dict) -> str:
    """OpenELM's program text made runnable by our API: its imports of walker_creator and
    query_cppn are dropped (ours provides walker_creator; query_cppn's text is inlined)."""
    drop = {imp["line"] for imp in info["openelm_imports"]}
    body = "\n".join(line for line in info["source"].splitlines() if line not in drop)
    helpers = "\n\n".join(h["source"] for h in info["helpers"])
    return f"{helpers}\n\n{body}" if helpers else body


def translated(spec: WalkerSpec, k: int) -> WalkerSpec:
    """The same walker moved k micro-steps along x: physically identical, not a duplicate."""
    return WalkerSpec(tuple((x + k * 1e-4, y) for x, y in spec.joints), spec.muscles)


def _worker(spec: WalkerSpec, settings: SimSettings, batch: int, min_time: float, start, out, index: int) -> None:
    simulate_batch([translated(spec, -1)], "flat", settings.with_(sim_seconds=0.1))  # warm-up
    copies = [translated(spec, index * 100_000 + k) for k in range(50 * batch)]
    start.wait()
    t0 = time.perf_counter()
    evals = 0
    while True:
        chunk = copies[evals % len(copies) : evals % len(copies) + batch]
        simulate_batch(chunk, "flat", settings, batch_size=batch)
        evals += len(chunk)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
    out.put((evals, elapsed))


def measure_ours(spec: WalkerSpec, settings: SimSettings, processes: int, batch: int, min_time: float) -> float:
    """Evaluations per second over ``processes`` forked workers (sum of their rates)."""
    ctx = mp.get_context("fork")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(spec, settings, batch, min_time, start, out, i)) for i in range(processes)]
    for p in procs:
        p.start()
    rates = [evals / elapsed for evals, elapsed in (out.get() for _ in procs)]
    for p in procs:
        p.join()
    return sum(rates)


def settings_for(total_seconds: float) -> SimSettings:
    settle = min(1.0, total_seconds / 4)
    return DEFAULT_SETTINGS.with_(settle_seconds=settle, sim_seconds=total_seconds - settle)


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walkers", default=",".join(WALKERS))
    parser.add_argument("--seconds", default="1,10,30")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--batch", type=int, default=64, help="walkers per physics space (ours)")
    parser.add_argument("--min-time", type=float, default=1.5, help="wall seconds per measurement")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    walkers = args.walkers.split(",")
    seconds = [float(s) for s in args.seconds.split(",")]
    processes = [int(p) for p in args.processes.split(",")]

    python = peer_python()
    programs = peer_json(python, "--programs", "--walkers", ",".join(walkers))[0]
    specs = {name: build_walker(our_program(programs[name])) for name in walkers}

    rows = []
    cells = [(s, w, p) for s in seconds for w in walkers for p in processes]
    for secs, name, procs in tqdm(cells, desc="bench-sim", unit="cell", file=sys.stderr):
        (peer,) = peer_json(
            python, "--walkers", name, "--seconds", str(secs), "--processes", str(procs),
            "--min-time", str(args.min_time), "--json",
        )
        settings = settings_for(peer["sim_seconds"])
        assert settings.settle_steps + settings.measure_steps == peer["steps"], "unequal step counts"
        ours = measure_ours(specs[name], settings, procs, args.batch, args.min_time)
        rows.append({"walker": name, "seconds": secs, "sim_seconds": peer["sim_seconds"], "steps": peer["steps"],
                     "processes": procs, "ours": ours, "openelm": peer["evals_per_s"]})

    log.info("%-13s %7s %6s %5s %12s %12s %7s", "walker", "sim s", "steps", "procs", "ours ev/s", "openelm ev/s", "ratio")
    for r in rows:
        log.info("%-13s %7.2f %6d %5d %12.1f %12.1f %7.2f", r["walker"], r["sim_seconds"], r["steps"],
                 r["processes"], r["ours"], r["openelm"], r["ours"] / r["openelm"])
    longest = max(seconds)
    at = {(r["walker"], r["processes"]): r for r in rows if r["seconds"] == longest}
    ratio = geomean([at[(w, 1)]["ours"] / at[(w, 1)]["openelm"] for w in walkers]) if 1 in processes else float("nan")
    speedup = (geomean([at[(w, 2)]["ours"] / at[(w, 1)]["ours"] for w in walkers])
               if {1, 2} <= set(processes) else float("nan"))
    for w in walkers:
        log.info("%-13s ours %dx%d joints/muscles; at %g s: %.2fx per core", w, len(specs[w].joints),
                 len(specs[w].muscles), longest, at[(w, 1)]["ours"] / at[(w, 1)]["openelm"] if 1 in processes else float("nan"))
    log.info("RESULT sim_per_core_ratio=%.2f two_core_speedup=%.2f", ratio, speedup)


if __name__ == "__main__":
    main()
