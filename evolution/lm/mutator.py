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
from dataclasses import dataclass, field
from pathlib import Path

from evolution.lm._corpus import MutationExample, build_corpus, read_corpus, write_corpus
from evolution.lm._tokenizer import train_tokenizer
from evolution.lm._train import Example, ModelSize, TrainConfig, new_gpt2, train
from evolution.mutation._prompts import diff_prompt_parts

log = logging.getLogger(__name__)

CORPUS_SEEDS: tuple[tuple[str, int], ...] = (
    ("square", 10_000),
    ("radial", 10_000),
    ("cppn_fixed", 10_000),
    ("cppn_mutable", 6_000),
    ("wheel", 5_000),
    ("galloper", 5_000),
)
"""(seed, evaluations) of the GP runs the corpus is made from."""


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
    """

    out: Path
    work: Path = Path("var/mutator")
    seeds: tuple[tuple[str, int], ...] = CORPUS_SEEDS
    context: int = 1
    vocab_size: int = 4096
    size: ModelSize = field(default_factory=ModelSize)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out=Path("."), max_steps=6000, batch_size=16, time_limit_s=95 * 60))
    holdout: float = 0.02


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

    dirs = []
    for seed, evals in config.seeds:
        directory = RunDirectory(config.work / "runs" / seed)
        if not directory.config_file.exists():
            directory.create(RunConfig(seed=seed, evals=evals, batch=64, mutation="gp", rng_seed=len(dirs)))
        log.info("GP corpus run %s (%d evaluations)", seed, evals)
        run(directory, workers=workers)
        dirs.append(directory.path)
    return dirs


def train_mutator(config: MutatorConfig, *, run_dirs: Sequence[Path] | None = None, workers: int = 2) -> Path:
    """Make the embedded diff model from scratch; returns its folder."""
    dirs = list(run_dirs) if run_dirs else corpus_runs(config, workers=workers)
    corpus = build_corpus(dirs, context=config.context)
    train_set, held = split_by_parent(corpus, config.holdout)
    write_corpus(train_set, config.work / "corpus-train.jsonl")
    write_corpus(held, config.work / "corpus-heldout.jsonl")
    log.info("corpus: %d training examples, %d held out", len(train_set), len(held))
    tokenizer = train_tokenizer([e.parent for e in train_set[::4]] + [e.diff for e in train_set], vocab_size=config.vocab_size)
    model = new_gpt2(tokenizer, config.size, seed=config.train.seed)
    out = train(_with_out(config.train, config.out), model, tokenizer, training_examples(train_set))
    _merge_log(out, {"corpus": {"runs": [str(d) for d in dirs], "examples": len(train_set), "heldout": len(held), "context": config.context}})
    return out


def finetune_mutator(*, model: Path, run_dirs: Sequence[Path], out: Path, train_config: TrainConfig | None = None) -> Path:
    """The paper's step: continue training ``model`` on the diffs MAP-Elites accepted in runs.

    Raises:
        ValueError: If the runs hold no accepted child that differs from its parent.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    examples = build_corpus(run_dirs, accepted_only=True)
    if not examples:
        raise ValueError(f"no accepted children in {', '.join(map(str, run_dirs))}; run longer or check the runs' genomes.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(model, local_files_only=True)
    base = train_config or TrainConfig(out=out, max_steps=max(20, 2 * len(examples) // 16), learning_rate=2e-4, warmup_steps=10)
    result = train(_with_out(base, out), lm, tokenizer, training_examples(examples))
    _merge_log(result, {"finetuned_from": str(model), "accepted_examples": len(examples), "runs": [str(d) for d in run_dirs]})
    return result


def _with_out(config: TrainConfig, out: Path) -> TrainConfig:
    from dataclasses import replace

    return replace(config, out=Path(out))


def _merge_log(folder: Path, extra: dict) -> None:
    path = Path(folder) / "training_log.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(record | extra, indent=1))


__all__ = ["CORPUS_SEEDS", "MutatorConfig", "corpus_runs", "finetune_mutator", "read_corpus", "split_by_parent", "train_mutator"]
