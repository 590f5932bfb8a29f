"""A real, tiny, random GPT-2 diff model saved to disk, for the backend tests (no download)."""

from __future__ import annotations

from pathlib import Path

from evolution.mutation import unified_diff
from evolution.mutation._prompts import DIFF_TAGS, diff_example
from evolution.sodarace import seeds

EOS = "<|endoftext|>"


def build_tiny_model(folder: Path, *, eos_bias: float = 0.0) -> Path:
    """Save a 1-layer GPT-2 (random weights) with a byte-level BPE tokenizer trained on the seeds.

    Args:
        folder: Where to save it.
        eos_bias: Added to the end-of-text logit by the saved generation config, so sampled
            completions end after a few dozen tokens instead of running to ``max_new_tokens``.

    Returns:
        ``folder``, an ordinary Hugging Face model folder.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = [seed.text for seed in seeds.SEEDS.values()]
    texts += [diff_example(t, "Changed make_walker function.", unified_diff(t, t.replace("0", "1"))) for t in texts]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[EOS, *DIFF_TAGS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=EOS,
        bos_token=EOS,
        additional_special_tokens=list(DIFF_TAGS),
        clean_up_tokenization_spaces=False,
    )  # no pad token: the backend must fall back to eos
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=1024,
        n_embd=32,
        n_layer=1,
        n_head=2,
        initializer_range=0.3,  # peaked logits, so greedy decoding has no near-ties
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    if eos_bias:
        model.generation_config.sequence_bias = [[[tokenizer.eos_token_id], eos_bias]]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
