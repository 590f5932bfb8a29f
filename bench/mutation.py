"""Mutation benchmark: GP vs the embedded diff model vs that model fine-tuned on accepted diffs.

Run: ``make bench-mutation`` (``ARGS="--evals 4000 --model PATH --api-url URL"`` to change it).
Every operator gets the same start (the Square seed on flat ground), the same RNG seed and the
same evaluation budget, in batches of 64 on 2 evaluation workers. The fine-tuned model is the
paper's step: the embedded model trained further on the diffs MAP-Elites accepted in the
embedded model's own run here, then given a fresh run of its own.

Per operator: valid-child rate (children that became a scored walker), structural change rate
(children whose program differs from the parent's beyond numeric literals), children per
second (the operator's time only, batched), niches filled and QD score after the budget. The
plot of niches filled against evaluations goes to ``bench/out/mutation.png``.

Last line: ``RESULT llm_valid_rate=<x> llm_children_per_s=<x> llm_vs_gp_niches=<ratio>
finetune_valid_gain=<x>`` (embedded model's valid rate and speed, its niches over GP's, and the
fine-tuned model's valid rate minus the embedded one's).
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.loop import RunConfig, RunDirectory, run  # noqa: E402
from evolution.mutation import DEFAULT_DIFF_MODEL  # noqa: E402

log = logging.getLogger("bench.mutation")
OUT = ROOT / "bench" / "out"


class _Numbers(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return ast.copy_location(ast.Constant(0), node)
        return node


def structure(text: str) -> str | None:
    """The program's syntax tree with every number set to 0 (``None`` if it does not parse)."""
    try:
        return ast.dump(_Numbers().visit(ast.parse(text)))
    except (SyntaxError, ValueError):
        return None


def measure(directory: RunDirectory, wall: float) -> dict[str, float]:
    """What one finished run did, from its files."""
    genomes = [json.loads(line) for line in directory.genomes_file.read_text().splitlines()]
    texts = {g["id"]: g["text"] for g in genomes}
    children = [g for g in genomes if g["parent_id"] is not None]
    structural = sum(
        1 for g in children
        if g["text"] is not None and structure(g["text"]) not in (None, structure(texts[g["parent_id"]]))
    )
    metrics = directory.metrics()
    last = metrics[-1]
    ask_s = sum(m.get("ask_s", 0.0) for m in metrics[1:])
    failures: dict[str, int] = {}
    for m in metrics:
        for kind, count in m["failures"].items():
            failures[kind] = failures.get(kind, 0) + count
    return {
        "children": len(children),
        "valid_rate": sum(g["outcome"] != "failed" for g in children) / len(children),
        "structural_rate": structural / len(children),
        "children_per_s": len(children) / ask_s if ask_s > 0 else float("nan"),
        "niches": last["niches_filled"],
        "qd_score": last["qd_score"],
        "max_fitness": last["max_fitness"],
        "wall_s": wall,
        "curve": [(m["evaluations"], m["niches_filled"]) for m in metrics],
        "failures": failures,
    }


def bench_run(name: str, args: argparse.Namespace, **operator: str | None) -> tuple[RunDirectory, dict]:
    path = OUT / "mutation" / name
    shutil.rmtree(path, ignore_errors=True)
    directory = RunDirectory(path)
    directory.create(RunConfig(seed="square", evals=args.evals, batch=args.batch, rng_seed=args.rng_seed, **operator))
    from tqdm import tqdm

    bar = tqdm(total=args.evals, desc=name, unit="eval", leave=False)
    started = time.perf_counter()
    run(directory, workers=2, on_batch=lambda p: bar.update(p.evaluations - bar.n))
    bar.close()
    result = measure(directory, time.perf_counter() - started)
    log.info("%s: %s", name, {k: v for k, v in result.items() if k != "curve"})
    return directory, result


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, r in results.items():
        xs, ys = zip(*r["curve"])
        ax.plot(xs, ys, label=f"{name} ({r['valid_rate']:.0%} valid)")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("niches filled")
    ax.set_title("Square seed, flat ground: niches filled per operator")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=2000, help="evaluations per operator (default 2000)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rng-seed", type=int, default=0)
    parser.add_argument("--finetune-steps", type=int, default=None, help="fine-tuning steps (default: about two passes)")
    parser.add_argument("--model", type=Path, action="append", default=[], help="another local model (repeatable)")
    parser.add_argument("--api-url", help="an OpenAI-compatible server to add")
    parser.add_argument("--api-model", help="model name for --api-url")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not (DEFAULT_DIFF_MODEL / "config.json").is_file():
        sys.exit(f"the embedded diff model is missing ({DEFAULT_DIFF_MODEL}); build it with `make train-mutator`")
    OUT.mkdir(parents=True, exist_ok=True)

    from evolution.lm.mutator import finetune_mutator

    results: dict[str, dict] = {}
    _, results["gp"] = bench_run("gp", args, mutation="gp")
    embedded, results["diff"] = bench_run("diff", args, mutation="diff")
    tuned = OUT / "mutation" / "diff-finetuned-model"
    shutil.rmtree(tuned, ignore_errors=True)
    started = time.perf_counter()
    finetune_mutator(model=DEFAULT_DIFF_MODEL, run_dirs=[embedded.path], out=tuned, steps=args.finetune_steps, probe=0)
    finetune_s = time.perf_counter() - started
    _, results["diff-finetuned"] = bench_run("diff-finetuned", args, mutation="diff", model=str(tuned))
    for i, model in enumerate(args.model):
        _, results[f"model-{i}:{model.name}"] = bench_run(f"model-{i}", args, mutation="diff", model=str(model.resolve()))
    if args.api_url:
        _, results["api"] = bench_run("api", args, mutation="diff", api_url=args.api_url, api_model=args.api_model)

    plot(results, OUT / "mutation.png")
    (OUT / "mutation.json").write_text(json.dumps(results | {"finetune_s": finetune_s}, indent=1))
    header = f"{'operator':<24}{'valid':>8}{'struct':>8}{'child/s':>10}{'niches':>8}{'QD':>10}{'max fit':>9}{'wall s':>8}"
    log.info("Square seed, flat, %d evaluations per operator, batch %d, rng seed %d (fine-tuning took %.0f s)",
             args.evals, args.batch, args.rng_seed, finetune_s)
    log.info(header)
    for name, r in results.items():
        log.info("%-24s%8.1f%%%7.1f%%%10.1f%8d%10.1f%9.2f%8.0f", name, 100 * r["valid_rate"], 100 * r["structural_rate"],
                 r["children_per_s"], r["niches"], r["qd_score"], r["max_fitness"], r["wall_s"])
    log.info("plot: %s", OUT / "mutation.png")
    d, gp, ft = results["diff"], results["gp"], results["diff-finetuned"]
    log.info(f"RESULT llm_valid_rate={d['valid_rate']:.3f} llm_children_per_s={d['children_per_s']:.1f} "
          f"llm_vs_gp_niches={d['niches'] / gp['niches']:.2f} finetune_valid_gain={ft['valid_rate'] - d['valid_rate']:+.3f}")


if __name__ == "__main__":
    main()
