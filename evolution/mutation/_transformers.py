"""``TransformersBackend``: a Hugging Face causal LM from a local folder, batched sampling."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolution.mutation._backends import MODES, Message, chat_prompt, check_sampling, cut_at_stop

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model and its tokenizer, loaded once per process (see ``load_model``)."""

    model: Any
    tokenizer: Any
    device: str
    lock: threading.Lock  # generation holds it: the global torch seed is part of the call


# GPT-2's and CodeGen's "gelu_new" is GELU's tanh approximation written out in Python (five
# elementwise kernels over the MLP's activations); torch's fused gelu(approximate="tanh") computes
# the same function (the embedded model's logits agree to 2e-5) and made sampling 64 diffs ~14%
# faster on 2 CPU cores. Loading swaps it in; the weights are untouched.
FUSED_ACTIVATIONS = {"gelu_new": "gelu_pytorch_tanh"}


def load_causal_lm(folder: str | Path, **kwargs: Any) -> Any:
    """``AutoModelForCausalLM.from_pretrained`` from a local folder, with fused activations.

    Every place that loads a causal LM from disk goes through here (sampling, fine-tuning,
    stage 2 and 3), so all of them get the same model.

    Args:
        folder: A Hugging Face model folder.
        kwargs: More ``from_pretrained`` arguments (``dtype``, config overrides).
    """
    from transformers import AutoModelForCausalLM

    config = json.loads((Path(folder) / "config.json").read_text())
    fused = FUSED_ACTIVATIONS.get(config.get("activation_function"))
    if fused is not None:
        kwargs.setdefault("activation_function", fused)
    return AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **kwargs)


