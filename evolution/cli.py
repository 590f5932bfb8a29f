"""Headless command line: ``python -m evolution <command>``.

Commands:
    run: stage 1, MAP-Elites with a mutation operator, into a run directory (resumable).
    serve-model: serve a local transformers model over the OpenAI HTTP API.
    train-mutator: make the embedded diff model (GP corpus, tokenizer, training, model card).
    finetune-mutator: fine-tune a diff model on the diffs MAP-Elites accepted in runs.
    dataset, train-stage2, eval-stage2: stage 2, a model trained on the good programs runs found.
    train-stage3, eval-stage3: stage 3, a terrain-conditioned inventor trained with RL (PPO), and
        its evaluation against the best of N unconditional samples on each terrain.
    report: summary and pictures (archive heatmap, metric curves) of a run directory.
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

from evolution.mutation import OPERATORS
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
    # --quiet is accepted after the command too (SUPPRESS keeps the top-level value otherwise)
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", parents=[quiet], help="race one walker and report fitness and descriptors")
    source = sim.add_mutually_exclusive_group()
    source.add_argument("--seed", default="square", help=f"a shipped seed: {', '.join(seeds.SEEDS)}")
    source.add_argument("--program", type=Path, help="a TRUSTED program file defining make_walker()")
    _add_sim_options(sim)
    sim.add_argument("--trace", type=Path, help="write the replay trace (SRT1 bytes) to this file")
    sim.add_argument("--json", action="store_true", help="print one JSON document")

    run = sub.add_parser("run", parents=[quiet], help="evolve walkers with MAP-Elites into a run directory")
    run.add_argument("--seed", default="square", help=f"seed program: {', '.join(seeds.SEEDS)}")
    run.add_argument("--terrain", default="flat", choices=sorted(TERRAINS))
    run.add_argument("--evals", type=int, default=10_000, help="evaluation budget (default 10000)")
    run.add_argument("--batch", type=int, default=64, help="children per batch (default 64)")
    run.add_argument("--mutation", default="gp", choices=OPERATORS,
                     help="mutation operator: gp (random syntax-tree edits), diff (a diff model), "
                          "rewrite (a code model rewrites make_walker); default gp")
    run.add_argument("--model", type=Path,
                     help="Hugging Face model folder for diff/rewrite (default: the embedded diff model)")
    run.add_argument("--api-url", help="use an OpenAI-compatible server instead, e.g. http://127.0.0.1:8765 "
                                       "(API key from the OPENAI_API_KEY environment variable)")
    run.add_argument("--api-model", help="model name to ask the server for")
    run.add_argument("--api-mode", choices=("completions", "chat"),
                     help="completions (default) or chat; rewrite with a chat model needs chat")
    run.add_argument("--workers", type=int, default=2, help="evaluation processes (default 2)")
    run.add_argument("--rng-seed", type=int, default=0)
    run.add_argument("--seconds", type=float, default=DEFAULT_SETTINGS.sim_seconds, help="simulated seconds")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="a new run directory")
    where.add_argument("--resume", type=Path, help="continue the run in this directory")

    rep = sub.add_parser("report", parents=[quiet], help="summarise a run directory and draw its archive and curves")
    rep.add_argument("directory", type=Path)
    rep.add_argument("--json", action="store_true", help="print the summary as JSON")

    serve = sub.add_parser("serve-model", parents=[quiet],
                           help="serve a local transformers model over the OpenAI HTTP API (for --api-url)")
    serve.add_argument("--model", type=Path, default=None,
                       help="Hugging Face model folder (default: the embedded diff model)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0: any free port)")
    serve.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")

    tm = sub.add_parser("train-mutator", parents=[quiet],
                        help="make the embedded diff model: GP corpus runs, tokenizer, training, model card")
    tm.add_argument("--out", type=Path, default=None, help="model folder to write (default: the embedded model's folder)")
    tm.add_argument("--work", type=Path, default=Path("var/mutator"),
                    help="folder for the corpus runs and files (reused when present; default var/mutator)")
    tm.add_argument("--minutes", type=float, default=None,
                    help="training wall-time budget (default 95 on a CPU, 6.5 with CUDA)")
    tm.add_argument("--steps", type=int, default=20_000, help="most optimizer steps (default 20000)")
    tm.add_argument("--seeds", type=_seed_budgets, default=None, metavar="SEED:EVALS,...",
                    help="GP corpus runs (default: every shipped seed, 5000-10000 evaluations each)")
    tm.add_argument("--layers", type=int, default=4, help="transformer blocks (default 4)")
    tm.add_argument("--width", type=int, default=256, help="model width (default 256; 8 heads, or fewer if narrow)")
    tm.add_argument("--probe", type=int, default=128, help="diffs sampled after training for the model card (default 128)")
    tm.add_argument("--workers", type=int, default=2, help="evaluation processes for the corpus runs (default 2)")
    tm.add_argument("--continue-from", type=Path, default=None, metavar="MODEL",
                    help="train a model made by this command further on the same corpus (a new warm-up and decay)")
    tm.add_argument("--reuse-corpus", action="store_true",
                    help="train on the corpus already prepared in --work (no GP runs): e.g. a copied corpus on a GPU machine")
    tm.add_argument("--batch", type=int, default=None,
                    help="packed rows of up to 1024 tokens per step (default 2 on a CPU, 32 with CUDA)")
    tm.add_argument("--lr", type=float, default=None, help="peak learning rate (default 0.0015 on a CPU, 0.002 with CUDA)")

    ft = sub.add_parser("finetune-mutator", parents=[quiet],
                        help="fine-tune a diff model on the diffs MAP-Elites accepted in runs (the paper's step)")
    ft.add_argument("--run", type=Path, action="append", required=True, dest="runs",
                    help="a run directory (repeat for several)")
    ft.add_argument("--model", type=Path, default=None, help="model to start from (default: the embedded diff model)")
    ft.add_argument("--out", type=Path, required=True, help="folder of the new model (then: run --mutation diff --model OUT)")
    ft.add_argument("--steps", type=int, default=None, help="optimizer steps (default: about two passes over the diffs)")
    ft.add_argument("--probe", type=int, default=64, help="diffs sampled after training for the model card (default 64)")

    ds = sub.add_parser("dataset", parents=[quiet],
                        help="stage 2: export the good programs of runs (within a fraction of their niche's best)")
    ds.add_argument("--run", type=Path, action="append", required=True, dest="runs", help="a run directory (repeatable)")
    ds.add_argument("--threshold", type=float, default=0.5,
                    help="keep programs with fitness >= this fraction of their niche's best (default 0.5; the paper: 0.5, 0.8)")
    ds.add_argument("--heldout", type=float, default=0.1, help="fraction of niches held out for evaluation (default 0.1)")
    ds.add_argument("--out", type=Path, required=True, help="the JSON-lines file to write")

    t2 = sub.add_parser("train-stage2", parents=[quiet], help="stage 2: train a model on a dataset of good programs")
    t2.add_argument("--dataset", type=Path, required=True, help="a file written by the dataset command")
    t2.add_argument("--out", type=Path, required=True, help="model folder to write")
    t2.add_argument("--init", choices=("pretrained", "scratch"), default="pretrained",
                    help="start from the base model's weights, or from random weights (default pretrained)")
    t2.add_argument("--base", type=Path, default=None,
                    help="model whose tokenizer (and weights, for pretrained) are used (default: the embedded diff model)")
    t2.add_argument("--minutes", type=float, default=10.0, help="training wall-time budget (default 10)")
    t2.add_argument("--steps", type=int, default=2000, help="most optimizer steps (default 2000)")

    e2 = sub.add_parser("eval-stage2", parents=[quiet],
                        help="stage 2: sample programs from a model, evaluate them, place them in a fresh archive")
    e2.add_argument("--model", type=Path, required=True, help="a model folder (e.g. from train-stage2)")
    e2.add_argument("--baseline", type=Path, default=None,
                    help="the untrained model to compare with (default: the base named in the model's training log)")
    e2.add_argument("--samples", type=int, default=1024, help="programs to sample from each model (default 1024)")
    e2.add_argument("--workers", type=int, default=2, help="evaluation processes (default 2)")
    e2.add_argument("--out", type=Path, default=None, help="write every figure (and the archives) as JSON here")

    t3 = sub.add_parser("train-stage3", parents=[quiet],
                        help="stage 3: train a terrain-conditioned inventor from a stage-2 model with PPO")
    t3.add_argument("--model", type=Path, required=True, help="the stage-2 model folder (from train-stage2)")
    t3.add_argument("--terrains", type=_terrain_set, default=("left-wall", "right-wall", "tunnel"), metavar="T,T,...",
                    help="terrains to train on, comma-separated, or a set of the paper's: walls-tunnel "
                         "(left-wall,right-wall,tunnel; the default) or walls-bumpy (left-wall,right-wall,bumpy)")
    t3.add_argument("--out", type=Path, required=True, help="folder of the trained inventor")
    t3.add_argument("--minutes", type=float, default=20.0, help="training wall-time budget (default 20)")
    t3.add_argument("--iterations", type=int, default=200, help="most PPO iterations (default 200)")
    t3.add_argument("--batch", type=int, default=24, help="programs sampled per iteration, over all terrains (default 24)")
    t3.add_argument("--minibatch", type=int, default=8, help="programs per gradient step (default 8)")
    t3.add_argument("--prefix-tokens", type=int, default=4, help="prefix vectors the terrain embedding writes (default 4)")
    t3.add_argument("--ten", choices=("table", "profile"), default="table",
                    help="terrain embedding: a learned block per terrain (table, the paper's discrete variant; default) "
                         "or an MLP over the terrain's height profile, walls and ceiling (profile)")
    t3.add_argument("--kl", type=float, default=0.05, help="KL penalty coefficient to the stage-2 model (default 0.05)")
    t3.add_argument("--lm-lr", type=float, default=1e-5, help="learning rate of the language model (default 1e-5)")
    t3.add_argument("--ten-lr", type=float, default=1e-3, help="terrain embedding and value head learning rate (default 1e-3)")
    t3.add_argument("--max-new-tokens", type=int, default=768, help="longest program in tokens (default 768)")
    t3.add_argument("--seconds", type=float, default=None,
                    help=f"measured simulated seconds per program (default {DEFAULT_SETTINGS.sim_seconds:g})")
    t3.add_argument("--workers", type=int, default=2, help="evaluation processes (default 2)")
    t3.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
    t3.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's choice; use 1 on a machine busy with other work, "
                         "where idle threads spin and sampling runs up to 10x slower)")
    t3.add_argument("--rng-seed", type=int, default=0)

    e3 = sub.add_parser("eval-stage3", parents=[quiet],
                        help="stage 3: per terrain, the inventor's programs against the best of N unconditional ones")
    e3.add_argument("--model", type=Path, required=True, help="a folder from train-stage3")
    e3.add_argument("--samples", type=int, default=1024, help="N: programs from the stage-2 model and from its dataset (default 1024)")
    e3.add_argument("--conditional", type=int, default=64, help="programs the inventor writes per terrain (default 64)")
    e3.add_argument("--baseline", type=Path, default=None, help="the stage-2 model (default: the one the inventor started from)")
    e3.add_argument("--dataset", type=Path, default=None,
                    help="the stage-2 dataset (default: the one named in the stage-2 model's training log)")
    e3.add_argument("--seconds", type=float, default=None, help="measured simulated seconds (default: as in training)")
    e3.add_argument("--workers", type=int, default=2, help="evaluation processes (default 2)")
    e3.add_argument("--plots", type=Path, default=None, help="folder for eval-<terrain>.png (default: the model folder)")
    e3.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice; see train-stage3)")
    e3.add_argument("--out", type=Path, default=None, help="write every figure as JSON here")

    lst = sub.add_parser("seeds", parents=[quiet], help="list the shipped seeds and how far each travels")
    _add_sim_options(lst)
    lst.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def _seed_budgets(value: str) -> tuple[tuple[str, int], ...]:
    pairs = []
    for item in value.split(","):
        name, _, evals = item.strip().partition(":")
        if name not in seeds.SEEDS or not evals.isdigit() or int(evals) < 1:
            raise argparse.ArgumentTypeError(
                f"{item!r}: write SEED:EVALS with a shipped seed ({', '.join(seeds.SEEDS)}) and a positive count, e.g. square:2000"
            )
        pairs.append((name, int(evals)))
    return tuple(pairs)


def _terrain_set(value: str) -> tuple[str, ...]:
    from evolution.lm.stage3 import TERRAIN_SETS

    names = TERRAIN_SETS.get(value) or tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in names if t not in TERRAINS]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give distinct terrains from {', '.join(TERRAINS)} separated by commas "
            f"(e.g. left-wall,right-wall,tunnel), or a set: {', '.join(TERRAIN_SETS)}")
    return names


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


def _cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evolution.loop import RunConfig, RunDirectory, make_operator, run

    if args.out is not None:
        seeds.get_seed(args.seed)  # fail early on a bad name
        config = RunConfig(seed=args.seed, terrain=args.terrain, evals=args.evals, batch=args.batch,
                           mutation=args.mutation, rng_seed=args.rng_seed, sim_seconds=args.seconds,
                           model=str(args.model.expanduser().resolve()) if args.model else None,
                           api_url=args.api_url, api_model=args.api_model, api_mode=args.api_mode)
        make_operator(config)  # a bad option or a missing model fails before the directory exists
        directory = RunDirectory(args.out)
        directory.create(config)
    else:
        directory = RunDirectory(args.resume)
        config = directory.config()
        if any(v is not None for v in (args.model, args.api_url, args.api_model, args.api_mode)):
            log.warning("--model and --api-* are ignored with --resume: the run keeps the options it started with")
    done = (directory.load_state() or {}).get("evaluations", 0)
    bar = tqdm(total=config.evals, initial=done, unit="eval", disable=args.quiet, desc=f"{config.seed}/{config.mutation}")

    def on_batch(p) -> None:
        bar.update(p.evaluations - bar.n)
        bar.set_postfix(coverage=f"{p.coverage:.1%}", qd=f"{p.qd_score:.0f}", best=f"{p.max_fitness:.1f}",
                        valid=f"{p.valid_rate:.0%}", eps=f"{p.evals_per_s:.0f}")

    try:
        scheduler = run(directory, workers=args.workers, on_batch=on_batch)
    finally:
        bar.close()
    a = scheduler.archive
    log.info("%d evaluations: %d niches filled (%.1f%%), QD score %.1f, max fitness %.2f -> %s",
             scheduler.evaluations, len(a), 100 * a.coverage, a.qd_score, a.max_fitness, directory.path)
    if scheduler.evaluations < config.evals:
        log.info("stopped early; continue with: python -m evolution run --resume %s", directory.path)
        return 130
    return 0


def _cmd_serve_model(args: argparse.Namespace) -> int:
    from evolution.mutation import DEFAULT_DIFF_MODEL, serve

    model = args.model or DEFAULT_DIFF_MODEL
    if args.model is None and not (DEFAULT_DIFF_MODEL / "config.json").is_file():
        raise FileNotFoundError(f"the embedded diff model is not built yet ({DEFAULT_DIFF_MODEL}); "
                                "build it with `make train-mutator` or pass --model PATH")
    try:
        serve(model, host=args.host, port=args.port, device=args.device)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        log.error("cannot listen on %s:%d: %s; choose another --port or --host", args.host, args.port, exc)
        return 2
    return 0


def _cmd_train_mutator(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from evolution.lm._train import ModelSize
    import torch

    from evolution.lm.mutator import CPU_MINUTES, GPU_RECIPE, MutatorConfig, default_train_config, train_mutator
    from evolution.mutation import DEFAULT_DIFF_MODEL

    if (args.minutes is not None and args.minutes <= 0) or args.steps < 1 or args.layers < 1 or args.width < 8 or args.probe < 0:
        raise ValueError("--minutes, --steps, --layers and --width must be positive (--width at least 8), --probe >= 0")
    if (args.batch is not None and args.batch < 1) or (args.lr is not None and not 0 < args.lr < 1):
        raise ValueError("--batch must be >= 1 and --lr between 0 and 1 (e.g. 0.0015)")
    heads = next(h for h in (8, 4, 2, 1) if args.width % h == 0 and args.width // h >= 8)
    recipe = GPU_RECIPE if torch.cuda.is_available() else {"minutes": CPU_MINUTES}
    train_config = default_train_config(minutes=args.minutes or recipe["minutes"], max_steps=args.steps)
    train_config = replace(train_config, batch_size=args.batch or recipe.get("batch_size", train_config.batch_size),
                           learning_rate=args.lr or recipe.get("learning_rate", train_config.learning_rate))
    config = MutatorConfig(
        out=args.out or DEFAULT_DIFF_MODEL,
        work=args.work,
        size=replace(ModelSize(), n_layer=args.layers, n_embd=args.width, n_head=heads),
        train=train_config,
        probe=args.probe,
        continue_from=args.continue_from,
        reuse_corpus=args.reuse_corpus,
        **({"seeds": args.seeds} if args.seeds else {}),
    )
    out = train_mutator(config, workers=args.workers)
    _log_trained(out)
    return 0


def _cmd_finetune_mutator(args: argparse.Namespace) -> int:
    from evolution.lm.mutator import finetune_mutator
    from evolution.mutation import DEFAULT_DIFF_MODEL

    model = args.model or DEFAULT_DIFF_MODEL
    if not (Path(model) / "config.json").is_file():
        raise FileNotFoundError(f"{model} is not a model folder (no config.json); pass --model PATH, or build the "
                                "embedded model with `make train-mutator`")
    for run_dir in args.runs:
        if not (run_dir / "genomes.jsonl").is_file():
            raise FileNotFoundError(f"{run_dir} is not a run directory with genomes (no genomes.jsonl)")
    if args.steps is not None and args.steps < 1:
        raise ValueError("--steps must be positive")
    out = finetune_mutator(model=model, run_dirs=args.runs, out=args.out, steps=args.steps, probe=args.probe)
    _log_trained(out)
    log.info("use it with: python -m evolution run --mutation diff --model %s --out RUN_DIR", out)
    return 0


def _log_trained(out: Path) -> None:
    record = json.loads((out / "training_log.json").read_text())
    log.info("%d steps, final loss %.3f -> %s (model card %s, loss curve %s)",
             record["steps"], record["final_loss"], out, out / "README.md", out / "loss.png")
    if "probe" in record:
        p = record["probe"]
        log.info("probe: %d diffs, %.0f%% applied, %.0f%% valid walkers, %.1f children/s",
                 p["children"], 100 * p["applied_rate"], 100 * p["valid_rate"], p["children_per_s"])


def _cmd_dataset(args: argparse.Namespace) -> int:
    from evolution.lm.dataset import build_dataset, write_dataset

    records = build_dataset(args.runs, threshold=args.threshold, heldout=args.heldout)
    if not records:
        raise ValueError("no program qualifies: the runs hold no valid walker; run them longer")
    write_dataset(records, args.out)
    held = sum(r.split == "heldout" for r in records)
    log.info("%d programs from %d niches (%d held out, %d niches) -> %s", len(records), len({r.cell for r in records}),
             held, len({r.cell for r in records if r.split == "heldout"}), args.out)
    return 0


def _cmd_train_stage2(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from evolution.lm.stage2 import Stage2Config, train_stage2
    from evolution.mutation import DEFAULT_DIFF_MODEL

    if args.minutes <= 0 or args.steps < 1:
        raise ValueError("--minutes and --steps must be positive")
    if not args.dataset.is_file():
        raise FileNotFoundError(f"{args.dataset} does not exist; write one with: python -m evolution dataset --run DIR --out FILE")
    default = Stage2Config(out=args.out, dataset=args.dataset, base=Path("."))
    config = replace(default, base=args.base or DEFAULT_DIFF_MODEL, init=args.init,
                     train=replace(default.train, time_limit_s=args.minutes * 60, max_steps=args.steps))
    out = train_stage2(config)
    _log_trained(out)
    log.info("evaluate it with: python -m evolution eval-stage2 --model %s", out)
    return 0


def _cmd_eval_stage2(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evolution.lm.stage2 import evaluate_model, run_archive_summary

    if args.samples < 1:
        raise ValueError("--samples must be positive")
    record_file = args.model / "training_log.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    baseline = args.baseline or (Path(record["stage2"]["base"]) if "stage2" in record else None)
    rows: dict[str, dict] = {}
    for name, model in (("model", args.model), ("untrained", baseline)):
        if model is None:
            continue
        if not (Path(model) / "config.json").is_file():
            raise FileNotFoundError(f"{model} is not a model folder (no config.json)")
        with tqdm(total=args.samples, desc=f"sampling {name}", unit="program", disable=args.quiet) as bar:
            rows[name] = evaluate_model(model, args.samples, workers=args.workers, on_batch=lambda k: bar.update(k - bar.n))
    runs = []
    if "stage2" in record:
        from evolution.lm.dataset import read_dataset

        dataset = Path(record["stage2"]["dataset"])
        if dataset.is_file():
            for run_dir in sorted({r.run for r in read_dataset(dataset)}):
                if (Path(run_dir) / "metrics.jsonl").is_file():
                    runs.append(run_archive_summary(Path(run_dir)))
                else:
                    log.warning("the training run %s is gone; its archive is left out of the table", run_dir)
    log.info("%-12s %8s %8s %8s %8s %10s %9s", "source", "samples", "valid", "distinct", "niches", "QD score", "max fit")
    for name, r in rows.items():
        log.info("%-12s %8d %7.1f%% %8d %8d %10.1f %9.2f", name, r["samples"], 100 * r["valid_rate"], r["distinct"],
                 r["niches"], r["qd_score"], r["max_fitness"])
    for r in runs:
        log.info("%-12s %8d %8s %8s %8d %10.1f %9.2f  (training run %s)", "run", r["evaluations"], "", "", r["niches"],
                 r["qd_score"], r["max_fitness"], r["run"])
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"models": rows, "runs": runs}, indent=1))
        log.info("figures and archives -> %s", args.out)
    return 0


def _cmd_train_stage3(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evolution.lm.stage3 import Stage3Config, train_stage3

    if args.minutes <= 0:
        raise ValueError("--minutes must be positive")
    if not (args.model / "config.json").is_file():
        raise FileNotFoundError(f"{args.model} is not a model folder (no config.json); train a stage-2 model with: "
                                "python -m evolution train-stage2 --dataset FILE --out DIR")
    config = Stage3Config(out=args.out, model=args.model, terrains=args.terrains, prefix_tokens=args.prefix_tokens,
                          ten=args.ten, iterations=args.iterations, time_limit_s=args.minutes * 60,
                          batch_size=args.batch, minibatch_size=args.minibatch, lm_learning_rate=args.lm_lr,
                          ten_learning_rate=args.ten_lr, kl_coef=args.kl, max_new_tokens=args.max_new_tokens,
                          sim_seconds=args.seconds, workers=args.workers, device=args.device, threads=args.threads,
                          seed=args.rng_seed)
    config.check()
    with tqdm(total=config.iterations, desc="stage 3", unit="iter", disable=args.quiet) as bar:

        def on_iteration(stats: dict) -> None:
            bar.update(1)
            bar.set_postfix({t: f"{s['score']:.1f}" for t, s in stats["terrains"].items()} | {"kl": f"{stats['kl']:.2f}"})

        out = train_stage3(config, on_iteration=on_iteration)
    record = json.loads((out / "training_log.json").read_text())
    log.info("%d PPO iterations in %.0f s -> %s (reward curve %s)", record["iterations"], record["wall_s"], out,
             out / "reward_curve.png")
    log.info("evaluate it with: python -m evolution eval-stage3 --model %s", out)
    return 0


def _cmd_eval_stage3(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evolution.lm.stage3 import evaluate_stage3, format_table

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    bars: dict[str, tqdm] = {}

    def on_progress(what: str, done: int, total: int) -> None:
        if what not in bars:
            bars[what] = tqdm(total=total, desc=f"sampling {what}", unit="program", disable=args.quiet)
        bars[what].update(done - bars[what].n)

    try:
        evaluation = evaluate_stage3(args.model, samples=args.samples, conditional=args.conditional,
                                     baseline=args.baseline, dataset=args.dataset, workers=args.workers,
                                     sim_seconds=args.seconds, plots=args.plots or args.model, on_progress=on_progress)
    finally:
        for bar in bars.values():
            bar.close()
    for line in format_table(evaluation):
        log.info("%s", line)
    log.info("the inventor matches or beats best-of-N on %d of %d terrains (its median program against the best of "
             "N; plots eval-<terrain>.png in %s)", evaluation["beats"], evaluation["total"], args.plots or args.model)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(evaluation, indent=1))
        log.info("figures -> %s", args.out)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from evolution.loop import RunDirectory
    from evolution.report import draw, summary

    directory = RunDirectory(args.directory)
    try:
        facts = summary(directory)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    files = draw(directory)
    if args.json:
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
        return 0
    log.info("%s on %s with %s mutation: %d / %d evaluations in %d batches (%.0f evals/s)",
             facts["seed"], facts["terrain"], facts["mutation"], facts["evaluations"], facts["budget"],
             facts["batches"], facts["evals_per_s"])
    log.info("niches filled %d (%.1f%%), QD score %.1f, max fitness %.2f (genome %d), valid children %.1f%%",
             facts["niches_filled"], 100 * facts["coverage"], facts["qd_score"], facts["max_fitness"],
             facts["best_genome"], 100 * facts["valid_rate"])
    for f in files:
        log.info("wrote %s", f)
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
        commands = {"run": _cmd_run, "report": _cmd_report, "simulate": _cmd_simulate, "seeds": _cmd_seeds,
                    "serve-model": _cmd_serve_model, "train-mutator": _cmd_train_mutator,
                    "finetune-mutator": _cmd_finetune_mutator, "dataset": _cmd_dataset,
                    "train-stage2": _cmd_train_stage2, "eval-stage2": _cmd_eval_stage2,
                    "train-stage3": _cmd_train_stage3, "eval-stage3": _cmd_eval_stage3}
        return commands[args.command](args)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:  # say what to change
        log.error("%s", exc)
        return 2
