"""Shared-prefix packing: a packed segment is computed exactly as if it were alone."""

from __future__ import annotations

import pytest
import torch

from evolution.lm._tokenizer import train_tokenizer
from evolution.lm._train import IGNORE, Example, ModelSize, PackedDataset, SegmentCollator, new_gpt2

PROGRAM = "def make_walker():\n    wc = walker_creator()\n    a = wc.add_joint(0, 0)\n    return wc.get_walker()\n"


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([PROGRAM, "--- a/walker.py\n+++ b/walker.py\n@@ -3 +3 @@\n-    a = 1\n+    a = 2\n"] * 4, vocab_size=300)


@pytest.fixture(scope="module")
def model(tokenizer):
    return new_gpt2(tokenizer, ModelSize(n_layer=2, n_embd=32, n_head=4, n_positions=256)).eval()


def _examples():
    head = f"<NME> walker.py\n<BEF> {PROGRAM}"
    return [
        Example(head, "<MSG> Changed make_walker function.\n<DFF> ", "-    a = wc.add_joint(0, 0)\n+    a = wc.add_joint(1, 0)\n"),
        Example(head, "<MSG> Small change to make_walker function.\n<DFF> ", "@@ -3 +3 @@\n"),
        Example("", "x = ", "1\n"),
    ]


def test_children_of_one_parent_share_a_row_and_the_parent_is_stored_once(tokenizer):
    data = PackedDataset(tokenizer, _examples(), max_length=256, row_length=1024)
    assert len(data) == 2 and data.examples == 3
    row = next(data[i] for i in range(len(data)) if len(data[i]["segments"]) == 2)
    assert len(row["input_ids"]) == row["prefix"] + sum(row["segments"])


def test_a_packed_segment_gets_the_same_logits_as_the_example_alone(tokenizer, model):
    data = PackedDataset(tokenizer, _examples(), max_length=256, row_length=1024)
    batch = SegmentCollator(tokenizer.pad_token_id)([data[i] for i in range(len(data))])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]).logits
    for row in range(len(data)):
        item = data[row]
        start = item["prefix"]
        for size in item["segments"]:
            alone = torch.tensor([item["input_ids"][: item["prefix"]] + item["input_ids"][start : start + size]])
            with torch.no_grad():
                expected = model(input_ids=alone).logits[0, item["prefix"]:]
            torch.testing.assert_close(packed[row, start : start + size], expected, atol=1e-4, rtol=1e-4)
            start += size


def test_only_completion_tokens_and_eos_carry_loss(tokenizer):
    data = PackedDataset(tokenizer, [_examples()[2]], max_length=256, row_length=1024)
    item = data[0]
    completion = tokenizer("1\n", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert [t for t in item["labels"] if t != IGNORE] == completion


def test_examples_too_long_for_the_model_are_dropped_and_none_left_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="max_length"):
        PackedDataset(tokenizer, _examples()[:1], max_length=8, row_length=1024)
