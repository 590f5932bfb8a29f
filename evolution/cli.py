"""Headless command line: ``python -m evolution <command>``.

Commands:
    simulate: build one walker (a seed or a program file), race it, report fitness and
        descriptors; optionally write its replay trace.
    seeds: list the shipped seeds with their measured fitness.

Results go to stdout through logging (plain lines, or one JSON document with ``--json``);
``--quiet`` leaves only warnings and errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from evolution.sodarace import (
    DEFAULT_SETTINGS,
    TERRAINS,
    InvalidWalker,
    NotAWalker,
    SimulationDiverged,
    build_walker,
    seeds,
    simulate,
    simulate_batch,
)
from evolution.types import Evaluation, WalkerSpec

log = logging.getLogger("evolution")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evolution", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="race one walker and report fitness and descriptors")
    source = sim.add_mutually_exclusive_group()
    source.add_argument("--seed", default="square", help=f"a shipped seed: {', '.join(seeds.SEEDS)}")
    source.add_argument("--program", type=Path, help="a TRUSTED program file defining make_walker()")
    _add_sim_options(sim)
    sim.add_argument("--trace", type=Path, help="write the replay trace (SRT1 bytes) to this file")
    sim.add_argument("--json", action="store_true", help="print one JSON document")

    lst = sub.add_parser("seeds", help="list the shipped seeds and how far each travels")
    _add_sim_options(lst)
    lst.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def _add_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--terrain", default="flat", choices=sorted(TERRAINS))
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SETTINGS.sim_seconds,
        help=f"measured simulated seconds (default {DEFAULT_SETTINGS.sim_seconds:g})",
    )


def _report(name: str, spec: WalkerSpec, ev: Evaluation) -> dict[str, object]:
    d = ev.descriptor
    return {
        "walker": name,
        "terrain": ev.terrain,
        "fitness": ev.fitness,
        "displacement": ev.displacement,
        "height": d.height,
        "width": d.width,
        "mass": d.mass,
        "joints": len(spec.joints),
        "muscles": len(spec.muscles),
        "active_muscles": spec.num_active,
        "sim_seconds": ev.sim_seconds,
        "settle_seconds": ev.settle_seconds,
        "warnings": list(spec.warnings),
    }


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.program is not None:
        name, text = str(args.program), args.program.read_text(encoding="utf-8")
    else:
        seed = seeds.get_seed(args.seed)
        name, text = seed.name, seed.program
    try:
        spec = build_walker(text)
    except (SyntaxError, NotAWalker, InvalidWalker) as exc:
        log.error("%s does not build a valid walker: %s", name, exc)
        return 2
    settings = DEFAULT_SETTINGS.with_(sim_seconds=args.seconds)
    try:
        ev = simulate(spec, args.terrain, settings, trace=args.trace is not None)
    except SimulationDiverged as exc:
        log.error("the simulation of %s diverged: %s", name, exc)
        return 3
    report = _report(name, spec, ev)
    if args.trace is not None:
        args.trace.write_bytes(ev.trace.to_bytes())
        report["trace"] = str(args.trace)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return 0
    log.info(
        "%s on %s: fitness %.3f (moved %+.3f in %g s after %g s settling)",
        name, ev.terrain, ev.fitness, ev.displacement, ev.sim_seconds, ev.settle_seconds,
    )
    log.info("descriptor: height %.3f  width %.3f  mass %.3f", ev.descriptor.height, ev.descriptor.width, ev.descriptor.mass)
    log.info("%d joints, %d muscles (%d active)", report["joints"], report["muscles"], report["active_muscles"])
    for warning in spec.warnings:
        log.warning("%s", warning)
    if args.trace is not None:
        log.info("trace written to %s", args.trace)
    return 0


def _cmd_seeds(args: argparse.Namespace) -> int:
    settings = DEFAULT_SETTINGS.with_(sim_seconds=args.seconds)
    specs = {name: build_walker(seed.program) for name, seed in seeds.SEEDS.items()}
    results = simulate_batch(list(specs.values()), args.terrain, settings)
    rows = []
    for (name, spec), ev in zip(specs.items(), results):
        if isinstance(ev, SimulationDiverged):
            rows.append({"walker": name, "error": str(ev)})
            continue
        rows.append(_report(name, spec, ev) | {"title": seeds.SEEDS[name].title})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    log.info("%-13s %9s %7s %7s %7s %6s %7s", "seed", "fitness", "height", "width", "mass", "joints", "muscles")
    for row in rows:
        if "error" in row:
            log.info("%-13s diverged: %s", row["walker"], row["error"])
            continue
        log.info(
            "%-13s %9.3f %7.2f %7.2f %7.2f %6d %7d",
            row["walker"], row["fitness"], row["height"], row["width"], row["mass"], row["joints"], row["muscles"],
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stdout,
        force=True,
    )
    try:
        return {"simulate": _cmd_simulate, "seeds": _cmd_seeds}[args.command](args)
    except ValueError as exc:  # unknown seed or terrain, bad settings: say what to change
        log.error("%s", exc)
        return 2
