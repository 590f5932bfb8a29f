"""Prompt building for the language-model operators."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from evolution.mutation._prompts import (
    DIFF_MESSAGES,
    REWRITE_INSTRUCTION,
    diff_example,
    diff_prompt,
    draw_messages,
    rewrite_chat_messages,
    rewrite_prompt,
)
from evolution.sodarace import seeds

SQUARE = seeds.get_seed("square").text


def test_the_diff_prompt_is_the_papers_format_ending_after_the_diff_tag():
    prompt = diff_prompt(SQUARE, DIFF_MESSAGES[0])
    assert prompt.startswith("<NME> walker.py\n<BEF> # Square (ELM paper")
    assert prompt.endswith("    return wc.get_walker()\n<MSG> Changed make_walker function.\n<DFF> ")
    assert diff_prompt(SQUARE + "\n\n", "m") == diff_prompt(SQUARE, "m")  # one newline before <MSG>
    assert diff_example(SQUARE, "m", "--- a\n") == diff_prompt(SQUARE, "m") + "--- a\n"


def test_messages_are_drawn_forty_thirty_thirty_and_reproducibly():
    drawn = draw_messages(6000, np.random.default_rng(1))
    shares = Counter(drawn)
    assert set(shares) == set(DIFF_MESSAGES)
    for message, share in zip(DIFF_MESSAGES, (0.4, 0.3, 0.3)):
        assert abs(shares[message] / 6000 - share) < 0.03
    assert draw_messages(20, np.random.default_rng(5)) == draw_messages(20, np.random.default_rng(5))


def test_custom_messages_and_weights_can_be_drawn_and_bad_weights_are_refused():
    assert set(draw_messages(50, np.random.default_rng(0), messages=("a", "b"), weights=(0, 3))) == {"b"}
    with pytest.raises(ValueError, match="one non-negative weight per message"):
        draw_messages(5, np.random.default_rng(0), messages=("a", "b"), weights=(1,))


def test_the_rewrite_prompt_ends_at_the_def_line_without_a_newline():
    prompt = rewrite_prompt(SQUARE)
    assert prompt.startswith(SQUARE.rstrip("\n"))
    assert prompt.endswith(f"\n\n\n{REWRITE_INSTRUCTION}\ndef make_walker():")


def test_the_chat_rewrite_shows_the_parent_in_a_python_block_and_asks_for_one_back():
    system, user = rewrite_chat_messages(SQUARE)
    assert system["role"] == "system" and "```python" in system["content"]
    assert user["role"] == "user" and f"```python\n{SQUARE.rstrip()}\n```" in user["content"]