_CACHE: dict[tuple[str, str, str], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


#: Files a loadable model folder has: one of each group (weights may be sharded; tokenizers come
#: as a fast tokenizer.json, GPT-2 style vocab.json, SentencePiece's tokenizer.model or vocab.txt).
MODEL_FILES = {
    "weights": ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"),
    "tokenizer": ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt"),
}


def check_model_folder(path: str | Path) -> Path:
    """The resolved folder ``path`` if it holds a model ``load_model`` can load; nothing is loaded.

    Only files are looked at (transformers' own checks need the library imported, which a web
    process checking a form should not pay for): a ``config.json`` that parses, weights and a
    tokenizer.

    Raises:
        FileNotFoundError: Saying what is missing and how to get a model folder.
    """
    folder = Path(path).expanduser().resolve()
    how = (
        "pass a Hugging Face model folder on disk (save one with save_pretrained), or build the "
        "embedded diff model with `make train-mutator`"
    )
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"no model folder at {folder} (it needs config.json, weights and tokenizer files); {how}"
        )
    try:
        json.loads((folder / "config.json").read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileNotFoundError(f"{folder / 'config.json'} is not valid JSON ({exc}); {how}") from exc
    for kind, names in MODEL_FILES.items():
        if not any((folder / name).is_file() for name in names):
            raise FileNotFoundError(f"the model folder {folder} has no {kind} (one of {', '.join(names)}); {how}")
    return folder


def load_model(path: str | Path, *, device: str | None = None, dtype: str | None = None) -> LoadedModel:
    """The model and tokenizer in folder ``path``, loaded at most once per process.

    Never touches the network (``local_files_only``). The tokenizer pads on the left (what
    batched generation needs) and uses its end-of-text token as padding when it has none.

    Args:
        path: A Hugging Face model folder (``config.json``, weights, tokenizer files).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None``: CUDA when available, else CPU.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``; ``None``: float32 on CPU,
            bfloat16 on CUDA.

    Returns:
        The cached ``LoadedModel`` for (resolved path, device, dtype).

    Raises:
        FileNotFoundError: If ``path`` is not a model folder (``check_model_folder``).
        ValueError: For an unknown ``dtype``.
    """
    import torch

    folder = check_model_folder(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be 'float32', 'bfloat16' or 'float16', got {dtype!r}")
    key = (str(folder), device, dtype)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(folder, device, getattr(torch, dtype))
        return _CACHE[key]


def _load(folder: Path, device: str, dtype: Any) -> LoadedModel:
    from transformers import AutoTokenizer

    log.info("loading the language model in %s on %s (%s)", folder, device, dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_causal_lm(folder, dtype=dtype)
    model.to(device).eval()
    return LoadedModel(model, tokenizer, device, threading.Lock())


class TransformersBackend:
    """A causal LM from a local folder, sampled in left-padded batches (``Backend``).

    The model is loaded when the backend is made, once per process for each (folder, device,
    dtype): making a second backend on the same folder reuses it.

    Args:
        path: Hugging Face model folder (e.g. ``DEFAULT_DIFF_MODEL``).
        device: ``None``: CUDA when available, else CPU.
        dtype: ``None``: float32 on CPU, bfloat16 on CUDA.
        max_batch: Prompts per ``model.generate`` call, bounding memory.
        mode: ``"completions"`` for base and diff models, ``"chat"`` for instruction-tuned ones.

    Raises:
        FileNotFoundError: If ``path`` is not a model folder.
        ValueError: For a bad ``dtype``, ``max_batch < 1`` or an unknown ``mode``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_batch: int = 32,
        mode: str = "completions",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.loaded = load_model(path, device=device, dtype=dtype)
        self.path = Path(path)
        self.max_batch = max_batch
        self.mode = mode

    def __repr__(self) -> str:
        return f"TransformersBackend({str(self.path)!r}, device={self.loaded.device!r}, mode={self.mode!r})"

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def context_length(self) -> int | None:
        """Most tokens (prompt + completion) the model takes, when its config says."""
        config = self.model.config
        return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[str]:
        """Continue each prompt (see ``Backend.generate``).

        A prompt too long for the model's context gets an empty completion (logged).

        Raises:
            ValueError: For bad sampling arguments or a single string as ``prompts``.
        """
        import torch

        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings; wrap one prompt in a list")
        check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        # chunks of similar length waste less compute on left padding; answers keep the prompts' order
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        with self.loaded.lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            for start in range(0, len(order), self.max_batch):
                chunk = order[start : start + self.max_batch]
                texts = self._generate([prompts[i] for i in chunk], max_new_tokens, temperature, top_p, stop)
                for i, text in zip(chunk, texts):
                    out[i] = text
        return out

    def chat(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[str]:
        """Answer each conversation, through the tokenizer's chat template when it has one, else
        ``"role: content"`` lines (see ``Backend.chat``)."""
        prompts = [chat_prompt(self.tokenizer, messages) for messages in conversations]
        return self.generate(
            prompts, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, stop=stop, seed=seed
        )

    def _generate(
        self, prompts: list[str], max_new_tokens: int, temperature: float, top_p: float, stop: Sequence[str]
    ) -> list[str]:
        """One ``model.generate`` call over prompts that fit the context."""
        tok = self.tokenizer
        ids = [tok(p)["input_ids"] for p in prompts]
        limit = self.context_length
        fits = [i for i, row in enumerate(ids) if limit is None or len(row) < limit]
        if len(fits) < len(prompts):
            log.warning(
                "%d prompt(s) of %s tokens exceed the model's context of %d tokens; they get no completion",
                len(prompts) - len(fits), [len(ids[i]) for i in range(len(ids)) if i not in fits], limit,
            )
        texts = [""] * len(prompts)
        if not fits:
            return texts
        batch = tok.pad({"input_ids": [ids[i] for i in fits]}, return_tensors="pt").to(self.loaded.device)
        width = batch["input_ids"].shape[1]  # (B, T) left-padded
        new = max_new_tokens if limit is None else max(1, min(max_new_tokens, limit - width))
        sampling: dict[str, Any] = {"do_sample": False}  # temperature 0: greedy
        if temperature > 0:  # top_k=0: no top-k cut, only the nucleus
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
        generated = self.model.generate(
            **batch,
            # a preallocated cache: the default one grows by concatenation every token, which took
            # 44% of CPU time and made batches of 64 diffs ~2.9x slower (GPT-2 4M, 2 cores)
            cache_implementation="static",
            max_new_tokens=new,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            stop_strings=list(stop) or None,
            tokenizer=tok,
            **sampling,
        )  # (B, T + new)
        for row, i in zip(generated[:, width:].tolist(), fits):
            texts[i] = cut_at_stop(tok.decode(_until_eos(row, tok.eos_token_id), skip_special_tokens=False), stop)
        return texts


def _until_eos(row: list[int], eos: int | None) -> list[int]:
    """The tokens before the first end-of-text token (padding follows it)."""
    return row[: row.index(eos)] if eos is not None and eos in row else row
