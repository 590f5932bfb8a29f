"""The embedded diff model: make its corpus, train it, fine-tune it on accepted diffs.

``make train-mutator`` runs ``python -m evolution train-mutator``, which:
1. runs GP mutation from every shipped seed (``corpus_runs``; skipped for runs already there),
2. turns every valid, changed child into a (parent, message, diff) example (``build_corpus``),
3. trains a byte-level BPE tokenizer and a small GPT-2 from scratch on the diff format,
4. writes the model folder with a model card (``write_card``).

``python -m evolution finetune-mutator --run DIR`` is the paper's second step: continue training
on the diffs MAP-Elites accepted in a run.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from evolution.lm._corpus import MutationExample, build_corpus, read_corpus, write_corpus
from evolution.lm._tokenizer import train_tokenizer
from evolution.lm._train import NO_DROPOUT, Example, ModelSize, TrainConfig, new_gpt2, train
from evolution.mutation._prompts import diff_prompt_parts
from evolution.mutation._transformers import load_causal_lm

log = logging.getLogger(__name__)

CORPUS_SEEDS: tuple[tuple[str, int], ...] = (
    ("square", 10_000),
    ("radial", 10_000),
    ("cppn_fixed", 10_000),
    ("cppn_mutable", 6_000),
    ("wheel", 5_000),
    ("galloper", 5_000),
    *((seed, 8_000) for seed in ("square", "radial", "cppn_fixed", "cppn_mutable", "wheel", "galloper")),
)
"""(seed, evaluations) of the GP runs the corpus is made from: every seed twice (a seed's second
run has its own directory, ``square-2``, and RNG seed)."""

GPU_RECIPE = {"minutes": 6.5, "batch_size": 32, "learning_rate": 2e-3}
"""The committed model's optimisation on a GPU (one H200: 9 passes over the corpus in 6.5 min);
``train-mutator`` uses it where CUDA is available. On a CPU, ``default_train_config`` (2 rows
per step) for about 95 minutes sees the corpus about once."""
CPU_MINUTES = 95.0


@dataclass(frozen=True)
class MutatorConfig:
    """How ``train_mutator`` makes the embedded diff model.

    Attributes:
        out: The model folder to write.
        work: Folder for the GP runs and the corpus (reused when present).
        seeds: (seed, evaluations) of the GP corpus runs.
        context: Unchanged lines around each change in the corpus diffs (1 keeps diffs short:
            fewer tokens to generate and fewer lines the model must copy exactly).
        vocab_size: BPE vocabulary size.
        size: The GPT-2 shape.
        train: Optimisation settings (``out`` is replaced by ``out`` above).
        holdout: Fraction of examples kept out of training (by parent) to measure the model.
        probe: Diffs sampled from held-out parents after training, for the model card (0: none).
        continue_from: A model this function made before: train it further on the same corpus
            (its tokenizer and weights; a new learning-rate warm-up and decay) instead of
            starting from random weights. Its earlier phases are kept in the training log.
        reuse_corpus: Train on the corpus already in ``work`` (``corpus-train.jsonl``,
            ``corpus-heldout.jsonl``, ``corpus.json``, written by ``prepare_corpus``) instead of
            running GP and building it: for training elsewhere (a GPU machine) on a copied corpus.
    """

    out: Path
    work: Path = Path("var/mutator")
    seeds: tuple[tuple[str, int], ...] = CORPUS_SEEDS
    context: int = 1
    vocab_size: int = 4096
    size: ModelSize = field(default_factory=ModelSize)
    train: TrainConfig = field(default_factory=lambda: default_train_config(minutes=95))
    holdout: float = 0.02
    probe: int = 128
    continue_from: Path | None = None
    reuse_corpus: bool = False


def default_train_config(*, minutes: float | None, max_steps: int = 20_000) -> TrainConfig:
    """The embedded model's optimisation: 2 packed rows of up to 1024 tokens per step, a wall-time budget.

    Small steps on purpose: with 8 rows per step (~24 examples) a 4M-parameter model had not
    learnt to copy the parent's lines after 250 steps (30 min here); the number of updates,
    not the tokens per update, is what a CPU budget is short of.

    The learning-rate schedule spans ``minutes`` (or ``max_steps``, whichever is shorter), so
    a shorter budget still ends with a decayed learning rate. bfloat16 autocast is used where
    the CPU (AVX512-BF16/AMX) or GPU supports it; elsewhere it would be slower than float32.
    """
    return TrainConfig(
        out=Path("."),
        max_steps=max_steps,
        time_limit_s=None if minutes is None else minutes * 60,
        batch_size=2,
        learning_rate=1.5e-3,
        row_length=1024,
        bf16=bf16_supported(),
        save_every=500,
        logging_steps=50,
    )


def bf16_supported() -> bool:
    """Whether bfloat16 autocast is fast here (a GPU with bf16, or a CPU with bf16 units)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def training_examples(examples: Sequence[MutationExample]) -> list[Example]:
    """Training examples in the diff format; children of one parent share its file part."""
    return [Example(*diff_prompt_parts(e.parent, e.message), e.diff) for e in examples]


