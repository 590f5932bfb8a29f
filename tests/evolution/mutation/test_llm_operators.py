"""``DiffMutation`` and ``RewriteMutation`` with a fake, deterministic backend."""

from __future__ import annotations

import ast
import logging

import numpy as np
import pytest

from evolution.mutation import DiffMutation, Operator, RewriteMutation, unified_diff
from evolution.mutation._prompts import DIFF_MESSAGES, diff_prompt, rewrite_chat_messages, rewrite_prompt
from evolution.mutation._rewrite import cut_function, extract_code, replace_entry_point
from evolution.sodarace import seeds

SQUARE = seeds.get_seed("square").text
MOVED = SQUARE.replace("center = wc.add_joint(5, 5)", "center = wc.add_joint(5, 6)")
GOOD_DIFF = unified_diff(SQUARE, MOVED)
NEW_BODY = "\n    wc = walker_creator()\n    a = wc.add_joint(0, 0)\n    b = wc.add_joint(3, 0)\n    wc.add_muscle(a, b)\n    return wc.get_walker()\n"


class FakeBackend:
    """Returns canned completions in order (or raises), and records every call."""

    def __init__(self, answers=None, *, error: Exception | None = None, mode: str = "completions"):
        self.answers = answers
        self.error = error
        self.mode = mode
        self.calls: list[tuple[str, list, dict]] = []

    def _answer(self, kind, inputs, kwargs):
        self.calls.append((kind, list(inputs), kwargs))
        if self.error is not None:
            raise self.error
        return list(self.answers(inputs) if callable(self.answers) else self.answers)

    def generate(self, prompts, **kwargs):
        return self._answer("generate", prompts, kwargs)

    def chat(self, conversations, **kwargs):
        return self._answer("chat", conversations, kwargs)


def test_llm_operators_implement_the_operator_protocol():
    assert isinstance(DiffMutation(FakeBackend([])), Operator)
    assert isinstance(RewriteMutation(FakeBackend([])), Operator)
    assert DiffMutation(FakeBackend([])).name == "diff" and RewriteMutation(FakeBackend([])).name == "rewrite"


def test_the_diff_operator_calls_the_backend_once_per_batch_with_the_papers_prompts():
    backend = FakeBackend(lambda prompts: [GOOD_DIFF] * len(prompts))
    children = DiffMutation(backend, max_new_tokens=300, temperature=0.7, top_p=0.9).mutate([SQUARE] * 5, rng=np.random.default_rng(0))
    assert len(backend.calls) == 1
    kind, prompts, kwargs = backend.calls[0]
    messages = [child.message for child in children]
    assert kind == "generate" and prompts == [diff_prompt(SQUARE, m) for m in messages]
    assert set(messages) <= set(DIFF_MESSAGES)
    assert kwargs["max_new_tokens"] == 300 and kwargs["temperature"] == 0.7 and kwargs["top_p"] == 0.9
    assert "<NME>" in kwargs["stop"] and isinstance(kwargs["seed"], int)
    assert all(child.text == MOVED and child.operator == "diff" and child.failure is None for child in children)


def test_the_same_generator_state_gives_the_same_prompts_and_seed():
    runs = []
    for _ in range(2):
        backend = FakeBackend(lambda prompts: [GOOD_DIFF] * len(prompts))
        DiffMutation(backend).mutate([SQUARE] * 8, rng=np.random.default_rng(42))
        runs.append((backend.calls[0][1], backend.calls[0][2]["seed"]))
    assert runs[0] == runs[1]


def test_a_diff_childs_diff_is_recomputed_from_parent_and_child():
    sloppy = GOOD_DIFF.replace("@@ -17,7 +17,7 @@", "@@ -1,2 +1,2 @@").replace("--- a/walker.py\n+++ b/walker.py\n", "")
    (child,) = DiffMutation(FakeBackend([sloppy + "\nthat's it"])).mutate([SQUARE], rng=np.random.default_rng(0))
    assert child.text == MOVED and child.diff == unified_diff(SQUARE, MOVED)


def test_each_bad_completion_becomes_a_typed_failure():
    broken = GOOD_DIFF.replace("-    center = wc.add_joint(5, 5)", "-    center = wc.add_joint(5, 5)\n-    return 7")
    unparseable = GOOD_DIFF.replace("+    center = wc.add_joint(5, 6)", "+    center = wc.add_joint(5, 6")
    answers = ["", "this walker is great", "--- a/walker.py\n+++ b/walker.py\n", broken,
               GOOD_DIFF.replace("(5, 6)", "(5, 5)"), unparseable, GOOD_DIFF]
    children = DiffMutation(FakeBackend(answers)).mutate([SQUARE] * len(answers), rng=np.random.default_rng(0))
    assert [c.failure for c in children] == [
        "no_diff", "no_diff", "malformed_diff", "does_not_apply", "no_change", "unparseable_child", None,
    ]
    assert "this walker is great" in children[1].failure_message  # what the model wrote, for people
    assert "'(' was never closed" in children[5].failure_message
    assert all(c.text is None and c.diff == "" and c.message in DIFF_MESSAGES for c in children[:-1])


