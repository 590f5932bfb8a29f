"""``TransformersBackend`` on a real (tiny, random) GPT-2 saved to disk."""

from __future__ import annotations

import numpy as np
import pytest

from evolution.mutation import DiffMutation, RewriteMutation, TransformersBackend
from evolution.mutation._prompts import diff_prompt
from evolution.sodarace import seeds

SQUARE = seeds.get_seed("square").text
GREEDY = dict(temperature=0.0, top_p=1.0, seed=None)
SHORT = "def make_walker():"


@pytest.fixture(scope="module")
def backend(tiny_model) -> TransformersBackend:
    return TransformersBackend(tiny_model, device="cpu")


def test_the_model_is_loaded_once_per_process(tiny_model, backend):
    again = TransformersBackend(str(tiny_model) + "/", device="cpu", max_batch=2)
    assert again.model is backend.model and again.tokenizer is backend.tokenizer
    assert TransformersBackend(tiny_model, device="cpu", dtype="bfloat16").model is not backend.model


def test_a_tokenizer_without_padding_pads_with_end_of_text_on_the_left(backend):
    assert backend.tokenizer.pad_token == backend.tokenizer.eos_token == "<|endoftext|>"
    assert backend.tokenizer.padding_side == "left"


def test_a_prompt_gives_the_same_greedy_completion_alone_and_beside_a_longer_one(backend):
    alone = backend.generate([SHORT], max_new_tokens=12, stop=[], **GREEDY)
    batched = backend.generate([SHORT, diff_prompt(SQUARE, "m"), "x"], max_new_tokens=12, stop=[], **GREEDY)
    assert alone[0] and batched[0] == alone[0]
    assert batched[1] == backend.generate([diff_prompt(SQUARE, "m")], max_new_tokens=12, stop=[], **GREEDY)[0]


def test_prompts_are_generated_in_sub_batches_of_at_most_max_batch(tiny_model, backend, monkeypatch):
    small = TransformersBackend(tiny_model, device="cpu", max_batch=2)
    sizes = []
    real = small.model.generate

    def spy(**kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        return real(**kwargs)

    monkeypatch.setattr(small.model, "generate", spy)
    prompts = [SHORT, "x = 1", "def f():", "wc.add_joint(", "import"]
    out = small.generate(prompts, max_new_tokens=5, stop=[], **GREEDY)
    assert sizes == [2, 2, 1]
    monkeypatch.undo()
    assert out == backend.generate(prompts, max_new_tokens=5, stop=[], **GREEDY)


def test_a_completion_is_cut_before_the_first_stop_string(backend):
    (full,) = backend.generate([SHORT], max_new_tokens=16, stop=[], **GREEDY)
    marker = full[3:6]
    (cut,) = backend.generate([SHORT], max_new_tokens=16, stop=["never there", marker], **GREEDY)
    assert cut == full[: full.index(marker)]


def test_sampling_with_the_same_seed_repeats_and_another_seed_differs(backend):
    def sample(seed):
        return backend.generate([SHORT] * 4, max_new_tokens=10, temperature=1.0, top_p=0.95, stop=[], seed=seed)

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)


def test_a_prompt_too_long_for_the_context_gets_an_empty_completion(backend, caplog):
    out = backend.generate(["x " * 2000, SHORT], max_new_tokens=4, stop=[], **GREEDY)
    assert out[0] == "" and out[1] and "exceed the model's context" in caplog.text


def test_chat_without_a_template_joins_roles_and_contents(backend, monkeypatch):
    seen = []
    monkeypatch.setattr(backend, "generate", lambda prompts, **kw: seen.extend(prompts) or ["ok"] * len(prompts))
    backend.chat([[{"role": "user", "content": "hi"}]], max_new_tokens=4, stop=[], **GREEDY)
    assert seen == ["user: hi\nassistant:"]


def test_bad_arguments_and_missing_folders_are_clear_errors(backend, tmp_path):
    with pytest.raises(ValueError, match="wrap one prompt in a list"):
        backend.generate(SHORT, max_new_tokens=4, stop=[], **GREEDY)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        backend.generate([SHORT], max_new_tokens=4, temperature=-1, top_p=1.0, stop=[], seed=None)
    with pytest.raises(FileNotFoundError, match="make train-mutator"):
        TransformersBackend(tmp_path / "nothing")
    with pytest.raises(ValueError, match="dtype must be"):
        TransformersBackend(backend.path, dtype="int3")


def test_both_operators_run_on_the_real_model_and_record_every_outcome(quick_model):
    backend = TransformersBackend(quick_model, device="cpu")
    for operator in (DiffMutation(backend, max_new_tokens=32), RewriteMutation(backend, max_new_tokens=32)):
        children = operator.mutate([SQUARE] * 4, rng=np.random.default_rng(1))
        assert len(children) == 4 and all(child.operator == operator.name for child in children)
        assert all(child.failure != "generation_error" for child in children)
    first = RewriteMutation(backend, max_new_tokens=32).mutate([SQUARE] * 4, rng=np.random.default_rng(2))
    again = RewriteMutation(backend, max_new_tokens=32).mutate([SQUARE] * 4, rng=np.random.default_rng(2))
    assert [(c.text, c.failure_message) for c in first] == [(c.text, c.failure_message) for c in again]


def test_models_written_with_gpt2s_gelu_load_with_the_fused_gelu_and_give_the_same_logits(tiny_model, backend):
    import torch
    from transformers import AutoModelForCausalLM

    from evolution.mutation._transformers import load_causal_lm

    as_saved = AutoModelForCausalLM.from_pretrained(tiny_model, local_files_only=True).eval()
    fused = load_causal_lm(tiny_model).eval()
    assert as_saved.config.activation_function == "gelu_new"
    assert fused.config.activation_function == backend.model.config.activation_function == "gelu_pytorch_tanh"
    ids = backend.tokenizer([diff_prompt(SQUARE, "m")], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(fused(ids).logits, as_saved(ids).logits, atol=1e-4, rtol=1e-4)
