"""The untrained inventor is the stage-2 model: its TEN prefix fills the terrain slots stage 2 trained with.

A stage-2 model trained on programs after ``TERRAIN_SLOTS`` end-of-text tokens and ``PROMPT``
must score and write programs exactly as an untrained inventor made from it does, on every
terrain; otherwise PPO starts from a model that reads the prefix as noise (it did: a real
stage-2 model fell from -0.46 to -4.2 nats per token and wrote no valid program).
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from evolution.lm._inventor import load_inventor, new_inventor, reference_logprobs
from evolution.lm._train import IGNORE, PackedDataset, SegmentCollator, TrainConfig
from evolution.lm.dataset import ProgramRecord, write_dataset
from evolution.lm.stage2 import TERRAIN_SLOTS, Stage2Config, examples, sample_programs, train_stage2
from evolution.sodarace import seeds
from tests.evolution.lm.test_stage3 import one_torch_thread as one_torch_thread  # autouse: one torch thread

TERRAINS = ("left-wall", "right-wall", "tunnel")
TOLERANCE = 1e-3  # nats per token


@pytest.fixture(scope="module")
def stage2_model(tiny_model, tmp_path_factory):
    """A stage-2 model trained (briefly) on the seeds, from the tiny diff model."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("stage2")
    records = [ProgramRecord(s.program, (i, 0, 0), 1.0, 1.0, "seeds", i) for i, s in enumerate(seeds.SEEDS.values())]
    dataset = write_dataset(records, tmp / "seeds.jsonl")
    train = TrainConfig(out=tmp / "ignored", max_steps=30, batch_size=4, warmup_steps=2, learning_rate=1e-2,
                        logging_steps=10)
    return train_stage2(Stage2Config(out=tmp / "model", dataset=dataset, base=tiny_model, train=train))


def padded(tokenizer, texts):
    """Programs as right-padded ``(B, R)`` tokens and their mask."""
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, rows))
    tokens = torch.tensor([r + [tokenizer.eos_token_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1.0] * len(r) + [0.0] * (width - len(r)) for r in rows])
    return tokens, mask


def gap(a, b, mask):
    """Mean absolute difference per written token."""
    return float(((a - b).abs() * mask).sum() / mask.sum())


def test_the_untrained_inventor_scores_the_stage2_models_samples_as_that_model_does(stage2_model):
    inventor = new_inventor(stage2_model, TERRAINS, device="cpu")
    texts, _ = sample_programs(stage2_model, 6, batch=6, top_p=1.0, max_new_tokens=40, seed=0)
    tokens, mask = padded(inventor.tokenizer, texts)
    with torch.no_grad():
        stage2 = reference_logprobs(inventor.lm, inventor.reference_ids, tokens, mask, 1.0)
        for terrain in range(len(TERRAINS)):
            logprobs, _ = inventor(torch.full((len(texts),), terrain), tokens, mask)
            assert gap(logprobs, stage2, mask) < TOLERANCE, TERRAINS[terrain]
        # the tolerance has teeth: a prefix off the slots' embedding (the TEN's old init noise) moves them far more
        inventor.ten.table += 0.1 * inventor.ten.table.pow(2).mean().sqrt() * torch.randn_like(inventor.ten.table)
        logprobs, _ = inventor(torch.zeros(len(texts), dtype=torch.long), tokens, mask)
        assert gap(logprobs, stage2, mask) > 10 * TOLERANCE


def test_the_untrained_inventor_scores_training_programs_as_stage2_training_did(stage2_model):
    """The inventor reads what the training rows held: the slots, the prompt, the program."""
    inventor = new_inventor(stage2_model, TERRAINS, device="cpu")
    tok = inventor.tokenizer
    for seed in list(seeds.SEEDS.values())[:2]:
        rows = PackedDataset(tok, examples([ProgramRecord(seed.program, (0, 0, 0), 1.0, 1.0, "r", 1)], tok),
                             max_length=1024, row_length=1024)
        batch = SegmentCollator(tok.eos_token_id)([rows[0]])
        with torch.no_grad():
            logits = inventor.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 position_ids=batch["position_ids"]).logits  # (1, T, V)
            labels = batch["labels"][0, 1:]  # position t predicts token t + 1
            taught = labels != IGNORE
            trained = logits[0, :-1][taught].log_softmax(-1).gather(-1, labels[taught, None]).squeeze(-1)
            tokens = labels[taught][None]  # the program, then end of text
            for terrain in range(len(TERRAINS)):
                logprobs, _ = inventor(torch.tensor([terrain]), tokens, torch.ones(tokens.shape))
                assert gap(logprobs[0], trained, torch.ones(len(trained))) < TOLERANCE


def test_the_untrained_inventor_writes_what_the_stage2_model_writes(stage2_model):
    inventor = new_inventor(stage2_model, TERRAINS, device="cpu")
    expected, _ = sample_programs(stage2_model, 4, batch=4, temperature=0.8, top_p=0.9, max_new_tokens=40, seed=3)
    assert len(set(expected)) > 1  # samples, not one greedy text
    for terrain in TERRAINS:
        written = inventor.sample([terrain] * 4, max_new_tokens=40, temperature=0.8, top_p=0.9, seed=3)
        assert written.texts == expected


def test_a_saved_inventor_keeps_reading_the_stage2_slots(stage2_model, tmp_path, caplog):
    inventor = new_inventor(stage2_model, TERRAINS, device="cpu")
    assert inventor.reference_ids[:TERRAIN_SLOTS].tolist() == [inventor.tokenizer.eos_token_id] * TERRAIN_SLOTS
    folder = inventor.save(tmp_path / "inventor", {})
    meta = json.loads((folder / "stage3.json").read_text())
    assert meta["stage2_slots"] == TERRAIN_SLOTS
    assert torch.equal(load_inventor(folder, device="cpu").reference_ids, inventor.reference_ids)
    del meta["stage2_slots"]  # an inventor trained before the slots
    (folder / "stage3.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="evolution.lm._inventor"):
        load_inventor(folder, device="cpu")
    assert "train it again" in caplog.text


def test_a_prefix_that_cannot_fill_the_stage2_slots_is_warned_about(stage2_model, tiny_model, caplog):
    with caplog.at_level(logging.WARNING, logger="evolution.lm._inventor"):
        new_inventor(stage2_model, TERRAINS, device="cpu")
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="evolution.lm._inventor"):
        new_inventor(stage2_model, TERRAINS, prefix_tokens=2, device="cpu")
    assert f"use prefix_tokens={TERRAIN_SLOTS}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="evolution.lm._inventor"):
        older = new_inventor(tiny_model, TERRAINS, device="cpu")  # no slots recorded: reads the bare prompt
    assert "train the stage-2 model again" in caplog.text
    assert torch.equal(older.reference_ids, older.prompt_ids)