def split_by_parent(examples: Sequence[MutationExample], fraction: float, *, seed: int = 0) -> tuple[list[MutationExample], list[MutationExample]]:
    """(train, held out): held-out examples have parents the training set never shows."""
    parents = sorted({e.parent for e in examples})
    random.Random(seed).shuffle(parents)
    held = set(parents[: max(1, int(len(parents) * fraction))]) if fraction > 0 else set()
    return [e for e in examples if e.parent not in held], [e for e in examples if e.parent in held]


def corpus_runs(config: MutatorConfig, *, workers: int = 2) -> list[Path]:
    """Run (or finish) the GP corpus runs; returns their directories."""
    from evolution.loop import RunConfig, RunDirectory, run

    dirs: list[Path] = []
    for seed, evals in config.seeds:
        earlier = sum(1 for d in dirs if run_seed_name(d) == seed)
        directory = RunDirectory(config.work / "runs" / (f"{seed}-{earlier + 1}" if earlier else seed))
        if not directory.config_file.exists():
            directory.create(RunConfig(seed=seed, evals=evals, batch=64, mutation="gp", rng_seed=len(dirs)))
        log.info("GP corpus run %s (%d evaluations)", seed, evals)
        run(directory, workers=workers)
        dirs.append(directory.path)
    return dirs


def prepare_corpus(
    work: Path, run_dirs: Sequence[Path], *, context: int = 1, holdout: float = 0.02
) -> tuple[list[MutationExample], list[MutationExample], dict]:
    """Build the diff corpus of ``run_dirs`` and write it to ``work``; returns what ``load_corpus``
    would read back: (training examples, held-out examples, description).

    Writes ``corpus-train.jsonl``, ``corpus-heldout.jsonl`` (whole parents held out) and
    ``corpus.json`` (the runs, context and counts).
    """
    corpus = build_corpus(run_dirs, context=context)
    train_set, held = split_by_parent(corpus, holdout)
    work = Path(work)
    write_corpus(train_set, work / "corpus-train.jsonl")
    write_corpus(held, work / "corpus-heldout.jsonl")
    info = {"runs": [str(d) for d in run_dirs], "examples": len(train_set), "heldout": len(held), "context": context}
    (work / "corpus.json").write_text(json.dumps(info, indent=1))
    log.info("corpus: %d training examples, %d held out", len(train_set), len(held))
    return train_set, held, info


