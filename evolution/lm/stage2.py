"""Stage 2: a model trained on what evolution found writes good, diverse walkers on its own.

The training text of a program is ``TERRAIN_SLOTS`` end-of-text tokens (the places stage 3's
terrain prefix fills), the diff format's file slot, ``<NME> walker.py\\n<BEF> ``, then the
program (then end of text); ``stage2_prompt`` builds it, for training, sampling and stage 3
alike. The embedded diff model has read thousands of programs in that file slot, so starting
from it (``init="pretrained"``) is the paper's "pretrained" arm; ``init="scratch"`` is a
randomly initialised GPT-2 with the same tokenizer.

Evaluation, as the paper does it: sample N programs with that prompt, evaluate each through
the sandbox and the simulator, place them in a fresh archive, and report valid rate, niches
filled and QD score (``evaluate_model``), next to the untrained model's samples.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evolution.lm._train import Example, ModelSize, TrainConfig, new_gpt2, train
from evolution.lm.dataset import ProgramRecord, read_dataset
from evolution.mutation._prompts import DIFF_TAGS, FILENAME
from evolution.mutation._transformers import load_causal_lm

log = logging.getLogger(__name__)

PROMPT = f"<NME> {FILENAME}\n<BEF> "
"""What a stage-2 model is given after its terrain slots; it writes a whole program after it."""
TERRAIN_SLOTS = 4
"""End-of-text tokens a stage-2 model reads before ``PROMPT``, in training and in sampling.

Stage 3 prepends k terrain vectors to the prompt; a model that never saw anything before the
prompt reads them as noise (a 4M-parameter stage-2 model trained without slots fell from
-0.46 to -4.2 nats per token on its own samples, and wrote no valid program). Trained with k
end-of-text tokens there, the model treats them as a document boundary, and a stage-3 prefix
that starts as k copies of the end-of-text embedding reproduces the stage-2 model exactly;
the default ``Stage3Config.prefix_tokens`` is this number. Models record it in
``training_log.json`` (``stage2.terrain_slots``; ``trained_slots`` reads it back)."""
STOP = DIFF_TAGS
"""Generation stops at the next diff-format tag (or end of text)."""
INITS = ("pretrained", "scratch")


@dataclass(frozen=True)
class Stage2Config:
    """One stage-2 training job.

    Attributes:
        out: Model folder to write.
        dataset: A dataset file from ``python -m evolution dataset`` (its ``train`` split is used).
        base: Model folder whose tokenizer (and, for ``pretrained``, weights) are used.
        init: ``"pretrained"`` (continue from ``base``) or ``"scratch"`` (random weights of ``size``).
        size: GPT-2 shape for ``scratch``.
        train: Optimisation settings (``out`` is replaced by ``out`` above).
    """

    out: Path
    dataset: Path
    base: Path
    init: str = "pretrained"
    size: ModelSize = field(default_factory=ModelSize)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out=Path("."), max_steps=2000, time_limit_s=10 * 60, batch_size=8, row_length=1024,
        learning_rate=5e-4, warmup_steps=20, logging_steps=10))


def stage2_prompt_ids(tokenizer: Any, slots: int = TERRAIN_SLOTS) -> list[int]:
    """The token ids a stage-2 model reads before a program: ``slots`` end-of-text ids, then ``PROMPT``'s."""
    return [tokenizer.eos_token_id] * slots + tokenizer(PROMPT, add_special_tokens=False)["input_ids"]


def stage2_prompt(tokenizer: Any, slots: int = TERRAIN_SLOTS) -> str:
    """The text of ``stage2_prompt_ids``: ``tokenizer.eos_token`` ``slots`` times, then ``PROMPT``.

    Training and sampling take prompts as text; this checks that the text tokenizes to exactly
    those ids (the end-of-text text to the single end-of-text id), as it does for this project's
    BPE tokenizer and for GPT-2's.

    Raises:
        ValueError: If the tokenizer has no end-of-text token or splits its text.
    """
    if tokenizer.eos_token is None or tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-text token; stage 2 needs one (set tokenizer.eos_token and save it "
                         "with the model)")
    text = tokenizer.eos_token * slots + PROMPT
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if ids != stage2_prompt_ids(tokenizer, slots):
        raise ValueError(f"the tokenizer reads {tokenizer.eos_token!r} * {slots} + PROMPT as {ids}, not as {slots} "
                         f"end-of-text ids ({tokenizer.eos_token_id}) then the prompt's; register the end-of-text "
                         "token as a special token of the tokenizer")
    return text


def trained_slots(model: Path) -> int:
    """The terrain slots the stage-2 model in folder ``model`` was trained with (``TERRAIN_SLOTS``
    since they were added); 0 for other models (an embedded diff model, a stage-2 model trained
    before the slots): they read the bare ``PROMPT``."""
    record = Path(model) / "training_log.json"
    if not record.is_file():
        return 0
    return int(json.loads(record.read_text()).get("stage2", {}).get("terrain_slots", 0))


def examples(records: Sequence[ProgramRecord], tokenizer: Any) -> list[Example]:
    """Training examples: every program after the shared prompt (``stage2_prompt``)."""
    prompt = stage2_prompt(tokenizer)
    return [Example("", prompt, r.text.rstrip("\n") + "\n") for r in records]


