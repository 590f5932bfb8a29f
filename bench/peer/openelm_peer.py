#!/usr/bin/env python3
"""Peer benchmark: OpenELM 0.9.2's Box2D Sodarace simulator.

Runs INSIDE the throw-away peer venv made by ``bench/peer/setup.sh``
(``bench/.peer/venv``), never in the project's own environment.  It imports
OpenELM's simulator and seed walkers straight from the installed package
(nothing of OpenELM is copied into this repository) and measures evaluations
per second at equal simulated time, so ``bench/sim.py`` can run it interleaved
with our own simulator.

Modes (stdout carries JSON only; diagnostics go to stderr through logging):

* default: one JSON object per line per (processes, walker, seconds)::

    {"system": "openelm-0.9.2", "walker": "square", "sim_seconds": 1.05,
     "steps": 63, "processes": 1, "evals": 812, "wall_s": 1.5012,
     "evals_per_s": 540.9, "fitness": 1.234, ...}

  (plus the extra keys ``requested_seconds``, ``eval_ms``, ``updates``,
  ``valid`` and ``error``, described in bench/peer/README.md).
* ``--programs``: one JSON object mapping walker name -> the program source
  text of that seed file as shipped, with the OpenELM imports it makes and
  the helper functions it pulls from other seed files.
* ``--check``: import everything, build every walker, print one JSON object
  with versions; used by setup.sh as its final smoke test.

What one "evaluation" is: constructing a fresh ``SodaraceSimulator(body)``
(world + body creation) and calling ``.evaluate(eval_ms)`` on it; the walker
program itself (``make_walker()`` / ``to_dict()``) runs once per walker,
outside the timed loop.  Each measurement runs in freshly forked worker(s)
(``--processes 1`` too), started together on a barrier after one untimed
warm-up evaluation each; the reported rate is the sum of the workers' rates.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import sys
import time
import types
from pathlib import Path
from queue import Empty
from typing import Any

log = logging.getLogger("openelm_peer")

# OpenELM's seed walker modules (openelm/environments/sodaracer/walker/*.py),
# keyed by the names OpenELM itself uses for them (SEEDS_DICT keys).
WALKER_MODULES: dict[str, str] = {
    "square": "square",
    "radial": "radial",
    "cppn_fixed": "CPPN_fixed",
    "cppn_mutable": "CPPN_mutable",
    "wheel": "wheel",
    "galloper": "galloper",
    "runner": "runner",
}

WALKER_PKG = "openelm.environments.sodaracer.walker"

# SodaraceSimulator.evaluate(time_ms) runs int(time_ms // 350) calls of
# IESoRWorld.update_world(350); each advances 0.35 s of simulated time in
# steps of 1/60 s (21 steps).  Equal-simulated-time table agreed with our side:
UPDATE_MS = 350
EQUAL_TIME_UPDATES: dict[float, int] = {1.0: 3, 10.0: 29, 30.0: 85}

# Stub packages: importing the real openelm/__init__.py or
# openelm/environments/__init__.py drags in torch, transformers, hydra, ...
_STUB_PACKAGES = ("openelm", "openelm.environments", "openelm.environments.sodaracer")

_JSON_OUT = None  # file object on the original stdout (fd duplicate)


# --------------------------------------------------------------------------
# stdout hygiene: keep fd 1 / sys.stdout for JSON only
# --------------------------------------------------------------------------
def _protect_stdout() -> None:
    """Route everything except our JSON lines to stderr.

    pygame (imported by OpenELM's box2d_examples framework) and OpenELM's own
    ``print`` calls write to stdout.  We keep a private duplicate of the real
    stdout for the JSON output and point fd 1 and ``sys.stdout`` at stderr.
    """
    global _JSON_OUT
    if _JSON_OUT is not None:
        return
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    _JSON_OUT = os.fdopen(json_fd, "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr


def emit(obj: Any) -> None:
    assert _JSON_OUT is not None
    _JSON_OUT.write(json.dumps(obj, allow_nan=False) + "\n")
    _JSON_OUT.flush()


# --------------------------------------------------------------------------
# Importing OpenELM's simulator without OpenELM's heavy package __init__s
# --------------------------------------------------------------------------
_ROOT: Path | None = None


def openelm_root() -> Path:
    global _ROOT
    if _ROOT is not None:
        return _ROOT
    spec = importlib.util.find_spec("openelm")  # does not execute __init__
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "openelm is not importable from %s; run bench/peer/setup.sh and use "
            "the interpreter it prints (--print-python)" % sys.executable
        )
    _ROOT = Path(list(spec.submodule_search_locations)[0])
    return _ROOT


def _install_stub_packages(root: Path) -> None:
    for name in _STUB_PACKAGES:
        if name in sys.modules:
            continue
        parts = name.split(".")
        path = root.joinpath(*parts[1:])
        if not path.is_dir():
            raise SystemExit(f"expected OpenELM package directory missing: {path}")
        mod = types.ModuleType(name, f"stub for {name} (bench/peer: skips heavy __init__)")
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(path)]
        mod.__spec__ = spec
        mod.__path__ = [str(path)]
        mod.__package__ = name
        sys.modules[name] = mod
        if len(parts) > 1:
            setattr(sys.modules[".".join(parts[:-1])], parts[-1], mod)


_SIM = None


def load_simulator():
    """Return OpenELM's SodaraceSimulator class (imported once)."""
    global _SIM
    if _SIM is not None:
        return _SIM
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    _install_stub_packages(openelm_root())
    saved_argv = sys.argv
    # box2d_examples/settings.py parses sys.argv with optparse at import time.
    sys.argv = [saved_argv[0]]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            sim_mod = importlib.import_module("openelm.environments.sodaracer.simulator")
            importlib.import_module(f"{WALKER_PKG}.walk_creator")
    finally:
        sys.argv = saved_argv
    _SIM = sim_mod.SodaraceSimulator
    return _SIM


def walker_module(name: str):
    load_simulator()
    return importlib.import_module(f"{WALKER_PKG}.{WALKER_MODULES[name]}")


def build_walker(name: str):
    """Build a seed walker with OpenELM's own API. Returns (body_dict, valid)."""
    mod = walker_module(name)
    walker = mod.make_walker()
    valid = bool(walker.validate())
    return walker.to_dict(), valid


def versions() -> dict[str, str]:
    out = {}
    for dist in ("openelm", "Box2D", "box2d-py", "numpy", "pygame"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    out["python"] = sys.version.split()[0]
    return out


def system_name() -> str:
    return "openelm-" + importlib.metadata.version("openelm")


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------
def updates_for(seconds: float) -> int:
    if seconds in EQUAL_TIME_UPDATES:
        return EQUAL_TIME_UPDATES[seconds]
    return max(1, round(seconds * 1000.0 / UPDATE_MS))


def _plain(obj: Any) -> Any:
    """json.dumps default= for numpy scalars."""
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def reference_run(body: dict, updates: int) -> tuple[int, float]:
    """Untimed run through OpenELM's API: count physics steps, get fitness.

    ``evaluate(t)`` is ``update_world(350)`` x ``t // 350`` followed by the
    fitness read-out; calling ``update_world`` ourselves lets us sum the step
    counts it returns, and ``evaluate(0)`` then does only the read-out.
    """
    sim_cls = load_simulator()
    sim = sim_cls(body=body)
    steps = 0
    for _ in range(updates):
        steps += sim.world.update_world(UPDATE_MS)
    return steps, sim.evaluate(0)


def timed_loop(body: dict, eval_ms: int, min_time: float, min_evals: int) -> dict:
    """Evaluate repeatedly until >= min_time wall seconds and >= min_evals."""
    sim_cls = load_simulator()
    fitnesses: set[float] = set()
    evals = 0
    clock = time.perf_counter
    t0 = clock()
    while True:
        fitness = sim_cls(body=body).evaluate(eval_ms)
        evals += 1
        if len(fitnesses) < 4:
            fitnesses.add(fitness)
        elapsed = clock() - t0
        if evals >= min_evals and elapsed >= min_time:
            break
    return {"evals": evals, "wall_s": elapsed, "fitnesses": sorted(fitnesses)}


def _worker(body, eval_ms, min_time, min_evals, barrier, queue, idx) -> None:
    try:
        sim_cls = load_simulator()
        sim_cls(body=body).evaluate(eval_ms)  # warm-up, untimed
        barrier.wait(timeout=120)
        res = timed_loop(body, eval_ms, min_time, min_evals)
        res["worker"] = idx
        queue.put(res)
    except BaseException as exc:  # report, never hang the parent or siblings
        barrier.abort()
        queue.put({"worker": idx, "error": f"{type(exc).__name__}: {exc}"})
        raise


def measure_forked(body: dict, eval_ms: int, min_time: float, min_evals: int,
                   processes: int) -> dict:
    """Fork `processes` workers; each warms up, waits on a common barrier, then
    runs the timed loop for the same minimum wall time.  The rate reported is
    the sum of the workers' own rates (evals_i / wall_i)."""
    import gc
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    gc.collect()
    barrier = ctx.Barrier(processes)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(body, eval_ms, min_time, min_evals,
                                          barrier, queue, i), daemon=True)
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    results: list[dict] = []
    try:
        while len(results) < processes:
            try:
                results.append(queue.get(timeout=1.0))
            except Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:  # e.g. a Box2D segfault: the worker never reports
                    raise RuntimeError(f"worker died with exit code(s) {dead}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError("; ".join(errors))
    return {
        "evals": sum(r["evals"] for r in results),
        "wall_s": max(r["wall_s"] for r in results),
        "evals_per_s": sum(r["evals"] / r["wall_s"] for r in results),
        "fitnesses": sorted({f for r in results for f in r["fitnesses"]}),
        "per_worker": [round(r["evals"] / r["wall_s"], 3) for r in results],
    }


def measure(name: str, seconds: float, processes: int, min_time: float,
            min_evals: int, plain_floats: bool = False) -> dict:
    updates = updates_for(seconds)
    eval_ms = updates * UPDATE_MS
    row: dict[str, Any] = {
        "system": system_name(),
        "walker": name,
        "requested_seconds": seconds,
        "sim_seconds": None,
        "steps": None,
        "eval_ms": eval_ms,
        "updates": updates,
        "processes": processes,
        "evals": 0,
        "wall_s": None,
        "evals_per_s": None,
        "fitness": None,
        "valid": None,
        "plain_floats": plain_floats,
        "error": None,
    }
    try:
        body, valid = build_walker(name)
        if plain_floats:
            body = json.loads(json.dumps(body, default=_plain))
        row["valid"] = valid
        if not valid:
            log.warning("%s: OpenELM Walker.validate() is False (OpenELM's "
                        "Sodarace env would discard it); benchmarking anyway", name)
        steps, ref_fitness = reference_run(body, updates)
        row["steps"] = steps
        row["sim_seconds"] = round(steps / 60.0, 6)
        row["fitness"] = _finite(ref_fitness)
        if row["fitness"] is None:
            log.warning("%s: OpenELM returned non-finite fitness %r", name, ref_fitness)
        # Every measurement (1 process too) runs in freshly forked worker(s),
        # so 1- and N-process numbers share one code path and no measurement
        # inherits garbage or allocator state from an earlier one.
        res = measure_forked(body, eval_ms, min_time, min_evals, processes)
        log.debug("%s %.2fs x%d per-worker evals/s: %s", name, seconds,
                  processes, res["per_worker"])
        if any(f != ref_fitness and not (math.isnan(f) and math.isnan(ref_fitness))
               for f in res["fitnesses"]):
            log.warning("%s: fitness not deterministic across evaluations: ref=%r "
                        "timed=%r", name, ref_fitness, res["fitnesses"])
        row["evals"] = res["evals"]
        row["wall_s"] = round(res["wall_s"], 6)
        row["evals_per_s"] = round(res["evals_per_s"], 4)
    except Exception as exc:  # report, don't hide
        log.exception("%s @ %ss x%d failed", name, seconds, processes)
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


# --------------------------------------------------------------------------
# --programs
# --------------------------------------------------------------------------
def program_info(name: str) -> dict:
    mod = walker_module(name)
    path = Path(mod.__file__)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    openelm_imports, other_imports, helpers = [], [], []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("openelm"):
            names = [a.name for a in node.names]
            openelm_imports.append({
                "line": ast.get_source_segment(source, node),
                "lineno": node.lineno,
                "module": node.module,
                "names": names,
            })
            for alias in node.names:
                obj = getattr(importlib.import_module(node.module), alias.name)
                defined_in = getattr(obj, "__module__", node.module)
                if defined_in == f"{WALKER_PKG}.walk_creator":
                    continue  # the walker API itself (walker_creator / Walker)
                helper_src_path = Path(sys.modules[defined_in].__file__)
                helper_src = helper_src_path.read_text(encoding="utf-8")
                seg = None
                for hnode in ast.parse(helper_src).body:
                    if isinstance(hnode, (ast.FunctionDef, ast.ClassDef)) and \
                            hnode.name == getattr(obj, "__name__", alias.name):
                        seg = ast.get_source_segment(helper_src, hnode)
                helpers.append({
                    "name": alias.asname or alias.name,
                    "defined_in": defined_in,
                    "defined_in_walker": next(
                        (k for k, v in WALKER_MODULES.items()
                         if f"{WALKER_PKG}.{v}" == defined_in), None),
                    "file": helper_src_path.name,
                    "source": seg,
                })
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            other_imports.append(ast.get_source_segment(source, node))
    body, valid = build_walker(name)
    return {
        "module": mod.__name__,
        "file": path.name,
        "path": str(path),
        "source": source,
        # `from openelm...` lines to rewrite for our walker API
        "openelm_imports": openelm_imports,
        # plain imports the program text relies on (math, numpy as np)
        "other_imports": other_imports,
        # non-API names imported from other seed files (query_cppn from
        # CPPN_mutable); `source` is that function's text, to inline
        "helpers": helpers,
        # what OpenELM's make_walker().to_dict() gives, for cross-checking
        # (numpy scalars, e.g. cppn_fixed's np.sign() phases, become numbers)
        "body": json.loads(json.dumps(body, default=_plain)),
        "valid": valid,
    }


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def _parse_walkers(text: str) -> list[str]:
    lookup = {k.lower(): k for k in WALKER_MODULES}
    lookup.update({v.lower(): k for k, v in WALKER_MODULES.items()})
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        key = lookup.get(item.lower())
        if key is None:
            raise argparse.ArgumentTypeError(
                f"unknown walker {item!r}; choose from {', '.join(WALKER_MODULES)}")
        out.append(key)
    return out


def _parse_floats(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s.strip()]


def _parse_ints(text: str) -> list[int]:
    vals = [int(s) for s in text.split(",") if s.strip()]
    if any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError("--processes must be >= 1")
    return vals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--walkers", type=_parse_walkers, default=list(WALKER_MODULES),
                    help="comma list (default: all seven): " + ",".join(WALKER_MODULES))
    ap.add_argument("--seconds", type=_parse_floats, default=[1.0, 10.0, 30.0],
                    help="simulated seconds, comma list (default 1,10,30); "
                         "1/10/30 map to 3/29/85 updates of 0.35 s")
    ap.add_argument("--processes", type=_parse_ints, default=[1],
                    help="worker processes (fork), e.g. 1 or 2 or 1,2 (default 1)")
    ap.add_argument("--min-time", type=float, default=1.5,
                    help="minimum wall seconds per measurement (default 1.5)")
    ap.add_argument("--min-evals", type=int, default=3,
                    help="minimum evaluations per measurement/worker (default 3)")
    ap.add_argument("--plain-floats", action="store_true",
                    help="NOT as shipped: turn numpy scalars in the walker body into "
                         "Python numbers before simulating (cppn_fixed's np.sign() "
                         "phases make OpenELM's per-step muscle update ~3x slower)")
    ap.add_argument("--json", action="store_true",
                    help="JSON lines on stdout (always on; accepted for symmetry)")
    ap.add_argument("--programs", action="store_true",
                    help="print walker name -> shipped program source + helpers, then exit")
    ap.add_argument("--check", action="store_true",
                    help="import + build every walker, print versions JSON, then exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _protect_stdout()

    if args.programs:
        emit({name: program_info(name) for name in args.walkers})
        return 0

    if args.check:
        load_simulator()
        report = {"system": system_name(), "versions": versions(), "walkers": {}}
        ok = True
        for name in args.walkers:
            try:
                body, valid = build_walker(name)
                steps, fit = reference_run(body, 1)
                world = load_simulator()(body=body).world
                report["walkers"][name] = {
                    "joints": len(body["joints"]),
                    "muscles": len(body["muscles"]),
                    "valid": valid,
                    # what OpenELM actually builds in Box2D (self-connections are
                    # skipped; amplitude >= -0.6 becomes an oscillating muscle)
                    "box2d_dynamic_bodies": world.world.bodyCount - 1,
                    "box2d_distance_joints": len(world.bone_list),
                    "of_which_muscles": len(world.muscle_list),
                    "steps_per_update": steps,
                    "fitness_1_update": _finite(fit),
                }
            except Exception as exc:
                ok = False
                report["walkers"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        emit(report)
        return 0 if ok else 1

    load_simulator()
    log.info("%s from %s; versions %s; cpus=%s", system_name(), openelm_root(),
             versions(), os.cpu_count())
    failures = 0
    for procs in args.processes:
        for name in args.walkers:
            for secs in args.seconds:
                row = measure(name, secs, procs, args.min_time, args.min_evals,
                              args.plain_floats)
                if row["error"]:
                    failures += 1
                else:
                    log.info("%-12s %6.2fs sim (%4d steps) x%d: %9.2f evals/s "
                             "(%d evals / %.2fs) fitness=%s", name, row["sim_seconds"],
                             row["steps"], procs, row["evals_per_s"], row["evals"],
                             row["wall_s"], row["fitness"])
                emit(row)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