def load_corpus(work: Path) -> tuple[list[MutationExample], list[MutationExample], dict]:
    """(training examples, held-out examples, description) that ``prepare_corpus`` wrote to ``work``.

    Raises:
        FileNotFoundError: If ``work`` holds no prepared corpus.
    """
    work = Path(work)
    missing = [n for n in ("corpus-train.jsonl", "corpus-heldout.jsonl", "corpus.json") if not (work / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{work} holds no prepared corpus (missing {', '.join(missing)}); run train-mutator once without "
            "--reuse-corpus to build it, or copy those files from a folder where it ran"
        )
    info = json.loads((work / "corpus.json").read_text())
    return read_corpus(work / "corpus-train.jsonl"), read_corpus(work / "corpus-heldout.jsonl"), info


def run_seed_name(run_dir: Path | str) -> str:
    """The seed of a corpus run directory: ``square`` for ``runs/square`` and ``runs/square-2``."""
    name, _, k = Path(run_dir).name.rpartition("-")
    return name if name and k.isdigit() else Path(run_dir).name


def train_mutator(config: MutatorConfig, *, run_dirs: Sequence[Path] | None = None, workers: int = 2) -> Path:
    """Make the embedded diff model from scratch; returns its folder."""
    if config.reuse_corpus:
        train_set, held, corpus_info = load_corpus(config.work)
    else:
        dirs = list(run_dirs) if run_dirs else corpus_runs(config, workers=workers)
        train_set, held, corpus_info = prepare_corpus(config.work, dirs, context=config.context, holdout=config.holdout)
    earlier: list[dict] = []
    if config.continue_from is not None:
        from transformers import AutoTokenizer

        before = json.loads((Path(config.continue_from) / "training_log.json").read_text())
        earlier = before.get("phases", []) + [{k: before[k] for k in ("steps", "epochs", "wall_s", "final_loss") if k in before}]
        tokenizer = AutoTokenizer.from_pretrained(config.continue_from, local_files_only=True)
        model = load_causal_lm(config.continue_from, **NO_DROPOUT)
        log.info("continuing %s (%d earlier phase(s), %d steps)", config.continue_from, len(earlier), sum(p.get("steps", 0) for p in earlier))
    else:
        tokenizer = train_tokenizer([e.parent for e in train_set[::4]] + [e.diff for e in train_set], vocab_size=config.vocab_size)
        model = new_gpt2(tokenizer, config.size, seed=config.train.seed)
    out = train(_with_out(config.train, config.out), model, tokenizer, training_examples(train_set))
    _merge_log(out, {"corpus": corpus_info})
    if earlier:
        _merge_log(out, {"phases": earlier})
    if config.probe:
        _merge_log(out, {"probe": probe_mutator(out, held, n=config.probe)})
    write_card(out)
    return out


def finetune_mutator(
    *, model: Path, run_dirs: Sequence[Path], out: Path, steps: int | None = None,
    train_config: TrainConfig | None = None, probe: int = 64,
) -> Path:
    """The paper's step: continue training ``model`` on the diffs MAP-Elites accepted in runs.

    Args:
        steps: Optimizer steps (default: about two passes over the accepted diffs), at a
            fine-tuning learning rate (2e-4) with a short warm-up.
        train_config: Every optimisation setting instead (``steps`` is then ignored).

    Raises:
        ValueError: If the runs hold no accepted child that differs from its parent.
    """
    from transformers import AutoTokenizer

    examples = build_corpus(run_dirs, accepted_only=True)
    if not examples:
        raise ValueError(f"no accepted children in {', '.join(map(str, run_dirs))}; run longer or check the runs' genomes.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    lm = load_causal_lm(model)
    # default: about two passes over the accepted diffs (rows hold one parent's children, mostly one)
    steps = steps or max(20, len(examples) // 4)
    base = train_config or replace(
        default_train_config(minutes=None, max_steps=steps), learning_rate=2e-4, warmup_steps=min(10, steps), save_every=None
    )
    result = train(_with_out(base, out), lm, tokenizer, training_examples(examples))
    _merge_log(result, {"finetuned_from": str(model), "accepted_examples": len(examples), "runs": [str(d) for d in run_dirs]})
    if probe:
        _merge_log(result, {"probe": probe_mutator(result, examples, n=probe)})
    write_card(result)
    return result


def probe_mutator(model: Path, examples: Sequence[MutationExample], *, n: int = 128, batch: int = 64, seed: int = 0) -> dict[str, float]:
    """Sample ``n`` diffs from ``model`` for the parents of ``examples`` (cycled) and count what they give.

    Each child goes through the paper's diff operator (tolerant applier) and then the sandbox,
    as in a run (without the simulation), after the parent's run preamble where it had one.

    Returns:
        ``children``, ``applied_rate`` (a diff that applied and changed the program),
        ``valid_rate`` (a valid walker that differs from its parent), ``children_per_s``
        (generation and applying only), and ``failures`` (count per kind).
    """
    import time

    import numpy as np

    from evolution.mutation import DiffMutation, TransformersBackend
    from evolution.sandbox import ProgramFailure, evaluate_program
    from evolution.types import Candidate

    parents = sorted({(e.parent, e.preamble) for e in examples})
    if not parents:
        raise ValueError("probe_mutator needs at least one parent program")
    operator = DiffMutation(TransformersBackend(model))
    rng = np.random.default_rng(seed)
    chosen = [parents[i % len(parents)] for i in range(n)]
    children, spent = [], 0.0
    for start in range(0, n, batch):
        started = time.perf_counter()
        children += operator.mutate([text for text, _ in chosen[start : start + batch]], rng=rng)
        spent += time.perf_counter() - started
    failures: dict[str, int] = {}
    valid = 0
    for child, (_, preamble) in zip(children, chosen):
        kind = child.failure
        if kind is None:
            result = evaluate_program(Candidate(0, 0, child.text, preamble).program)
            kind = result.kind if isinstance(result, ProgramFailure) else None
        if kind is None:
            valid += 1
        else:
            failures[kind] = failures.get(kind, 0) + 1
    applied = sum(c.failure is None for c in children)
    return {
        "children": len(children),
        "applied_rate": applied / len(children),
        "valid_rate": valid / len(children),
        "children_per_s": len(children) / spent if spent > 0 else 0.0,
        "batch": batch,
        "failures": failures,
    }


def write_card(folder: Path) -> Path:
    """Write ``README.md``, the model card, from the folder's ``training_log.json``."""
    folder = Path(folder)
    record = json.loads((folder / "training_log.json").read_text())
    config = record.get("config", {})
    corpus = record.get("corpus", {})
    probe = record.get("probe", {})
    lines = [
        f"# {folder.name}: a diff model for Sodarace programs",
        "",
        "A small GPT-2 that writes a unified diff of a Sodarace walker program, prompted in the "
        "ELM paper's format (`<NME> walker.py` / `<BEF> program` / `<MSG> commit message` / `<DFF> `). "
        "It is elmweb's embedded mutation operator: `python -m evolution run --mutation diff`.",
        "",
        "## How it was made",
    ]
    if "finetuned_from" in record:
        lines += [
            f"- Fine-tuned from `{record['finetuned_from']}` on {record['accepted_examples']} diffs that MAP-Elites "
            f"accepted (new cell or improved elite) in: {', '.join(f'`{r}`' for r in record.get('runs', []))}.",
        ]
    else:
        lines += [
            f"- Data: {corpus.get('examples', '?')} (parent, message, diff) examples from genetic-programming runs "
            f"of the seeds {', '.join(dict.fromkeys(run_seed_name(r) for r in corpus.get('runs', [])))}; valid, changed children "
            f"only, deduplicated, diffs with {corpus.get('context', '?')} line(s) of context; "
            f"{corpus.get('heldout', '?')} examples (whole parents) held out.",
            "- Tokenizer: byte-level BPE trained on the corpus (Hugging Face `tokenizers`).",
        ]
    for i, phase in enumerate(record.get("phases", []), 1):
        lines.append(f"- Training phase {i}: {phase.get('steps', '?')} steps ({phase.get('epochs', 0):.2f} epochs), "
                     f"{phase.get('wall_s', 0) / 60:.0f} min, final loss {phase.get('final_loss', float('nan')):.3f}; "
                     "the next phase continued from it with a new warm-up and decay.")
    lines += [
        f"- Model: GPT-2, {record.get('parameters', 0) / 1e6:.1f}M parameters.",
        f"- Training: {record.get('steps', '?')} steps of {config.get('batch_size', '?')} packed rows of up to "
        f"{config.get('row_length', '?')} tokens ({record.get('epochs', 0):.2f} epochs of "
        f"{record.get('tokens_per_epoch', 0) / 1e6:.1f}M tokens), peak learning rate {config.get('learning_rate', '?')}, "
        f"{record.get('wall_s', 0) / 60:.0f} min wall time{' on ' + record['device'] if record.get('device') else ''}; final loss on diff tokens {record.get('final_loss', float('nan')):.3f} "
        "(curve: `loss.png`).",
    ]
    if probe:
        lines += [
            "",
            "## Measured",
            f"On {probe['children']} sampled diffs (temperature 1.0, top-p 0.95) of "
            f"{'held-out' if 'finetuned_from' not in record else 'accepted'} parents: "
            f"{probe['applied_rate']:.0%} applied and changed the program, {probe['valid_rate']:.0%} gave a valid walker; "
            f"{probe['children_per_s']:.1f} children/s in batches of {probe.get('batch', 32)} "
            f"(failures: {', '.join(f'{k} {v}' for k, v in sorted(probe['failures'].items())) or 'none'}).",
        ]
    if record.get("note"):
        lines += ["", record["note"]]
    lines += [
        "",
        "## Reproduce",
        "`make train-mutator` (GP corpus runs, tokenizer, training: 6.5 min on a GPU with batches of 32 rows, "
        "or 95 min on 2 CPU cores, which see the corpus about once), or "
        "`python -m evolution finetune-mutator --run RUN_DIR --out FOLDER` for the fine-tuned kind.",
        "",
    ]
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path


def _with_out(config: TrainConfig, out: Path) -> TrainConfig:
    return replace(config, out=Path(out))


def _merge_log(folder: Path, extra: dict) -> None:
    path = Path(folder) / "training_log.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(record | extra, indent=1))


__all__ = [
    "CORPUS_SEEDS",
    "CPU_MINUTES",
    "GPU_RECIPE",
    "MutatorConfig",
    "bf16_supported",
    "corpus_runs",
    "default_train_config",
    "finetune_mutator",
    "load_corpus",
    "prepare_corpus",
    "probe_mutator",
    "read_corpus",
    "split_by_parent",
    "train_mutator",
    "write_card",
]