def train_stage2(config: Stage2Config, *, callbacks: Sequence[Any] = ()) -> Path:
    """Train a stage-2 model on the dataset's train split; returns its folder.

    ``callbacks``: ``transformers.TrainerCallback``s, passed to the trainer (progress, stopping).

    Raises:
        ValueError: For an unknown ``init`` or a dataset without training programs.
        FileNotFoundError: If the dataset or base model is missing.
    """
    from transformers import AutoTokenizer

    if config.init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {config.init!r}")
    if not (Path(config.base) / "config.json").is_file():
        raise FileNotFoundError(f"{config.base} is not a model folder (no config.json); build the embedded model with "
                                "`make train-mutator` or pass another base")
    records = read_dataset(config.dataset)
    train_set = [r for r in records if r.split == "train"]
    if not train_set:
        raise ValueError(f"{config.dataset} has no training programs; export more runs or lower --threshold")
    tokenizer = AutoTokenizer.from_pretrained(config.base, local_files_only=True)
    if config.init == "pretrained":
        model = load_causal_lm(config.base)
    else:
        model = new_gpt2(tokenizer, config.size, seed=config.train.seed)
    out = train(replace(config.train, out=Path(config.out)), model, tokenizer, examples(train_set, tokenizer),
                callbacks=callbacks)
    record_path = out / "training_log.json"
    record = json.loads(record_path.read_text())
    record["stage2"] = {"dataset": str(config.dataset), "base": str(config.base), "init": config.init,
                        "programs": len(train_set), "heldout": len(records) - len(train_set),
                        "terrain_slots": TERRAIN_SLOTS}
    record_path.write_text(json.dumps(record, indent=1))
    return out


def sample_programs(
    model: Path, n: int, *, batch: int = 32, temperature: float = 1.0, top_p: float = 0.95,
    max_new_tokens: int = 900, seed: int = 0, on_batch: Callable[[int], None] | None = None,
) -> tuple[list[str], float]:
    """``n`` programs sampled from ``model`` after the prompt it was trained with (``stage2_prompt``
    with its ``trained_slots``); and the seconds it took."""
    from evolution.mutation import TransformersBackend

    backend = TransformersBackend(model)
    prompt = stage2_prompt(backend.tokenizer, trained_slots(model))
    texts: list[str] = []
    started = time.perf_counter()
    for start in range(0, n, batch):
        k = min(batch, n - start)
        texts += backend.generate([prompt] * k, max_new_tokens=max_new_tokens, temperature=temperature,
                                  top_p=top_p, stop=STOP, seed=seed + start)
        if on_batch is not None:
            on_batch(len(texts))
    return texts, time.perf_counter() - started


def place(texts: Sequence[str], *, workers: int = 2, terrain: str = "flat", sim_seconds: float | None = None) -> dict[str, Any]:
    """Evaluate programs and place them in a fresh default archive.

    Returns:
        ``samples``, ``valid``, ``valid_rate``, ``distinct`` (different texts), ``niches``,
        ``coverage``, ``qd_score``, ``max_fitness``, ``failures`` (per kind), ``archive``
        (``GridArchive.to_dict()``).
    """
    from evolution.evaluate import EvalConfig, Evaluator
    from evolution.qd import GridArchive
    from evolution.sodarace import DEFAULT_BINS, DEFAULT_RANGES, DEFAULT_SETTINGS, DESCRIPTOR_NAMES
    from evolution.types import Candidate

    settings = DEFAULT_SETTINGS if sim_seconds is None else DEFAULT_SETTINGS.with_(sim_seconds=sim_seconds)
    candidates = [Candidate(i, 1, t if t.strip() else None, failure=None if t.strip() else "no_change",
                            failure_message="" if t.strip() else "the model wrote nothing")
                  for i, t in enumerate(texts)]
    with Evaluator(EvalConfig(terrain=terrain, settings=settings), workers=workers) as evaluator:
        results = evaluator.evaluate(candidates)
    archive = GridArchive(dims=DEFAULT_BINS, ranges=DEFAULT_RANGES, names=DESCRIPTOR_NAMES)
    failures: dict[str, int] = {}
    for cand, res in zip(candidates, results):
        archive.add(cand.id, res.fitness, res.descriptor, cand.text)
        if not res.valid:
            failures[res.failure] = failures.get(res.failure, 0) + 1
    valid = sum(r.valid for r in results)
    return {
        "samples": len(texts),
        "valid": valid,
        "valid_rate": valid / len(texts) if texts else 0.0,
        "distinct": len({t.strip() for t in texts if t.strip()}),
        "niches": len(archive),
        "coverage": archive.coverage,
        "qd_score": archive.qd_score,
        "max_fitness": archive.max_fitness if len(archive) else 0.0,
        "failures": failures,
        "archive": archive.to_dict(),
    }


def evaluate_model(model: Path, n: int = 1024, *, batch: int = 32, seed: int = 0, workers: int = 2,
                   on_batch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The paper's stage-2 evaluation of ``model``: ``place`` its ``n`` samples."""
    texts, seconds = sample_programs(model, n, batch=batch, seed=seed, on_batch=on_batch)
    return place(texts, workers=workers) | {"model": str(model), "sample_s": seconds}


def run_archive_summary(run_dir: Path) -> dict[str, Any]:
    """Niches, QD score and max fitness of a finished run's archive (what stage 2 learned from)."""
    metrics = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    last = metrics[-1]
    return {"run": str(run_dir), "evaluations": last["evaluations"], "niches": last["niches_filled"],
            "coverage": last["coverage"], "qd_score": last["qd_score"], "max_fitness": last["max_fitness"]}


__all__ = ["INITS", "PROMPT", "STOP", "TERRAIN_SLOTS", "Stage2Config", "evaluate_model", "examples", "place",
           "run_archive_summary", "sample_programs", "stage2_prompt", "stage2_prompt_ids", "train_stage2", "trained_slots"]
