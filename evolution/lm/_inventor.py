"""The conditional inventor: a causal LM that reads a TEN prefix, plus a value head for PPO.

``Inventor`` samples programs after ``[TEN(terrain), PROMPT]`` and scores written tokens
(log-probabilities and values) for PPO; ``new_inventor`` starts one from a stage-2 model,
``load_inventor`` reloads a trained one (a Hugging Face model folder plus ``ten.pt`` and
``stage3.json``). The TEN's k vectors fill the k terrain slots, end-of-text tokens, that a
stage-2 model reads before ``PROMPT`` (``stage2.TERRAIN_SLOTS``), at the same positions; they
start as the end-of-text embedding, so the untrained inventor is the stage-2 model. Generation
from ``inputs_embeds`` is ``model.generate(inputs_embeds=..., attention_mask=...,
position_ids=...)``, which returns only the new tokens for decoder-only models and continues
the given positions (checked with transformers 5.23).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evolution.lm._ten import TerrainEmbedding
from evolution.lm.stage2 import STOP, TERRAIN_SLOTS, stage2_prompt, stage2_prompt_ids, trained_slots
from evolution.mutation._backends import cut_at_stop
from evolution.mutation._transformers import load_causal_lm

log = logging.getLogger(__name__)

CONFIG_FILE = "stage3.json"
TEN_FILE = "ten.pt"


@dataclass
class Rollout:
    """Sampled programs, as the tokens the policy wrote.

    Attributes:
        terrains: ``(B,)`` terrain names.
        tokens: ``(B, R)`` written token ids, right-padded.
        mask: ``(B, R)`` 1.0 for written tokens (an end-of-text token counts; padding does not).
        texts: ``(B,)`` programs (cut at the end-of-text token or a stop string).
    """

    terrains: list[str]
    tokens: torch.Tensor
    mask: torch.Tensor
    texts: list[str]


class ValueHead(nn.Module):
    """State values for PPO: a linear map of the LM's last hidden state plus a per-terrain offset.

    Distances differ in scale from terrain to terrain; the offset lets the critic tell them
    apart from the first iteration, before the hidden states learn to carry the terrain.
    Both start at zero.
    """

    def __init__(self, width: int, terrains: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, 1)
        self.offset = nn.Parameter(torch.zeros(terrains))
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor, terrain_ids: torch.Tensor) -> torch.Tensor:
        """``(B, R, d)`` hidden states, ``(B,)`` terrain ids -> ``(B, R)`` values."""
        return self.linear(hidden).squeeze(-1) + self.offset[terrain_ids][:, None]


class Inventor(nn.Module):
    """A causal LM conditioned on a terrain by a TEN prefix, with a value head for PPO.

    The model reads ``[TEN(terrain) (k vectors), PROMPT tokens]`` and writes a program. The
    value head reads the model's last hidden state (the trunk is shared with the policy).

    Args:
        lm: A Hugging Face causal LM (e.g. a stage-2 model).
        tokenizer: Its tokenizer.
        ten: The terrain embedding network, of the LM's embedding width.
        stage2_slots: The terrain slots the stage-2 model was trained with (``trained_slots``):
            ``reference_ids`` is what that model reads before a program, the KL reference's prompt.
    """

    def __init__(self, lm: Any, tokenizer: Any, ten: TerrainEmbedding, *, stage2_slots: int = TERRAIN_SLOTS) -> None:
        super().__init__()
        width = lm.get_input_embeddings().weight.shape[1]
        if ten.width != width:
            raise ValueError(f"the TEN writes {ten.width}-wide vectors but the model's embeddings are {width} wide")
        self.lm, self.tokenizer, self.ten = lm, tokenizer, ten
        self.stage2_slots = stage2_slots
        self.value_head = ValueHead(width, len(ten.terrains))
        stage2_prompt(tokenizer, stage2_slots)  # raises if the tokenizer cannot spell the slots
        self.register_buffer("prompt_ids", torch.tensor(stage2_prompt_ids(tokenizer, 0)), persistent=False)
        self.register_buffer("reference_ids", torch.tensor(stage2_prompt_ids(tokenizer, stage2_slots)), persistent=False)

    @property
    def terrains(self) -> tuple[str, ...]:
        return self.ten.terrains

    @property
    def device(self) -> torch.device:
        return self.prompt_ids.device

    def context(self, terrain_ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` terrain ids -> ``(B, k + P, d)``: the TEN prefix, then the prompt's embeddings."""
        prefix = self.ten(terrain_ids)  # (B, k, d)
        prompt = self.lm.get_input_embeddings()(self.prompt_ids)  # (P, d)
        return torch.cat([prefix, prompt.expand(len(terrain_ids), -1, -1)], dim=1)

    def positions(self, batch: int, written: int = 0) -> torch.Tensor:
        """``(B, k + P + written)`` position ids ``0, 1, ...``: those of the terrain slots, the
        prompt and the program in stage-2 training, when k is the model's ``stage2_slots``."""
        k, p = self.ten.prefix_tokens, len(self.prompt_ids)
        return torch.arange(k + p + written, device=self.device).expand(batch, -1)

    def generate(self, terrain_ids: torch.Tensor, config: Any, **kwargs: Any) -> Any:
        """``lm.generate`` after ``[TEN prefix, PROMPT]`` with ``GenerationConfig`` ``config``."""
        embeds = self.context(terrain_ids)  # (B, C, d)
        attention = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)
        return self.lm.generate(inputs_embeds=embeds, attention_mask=attention, position_ids=self.positions(len(embeds)),
                                generation_config=config, tokenizer=self.tokenizer, **kwargs)

    @torch.no_grad()
    def sample(
        self, terrains: Sequence[str], *, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
        seed: int | None = None,
    ) -> Rollout:
        """Write one program for each of ``terrains`` (one ``generate`` call).

        Raises:
            ValueError: For a terrain the TEN does not know.
        """
        from transformers import GenerationConfig

        ids = self.ten.ids(terrains).to(self.device)
        tok = self.tokenizer
        if seed is not None:
            torch.manual_seed(seed)
        # A fresh config: only temperature and top-p shape the samples, so log-probabilities
        # computed from the logits are exactly those of the sampling (no biases from the
        # model's saved generation config). top_k=0: no top-k cut.
        config = GenerationConfig(do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                                  max_new_tokens=max_new_tokens, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
                                  stop_strings=list(STOP))
        generated = self.generate(ids, config)  # (B, R): the new tokens only
        episodes = [_episode(row, tok, STOP) for row in generated.tolist()]
        width = max(n for n, _ in episodes)
        mask = torch.zeros(len(terrains), width, device=self.device)
        for i, (n, _) in enumerate(episodes):
            mask[i, :n] = 1.0
        tokens = generated[:, :width].masked_fill(mask == 0, tok.eos_token_id)
        return Rollout(list(terrains), tokens, mask, [text for _, text in episodes])

    def forward(self, terrain_ids: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of written tokens and the values of the states before them.

        Args:
            terrain_ids: ``(B,)``.
            tokens: ``(B, R)`` written tokens, right-padded.
            mask: ``(B, R)`` 1.0 for written tokens.
            temperature: The sampling temperature (the logits are divided by it).

        Returns:
            ``(logprobs, values)``, both ``(B, R)``.
        """
        context = self.context(terrain_ids)  # (B, C, d)
        c = context.shape[1]
        x = torch.cat([context, self.lm.get_input_embeddings()(tokens)], dim=1)  # (B, C + R, d)
        attention = torch.cat([torch.ones(context.shape[:2], device=self.device), mask], dim=1).long()
        out = self.lm(inputs_embeds=x, attention_mask=attention, position_ids=self.positions(len(x), tokens.shape[1]),
                      output_hidden_states=True)
        logits = out.logits[:, c - 1 : -1] / temperature  # (B, R, V): position t predicts token t
        values = self.value_head(out.hidden_states[-1][:, c - 1 : -1].float(), terrain_ids)  # (B, R)
        return token_logprobs(logits, tokens), values

    def save(self, folder: Path, record: dict[str, Any]) -> Path:
        """Write the model folder: LM + tokenizer, ``ten.pt`` and ``stage3.json`` (``record`` + TEN shape)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.lm.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        torch.save({"ten": self.ten.state_dict(), "value_head": self.value_head.state_dict()}, folder / TEN_FILE)
        meta = record | {"terrains": list(self.terrains), "prefix_tokens": self.ten.prefix_tokens, "ten": self.ten.kind,
                         "stage2_slots": self.stage2_slots}
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        return folder


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, R, V)`` logits, ``(B, R)`` tokens -> ``(B, R)`` log-probabilities of those tokens."""
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).float()
    return picked - torch.logsumexp(logits.float(), dim=-1)


def _episode(row: list[int], tokenizer: Any, stop: Sequence[str]) -> tuple[int, str]:
    """How many of a generated row's tokens the policy wrote, and the program they spell.

    The row ends at its first end-of-text token (written, so counted) or at the token that
    completes a stop string (the smallest prefix whose text holds one); after that is padding.
    """
    eos = tokenizer.eos_token_id
    end = row.index(eos) if eos in row else len(row)
    text = tokenizer.decode(row[:end], skip_special_tokens=False)
    if not any(s and s in text for s in stop):
        return min(end + 1, len(row)), text
    low, high = 1, end  # the smallest n with a stop string in decode(row[:n]) lies in [low, high]
    while low < high:
        mid = (low + high) // 2
        if any(s and s in tokenizer.decode(row[:mid], skip_special_tokens=False) for s in stop):
            high = mid
        else:
            low = mid + 1
    return low, cut_at_stop(text, stop)


def new_inventor(model: Path, terrains: Sequence[str], *, prefix_tokens: int = TERRAIN_SLOTS, kind: str = "table",
                 device: str | None = None, seed: int = 0) -> Inventor:
    """An untrained inventor: the model in folder ``model`` and a fresh TEN for ``terrains``.

    Every terrain's prefix starts as k copies of the end-of-text token's embedding: the k
    terrain slots the stage-2 model was trained with, so the untrained inventor reads exactly
    what that model read and writes what it writes. Another k, or a stage-2 model trained
    without slots (``trained_slots`` 0), works but starts from a model that reads the prefix
    as noise (logged as a warning): PPO then first has to learn to ignore it (a 4M-parameter
    stage-2 model trained without slots, read after 4 prefix vectors, wrote no valid program).
    A warning rather than an error: a different k is a fair experiment, and older stage-2
    models stay usable.

    Raises:
        FileNotFoundError: If ``model`` is not a model folder.
        ValueError: For an unknown terrain or TEN kind.
    """
    lm, tokenizer = load_lm(model, device)
    slots = trained_slots(model)
    if slots != prefix_tokens:
        fix = (f"train the stage-2 model again (python -m evolution train-stage2) to give it {TERRAIN_SLOTS} slots"
               if slots == 0 else f"use prefix_tokens={slots} (--prefix-tokens {slots})")
        log.warning("%s was trained with %d terrain slots before its prompt but the TEN writes %d vectors: the untrained "
                    "inventor will not write what the stage-2 model writes; %s", model, slots, prefix_tokens, fix)
    torch.manual_seed(seed)
    init = lm.get_input_embeddings().weight[tokenizer.eos_token_id].detach().cpu()
    ten = TerrainEmbedding(terrains, prefix_tokens=prefix_tokens, init=init, kind=kind)
    return Inventor(lm, tokenizer, ten, stage2_slots=slots).to(lm.device)


def load_inventor(folder: Path, *, device: str | None = None) -> Inventor:
    """Reload an inventor saved by ``train_stage3``.

    Raises:
        FileNotFoundError: If ``folder`` is not a stage-3 model folder.
    """
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / TEN_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not a stage-3 model (it needs {CONFIG_FILE} and {TEN_FILE}); "
                                "train one with: python -m evolution train-stage3 --model STAGE2_DIR --out DIR")
    meta = json.loads((folder / CONFIG_FILE).read_text())
    lm, tokenizer = load_lm(folder, device)
    width = lm.get_input_embeddings().weight.shape[1]
    ten = TerrainEmbedding(meta["terrains"], prefix_tokens=meta["prefix_tokens"], init=torch.zeros(width), kind=meta["ten"])
    if "stage2_slots" not in meta:
        log.warning("%s was trained before stage 2 had terrain slots, with other prefix positions; it will write worse "
                    "programs now: train it again with python -m evolution train-stage3", folder)
    inventor = Inventor(lm, tokenizer, ten, stage2_slots=meta.get("stage2_slots", 0))
    state = torch.load(folder / TEN_FILE, map_location="cpu", weights_only=True)
    ten.load_state_dict(state["ten"])
    inventor.value_head.load_state_dict(state["value_head"])
    return inventor.to(lm.device)


def load_lm(folder: Path, device: str | None) -> tuple[Any, Any]:
    """The float32 model (in eval mode, on ``device`` or CUDA when available) and tokenizer in ``folder``.

    Raises:
        FileNotFoundError: If ``folder`` is not a model folder.
    """
    from transformers import AutoTokenizer, GenerationConfig

    if not (Path(folder) / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no config.json); pass a stage-2 model from "
                                "`python -m evolution train-stage2`")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    lm = load_causal_lm(folder, dtype=torch.float32).to(device).eval()
    # only the ids: sampling settings are given per call (see Inventor.sample)
    lm.generation_config = GenerationConfig(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                                            pad_token_id=tokenizer.eos_token_id)
    return lm, tokenizer


def reference_logprobs(reference: Any, prompt_ids: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                       temperature: float) -> torch.Tensor:
    """``(B, R)`` log-probabilities of the written tokens under the stage-2 model after
    ``prompt_ids``: what it was trained on (``Inventor.reference_ids``, its terrain slots then
    ``PROMPT``)."""
    p = len(prompt_ids)
    ids = torch.cat([prompt_ids.expand(len(tokens), -1), tokens], dim=1)  # (B, P + R)
    attention = torch.cat([torch.ones(len(tokens), p, device=tokens.device), mask], dim=1).long()
    logits = reference(input_ids=ids, attention_mask=attention).logits[:, p - 1 : -1] / temperature  # (B, R, V)
    return token_logprobs(logits, tokens)


__all__ = ["CONFIG_FILE", "TEN_FILE", "Inventor", "Rollout", "ValueHead", "load_inventor", "load_lm", "new_inventor",
           "reference_logprobs", "token_logprobs"]
