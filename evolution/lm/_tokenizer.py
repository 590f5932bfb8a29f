"""A byte-level BPE tokenizer trained on walker programs and diffs (Hugging Face ``tokenizers``)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from evolution.mutation._prompts import DIFF_TAGS

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer whose special tokens are the diff format's tags.

    Byte-level, so any text (including what a model invents) round-trips; no prefix space, so
    a completion tokenized on its own matches what generation produces after a prompt.

    Args:
        texts: Training texts (programs and diffs).
        vocab_size: Vocabulary size including the 256 byte tokens and the special tokens.

    Returns:
        A fast tokenizer with ``eos_token`` ``<|endoftext|>``, ``pad_token`` ``<|pad|>`` and
        left padding (what batched generation needs).
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD, *DIFF_TAGS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(DIFF_TAGS),
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
