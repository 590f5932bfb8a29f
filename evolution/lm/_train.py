"""Train a causal LM on prompt -> completion pairs with ``transformers.Trainer``.

Used for the embedded diff model (prompt = the diff format up to ``<DFF> ``, completion = the
diff), its fine-tuning on accepted diffs, and stage 2. The loss counts completion tokens only.
Prompt and completion are tokenized separately and concatenated, so training sees exactly the
token boundary that generation sees after a prompt.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

log = logging.getLogger(__name__)

IGNORE = -100
NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
"""GPT-2 without dropout: on a CPU budget our models see their corpus about once, where dropout
only slows learning (as in nanoGPT's pretraining defaults); and on CPU, attention dropout with a
mask made one SDPA forward+backward 3.6x slower (B=2, 8 heads, T=1024, torch 2.13, 1 thread)."""


@dataclass(frozen=True)
class ModelSize:
    """A GPT-2 shape for models trained from scratch."""

    n_layer: int = 4  # transformer blocks
    n_embd: int = 256  # width
    n_head: int = 8  # attention heads (head size n_embd / n_head)
    n_positions: int = 1024  # longest prompt + completion in tokens


@dataclass(frozen=True)
class TrainConfig:
    """One training job.

    Attributes:
        out: Folder the model is saved to (an ordinary Hugging Face model folder).
        max_steps: Optimizer steps (the learning-rate schedule spans them).
        time_limit_s: Stop early (and save) after this many seconds; ``None``: no limit.
        learning_rate: Peak learning rate (linear warm-up, then cosine decay to 10% over
            max_steps or time_limit_s, whichever runs out first).
        warmup_steps: Linear warm-up steps.
        weight_decay: AdamW weight decay.
        max_length: Examples longer than this many tokens are dropped (logged).
        row_length: Longest packed row of examples sharing a prefix (``PackedDataset``).
        batch_size: Packed rows per step.
        threads: torch CPU threads (``None``: torch's default).
        seed: Shuffling and initialisation seed.
        logging_steps: Loss is logged (and recorded in ``training_log.json``) every this many steps.
        save_every: Keep a checkpoint every this many steps in ``out/_trainer`` (the latest
            only, removed once the model is saved), to look at a long run while it trains;
            ``None``: none.
        bf16: bfloat16 autocast (weights stay float32); ~25% faster on CPUs with AVX512-BF16.
    """

    out: Path
    max_steps: int = 2000
    time_limit_s: float | None = None
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    max_length: int = 1024
    row_length: int = 1024
    threads: int | None = None
    seed: int = 0
    logging_steps: int = 25
    bf16: bool = False
    save_every: int | None = None


@dataclass(frozen=True, slots=True)
class Example:
    """One training example: ``prefix + prompt`` is what the model is given, ``completion``
    what it learns to write (then eos).

    Examples with the same ``prefix`` are packed into one row that holds the prefix once
    (see ``PackedDataset``); ``prefix`` may be ``""``.
    """

    prefix: str
    prompt: str
    completion: str


class PackedDataset(torch.utils.data.Dataset):
    """Rows of ``prefix, segment_1, segment_2, ...`` for examples that share a prefix.

    A segment is one example's prompt + completion + eos. Each segment sees the prefix and
    itself, never another segment (``SegmentCollator`` builds that attention mask), and its
    positions restart right after the prefix, so every segment is computed exactly as if it
    were alone after the prefix, which is what generation sees. The diff corpus has ~5
    children per parent program and the parent is ~85% of an example's tokens, so packing
    cuts training compute about threefold. Loss counts completion tokens only. Prefix, prompt
    and completion are tokenized separately, so training sees the token boundary that
    generation sees after a prompt.

    Args:
        tokenizer: Its ``eos_token_id`` ends every completion.
        examples: The examples.
        max_length: Longest prefix + one segment in tokens (the model's positions);
            longer examples are dropped (logged).
        row_length: Longest packed row in tokens.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], *, max_length: int, row_length: int) -> None:
        def ids(texts: list[str]) -> list[list[int]]:
            return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

        prefixes = sorted({e.prefix for e in examples})
        prefix_ids = dict(zip(prefixes, ids(prefixes)))
        prompts = ids([e.prompt for e in examples])
        completions = ids([e.completion for e in examples])
        groups: dict[str, list[tuple[list[int], list[int]]]] = {}
        dropped = 0
        for e, p, c in zip(examples, prompts, completions):
            segment = p + c + [tokenizer.eos_token_id]
            if len(prefix_ids[e.prefix]) + len(segment) > max_length:
                dropped += 1
                continue
            groups.setdefault(e.prefix, []).append((segment, [IGNORE] * len(p) + segment[len(p):]))
        if dropped:
            log.warning("dropped %d of %d examples longer than %d tokens", dropped, len(examples), max_length)
        if not groups:
            raise ValueError(f"no example fits in max_length={max_length} tokens; raise max_length or shorten the data")
        self.rows: list[tuple[list[int], list[list[int]], list[list[int]]]] = []
        for prefix, segments in groups.items():
            head = prefix_ids[prefix]
            row: tuple[list[int], list[list[int]], list[list[int]]] = (head, [], [])
            used = len(head)
            for segment, labels in segments:
                if row[1] and used + len(segment) > row_length:
                    self.rows.append(row)
                    row, used = (head, [], []), len(head)
                row[1].append(segment)
                row[2].append(labels)
                used += len(segment)
            self.rows.append(row)
        self.examples = sum(len(segs) for _, segs, _ in self.rows)
        self.lengths = [len(head) + sum(map(len, segs)) for head, segs, _ in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list]:
        head, segments, labels = self.rows[i]
        return {"input_ids": head + [t for s in segments for t in s], "prefix": len(head),
                "segments": [len(s) for s in segments], "labels": [IGNORE] * len(head) + [t for l in labels for t in l]}

    def tokens(self) -> int:
        return sum(self.lengths)


class SegmentCollator:
    """Right-pads packed rows and builds their position ids and block attention mask.

    Returns ``attention_mask`` as ``(B, 1, T, T)`` booleans (True = may attend), which
    transformers passes to SDPA as it is: a token attends causally within the prefix or
    within its own segment, and a segment token also sees the whole prefix. Padding attends
    only to itself (a fully masked row would make SDPA return NaN) and has no loss.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        n = len(batch)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)  # (B, T)
        labels = torch.full((n, width), IGNORE, dtype=torch.long)  # (B, T)
        positions = torch.zeros((n, width), dtype=torch.long)  # (B, T)
        segment = torch.full((n, width), -1, dtype=torch.long)  # (B, T): -2 prefix, k segment, -1 pad
        for row, b in enumerate(batch):
            length, head = len(b["input_ids"]), b["prefix"]
            ids[row, :length] = torch.tensor(b["input_ids"])
            labels[row, :length] = torch.tensor(b["labels"])
            positions[row, :head] = torch.arange(head)
            segment[row, :head] = -2
            start = head
            for k, size in enumerate(b["segments"]):
                positions[row, start : start + size] = torch.arange(head, head + size)
                segment[row, start : start + size] = k
                start += size
        causal = torch.ones((width, width), dtype=torch.bool).tril()  # (T, T)
        query, key = segment[:, :, None], segment[:, None, :]  # (B, T, 1), (B, 1, T)
        same = (query == key) & (query != -1)
        sees_prefix = (key == -2) & (query >= 0)
        mask = (same | sees_prefix) & causal
        mask |= torch.eye(width, dtype=torch.bool)  # padding attends to itself
        return {"input_ids": ids, "labels": labels, "position_ids": positions, "attention_mask": mask[:, None]}


class _Clock:
    """Training progress in [0, 1]: the larger of steps done and time spent, over their budgets."""

    def __init__(self, max_steps: int, seconds: float | None) -> None:
        self.max_steps = max_steps
        self.seconds = seconds
        self.started = time.monotonic()

    def progress(self, step: int) -> float:
        by_steps = step / self.max_steps
        by_time = (time.monotonic() - self.started) / self.seconds if self.seconds else 0.0
        return min(1.0, max(by_steps, by_time))


class _TimeLimit(TrainerCallback):
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003 (Trainer's callback signature)
        self.clock.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003 (Trainer's callback signature)
        if self.clock.progress(state.global_step) >= 1.0 and state.global_step < state.max_steps:
            log.warning("time limit of %.0f s reached at step %d; saving", self.clock.seconds, state.global_step)
            control.should_training_stop = True
        return control


class _Trainer(Trainer):
    """``Trainer`` whose cosine schedule follows wall time when a time limit is set.

    A fixed step count cannot promise "done in N minutes" on a shared CPU; with a time limit the
    learning rate decays with max(steps done / max_steps, time spent / time limit), so a run cut
    by the clock still ends at the low learning rate. Trainer's schedulers are step-based only,
    hence this small override.
    """

    def __init__(self, *args: Any, clock: _Clock, warmup_steps: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.warmup = warmup_steps

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):  # noqa: ANN201
        if self.lr_scheduler is None:
            clock, warmup = self.clock, self.warmup

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                return 0.1 + 0.45 * (1.0 + math.cos(math.pi * clock.progress(step)))

            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, factor)
            self._created_lr_scheduler = True
        return self.lr_scheduler


def new_gpt2(tokenizer: PreTrainedTokenizerBase, size: ModelSize, *, seed: int = 0) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 of ``size`` for ``tokenizer``'s vocabulary."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=size.n_positions,
        n_embd=size.n_embd,
        n_layer=size.n_layer,
        n_head=size.n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        activation_function="gelu_pytorch_tanh",  # GPT-2's GELU, fused (see load_causal_lm)
        **NO_DROPOUT,
    )
    return GPT2LMHeadModel(config)


def train(
    config: TrainConfig,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    callbacks: Sequence[TrainerCallback] = (),
) -> Path:
    """Train ``model`` on ``examples`` and save it, with ``tokenizer``, to ``config.out``.

    ``callbacks`` are ``transformers.TrainerCallback``s (e.g. to report the loss elsewhere, or
    to stop early by setting ``control.should_training_stop``; the model is saved either way).

    Returns:
        ``config.out``, holding the model, the tokenizer, ``training_log.json`` (config, loss
        per logged step, tokens, wall time) and ``loss.png``.

    Raises:
        ValueError: If no example fits in ``config.max_length``.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    dataset = PackedDataset(tokenizer, examples, max_length=config.max_length, row_length=config.row_length)
    log.info(
        "training %.1fM parameters on %d examples in %d rows (%.1fM tokens) for %d steps of %d rows",
        model.num_parameters() / 1e6, dataset.examples, len(dataset), dataset.tokens() / 1e6, config.max_steps, config.batch_size,
    )
    out = Path(config.out)
    args = TrainingArguments(
        output_dir=str(out / "_trainer"),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_every else "no",
        save_steps=config.save_every or 500,
        save_total_limit=1,
        report_to="none",
        seed=config.seed,
        train_sampling_strategy="group_by_length",
        # on a GPU, building the (B, 1, T, T) block masks in the main process would starve it
        dataloader_num_workers=4 if torch.cuda.is_available() else 0,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        bf16=config.bf16,
    )
    clock = _Clock(config.max_steps, config.time_limit_s)
    trainer = _Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        # padding never counts (no loss, masked), so any id will do where a model has no pad token
        data_collator=SegmentCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0),
        callbacks=[_TimeLimit(clock), *callbacks],
        clock=clock,
        warmup_steps=config.warmup_steps,
    )
    started = time.monotonic()
    trainer.train()
    wall = time.monotonic() - started
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / "_trainer", ignore_errors=True)  # checkpoints with optimizer state, for peeking only
    history = [h for h in trainer.state.log_history if "loss" in h]
    record = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "parameters": model.num_parameters(),
        "examples": dataset.examples,
        "rows": len(dataset),
        "tokens_per_epoch": dataset.tokens(),
        "steps": trainer.state.global_step,
        "epochs": trainer.state.global_step * config.batch_size / len(dataset),
        "wall_s": wall,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "final_loss": history[-1]["loss"] if history else math.nan,
        "loss": [{"step": h["step"], "loss": h["loss"]} for h in history],
    }
    (out / "training_log.json").write_text(json.dumps(record, indent=1))
    plot_loss(record["loss"], out / "loss.png")
    return out


def plot_loss(points: Sequence[dict[str, float]], path: Path) -> None:
    """Draw the training loss over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p["step"] for p in points], [p["loss"] for p in points])
    ax.set_xlabel("step")
    ax.set_ylabel("loss (completion tokens)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
