"""Stage 2 end to end on tiny budgets: train on good programs, reload, sample, place in an archive."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from evolution.cli import main
from evolution.lm._train import ModelSize, TrainConfig
from evolution.lm.dataset import ProgramRecord, write_dataset
from evolution.lm.stage2 import (
    PROMPT,
    TERRAIN_SLOTS,
    Stage2Config,
    examples,
    place,
    stage2_prompt,
    stage2_prompt_ids,
    train_stage2,
    trained_slots,
)
from evolution.sodarace import seeds


@pytest.fixture
def seed_dataset(tmp_path):
    """The shipped seeds as a stage-2 dataset (one niche each, the last one held out)."""
    records = [ProgramRecord(s.program, (i, 0, 0), 1.0, 1.0, "seeds", i, "heldout" if i == 0 else "train")
               for i, s in enumerate(seeds.SEEDS.values())]
    return write_dataset(records, tmp_path / "seeds.jsonl")


def tiny_train(tmp_path) -> TrainConfig:
    return TrainConfig(out=tmp_path / "ignored", max_steps=2, batch_size=2, warmup_steps=1, logging_steps=1)


def test_every_program_is_taught_after_the_terrain_slots_and_the_same_prompt(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    (example,) = examples([ProgramRecord("def make_walker():\n    pass\n\n", (0, 0, 0), 1.0, 1.0, "r", 1)], tok)
    assert (example.prefix, example.prompt, example.completion) == ("", tok.eos_token * TERRAIN_SLOTS + PROMPT,
                                                                     "def make_walker():\n    pass\n")
    prompt = tok(PROMPT, add_special_tokens=False)["input_ids"]
    assert tok(example.prompt, add_special_tokens=False)["input_ids"] == [tok.eos_token_id] * TERRAIN_SLOTS + prompt


def test_the_slots_are_single_end_of_text_tokens_for_a_gpt2_tokenizer_too(tmp_path):
    from tokenizers import pre_tokenizers
    from transformers import GPT2Tokenizer, GPT2TokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))} | {"<|endoftext|>": 256}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    for kind in (GPT2Tokenizer, GPT2TokenizerFast):
        tok = kind(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
        assert tok(stage2_prompt(tok), add_special_tokens=False)["input_ids"] == stage2_prompt_ids(tok)
        assert stage2_prompt_ids(tok)[:TERRAIN_SLOTS + 1] == [256] * TERRAIN_SLOTS + [vocab["<"]]


class CharTokenizer:
    """A tokenizer that spells its end-of-text token character by character."""

    eos_token, eos_token_id = "</s>", 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def test_a_tokenizer_that_splits_its_end_of_text_token_is_a_clear_error():
    with pytest.raises(ValueError, match="register the end-of-text token as a special token"):
        stage2_prompt(CharTokenizer())


def test_a_model_trained_from_the_pretrained_base_reloads_and_records_its_data(tiny_model, seed_dataset, tmp_path):
    from transformers import AutoModelForCausalLM

    out = train_stage2(Stage2Config(out=tmp_path / "m", dataset=seed_dataset, base=tiny_model, train=tiny_train(tmp_path)))
    reloaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, local_files_only=True)
    assert reloaded.num_parameters() == base.num_parameters()
    record = json.loads((out / "training_log.json").read_text())
    assert record["stage2"] == {"dataset": str(seed_dataset), "base": str(tiny_model), "init": "pretrained",
                                "programs": len(seeds.SEEDS) - 1, "heldout": 1, "terrain_slots": TERRAIN_SLOTS}
    assert trained_slots(out) == TERRAIN_SLOTS and trained_slots(tiny_model) == 0  # the diff model reads no slots
    assert record["steps"] == 2


def test_a_model_trained_from_scratch_has_the_requested_size_and_the_base_tokenizer(tiny_model, seed_dataset, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = Stage2Config(out=tmp_path / "m", dataset=seed_dataset, base=tiny_model, init="scratch",
                          size=replace(ModelSize(), n_layer=2, n_embd=16, n_head=2), train=tiny_train(tmp_path))
    out = train_stage2(config)
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    assert (model.config.n_layer, model.config.n_embd) == (2, 16)
    assert AutoTokenizer.from_pretrained(out).get_vocab() == AutoTokenizer.from_pretrained(tiny_model).get_vocab()


def test_a_dataset_with_no_training_programs_is_a_clear_error(tiny_model, tmp_path):
    path = write_dataset([ProgramRecord("x", (0, 0, 0), 1.0, 1.0, "r", 1, "heldout")], tmp_path / "d.jsonl")
    with pytest.raises(ValueError, match="no training programs"):
        train_stage2(Stage2Config(out=tmp_path / "m", dataset=path, base=tiny_model))


def test_placing_programs_counts_valid_walkers_niches_and_failures():
    texts = [s.program for s in seeds.SEEDS.values()] + ["", "def make_walker(:\n"]
    result = place(texts, workers=0, sim_seconds=2.0)
    assert result["samples"] == len(texts)
    assert result["valid"] == len(seeds.SEEDS)
    assert result["valid_rate"] == pytest.approx(len(seeds.SEEDS) / len(texts))
    assert 1 <= result["niches"] <= len(seeds.SEEDS)
    assert result["qd_score"] > 0 and result["max_fitness"] > 0
    assert sum(result["failures"].values()) == 2
    assert len(result["archive"]["elites"]) == result["niches"]


def test_train_then_evaluate_from_the_command_line(quick_model, seed_dataset, tmp_path, capsys):
    model = tmp_path / "stage2"
    assert main(["train-stage2", "--dataset", str(seed_dataset), "--out", str(model), "--base", str(quick_model),
                 "--steps", "2", "--minutes", "1"]) == 0
    assert f"eval-stage2 --model {model}" in capsys.readouterr().out
    assert main(["eval-stage2", "--model", str(model), "--samples", "3", "--workers", "0",
                 "--out", str(tmp_path / "eval.json")]) == 0
    figures = json.loads((tmp_path / "eval.json").read_text())
    assert set(figures["models"]) == {"model", "untrained"}
    assert figures["models"]["untrained"]["model"] == str(quick_model)
    assert figures["models"]["model"]["samples"] == 3
    table = capsys.readouterr().out
    assert "untrained" in table and "valid" in table