@pytest.mark.parametrize(
    "backend",
    [FakeBackend(error=ConnectionError("refused")), FakeBackend(error=TimeoutError("slow")), FakeBackend(["only one"])],
    ids=["exception", "timeout", "wrong count"],
)
def test_a_failed_model_call_fails_every_child_of_the_batch_without_raising(backend, caplog):
    for operator in (DiffMutation(backend), RewriteMutation(backend)):
        with caplog.at_level(logging.WARNING):
            children = operator.mutate([SQUARE] * 3, rng=np.random.default_rng(0))
        assert [c.failure for c in children] == ["generation_error"] * 3
        assert all(c.failure_message for c in children)


def test_operators_refuse_a_single_string_or_a_bad_rng_and_bad_settings():
    for operator in (DiffMutation(FakeBackend([])), RewriteMutation(FakeBackend([]))):
        with pytest.raises(TypeError, match="wrap one text in a list"):
            operator.mutate(SQUARE, rng=np.random.default_rng(0))
        with pytest.raises(TypeError, match="numpy.random.Generator"):
            operator.mutate([SQUARE], rng=0)
        assert operator.mutate([], rng=np.random.default_rng(0)) == []
    with pytest.raises(ValueError, match="top_p"):
        DiffMutation(FakeBackend([]), top_p=0)
    with pytest.raises(ValueError, match="same non-zero length"):
        DiffMutation(FakeBackend([]), messages=("a",), message_weights=(1, 2))
    with pytest.raises(ValueError, match="mode"):
        RewriteMutation(FakeBackend([]), mode="fill-in")


def test_the_rewrite_operator_replaces_make_walker_and_keeps_the_helpers():
    backend = FakeBackend([NEW_BODY + "\n\n# Create a new walker by modifying the starting function above.\ndef make_walker():\n    pass\n"])
    (child,) = RewriteMutation(backend).mutate([SQUARE], rng=np.random.default_rng(0))
    kind, prompts, kwargs = backend.calls[0]
    assert kind == "generate" and prompts == [rewrite_prompt(SQUARE)] and "\ndef " in kwargs["stop"]
    assert child.failure is None and child.operator == "rewrite"
    assert child.text.startswith(SQUARE[: SQUARE.index("def make_walker")])  # comments and make_square kept
    assert child.text.endswith("def make_walker():" + NEW_BODY)
    assert child.diff == unified_diff(SQUARE, child.text)
    ast.parse(child.text)


def test_a_rewrite_that_does_not_parse_is_an_unparseable_child():
    backend = FakeBackend(["\n    wc = walker_creator(\n", "", "\n" + SQUARE[SQUARE.index("    wc = walker_creator()") :]])
    children = RewriteMutation(backend).mutate([SQUARE] * 3, rng=np.random.default_rng(0))
    assert [c.failure for c in children] == ["unparseable_child", "unparseable_child", "no_change"]


def test_a_rewrite_of_a_parent_that_does_not_parse_is_an_unparseable_parent():
    (child,) = RewriteMutation(FakeBackend([NEW_BODY])).mutate(["def make_walker(:\n"], rng=np.random.default_rng(0))
    assert child.failure == "unparseable_parent"


def test_a_chat_backend_gets_chat_messages_and_the_first_python_block_is_the_child():
    program = "def make_walker():" + NEW_BODY
    answer = f"Here you go:\n```text\nnot this\n```\n```python\n{program}```\nIt has two joints."
    backend = FakeBackend([answer, "no code here at all", f"```python\n{program}"], mode="chat")
    children = RewriteMutation(backend).mutate([SQUARE] * 3, rng=np.random.default_rng(0))
    kind, conversations, _ = backend.calls[0]
    assert kind == "chat" and conversations == [rewrite_chat_messages(SQUARE)] * 3
    assert children[0].text == program and children[0].message == "Rewrote the program."
    assert children[1].failure == "unparseable_child"
    assert children[2].text == program  # an unclosed block runs to the end
    assert RewriteMutation(FakeBackend([]), mode="completions").mode == "completions"


def test_cut_function_stops_at_the_next_top_level_statement_but_not_at_comments_or_blanks():
    completion = "\n    a = 1\n\n# a comment at column 0\n    return a\n\n# trailing\nprint(a)\nmore"
    assert cut_function(completion) == "\n    a = 1\n\n# a comment at column 0\n    return a"


def test_replace_entry_point_keeps_decorators_out_and_line_endings_in():
    parent = "import x\r\n\r\n@dec\r\ndef make_walker():\r\n    return 1\r\n\r\nY = 2\r\n"
    assert replace_entry_point(parent, "def make_walker():\n    return 2") == (
        "import x\r\n\r\ndef make_walker():\r\n    return 2\r\n\r\nY = 2\r\n"
    )
    assert replace_entry_point("x = 1", "def make_walker():\n    pass") == "x = 1\n\n\ndef make_walker():\n    pass\n"


def test_extract_code_prefers_a_python_block():
    assert extract_code("```\nplain\n```\n```py\nx = 1\n```") == "x = 1\n"
    assert extract_code("```\nplain\n```") == "plain\n"
    assert extract_code("x = 1") == "x = 1\n"
