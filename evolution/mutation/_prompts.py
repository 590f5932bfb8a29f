"""Prompt formats of the language-model operators: the paper's diff format and its rewrite form."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FILENAME = "walker.py"
"""The file name shown after ``<NME>`` and in diff headers."""

DIFF_MESSAGES: tuple[str, ...] = (
    "Changed make_walker function.",
    "Changed parameters in make_walker function.",
    "Small change to make_walker function.",
)
"""The paper's Sodarace commit messages."""

DIFF_MESSAGE_WEIGHTS: tuple[float, ...] = (0.4, 0.3, 0.3)
"""How often each of ``DIFF_MESSAGES`` is drawn (the paper's 40/30/30)."""

DIFF_TAGS = ("<NME>", "<BEF>", "<MSG>", "<DFF>")
"""The diff format's section markers, in order."""

REWRITE_INSTRUCTION = "# Create a new walker by modifying the starting function above."
"""The comment that asks a plain code model for a modified ``make_walker``."""


def diff_prompt(parent: str, message: str, *, filename: str = FILENAME) -> str:
    """The paper's diff-model prompt; the model completes a unified diff after ``<DFF> ``.

    ``<NME> {filename}\\n<BEF> {parent}\\n<MSG> {message}\\n<DFF> ``. The parent's trailing
    newlines are normalised to exactly one so that ``<MSG>`` always starts a line.
    """
    return "".join(diff_prompt_parts(parent, message, filename=filename))


def diff_prompt_parts(parent: str, message: str, *, filename: str = FILENAME) -> tuple[str, str]:
    """``diff_prompt`` split into (the file part, the message part).

    Every child of one parent shares the first part, which training packs once per parent.
    """
    return f"<NME> {filename}\n<BEF> {parent.rstrip(chr(10))}\n", f"<MSG> {message}\n<DFF> "


def diff_example(parent: str, message: str, diff: str, *, filename: str = FILENAME) -> str:
    """One training text in the diff format: the prompt followed by the diff."""
    return diff_prompt(parent, message, filename=filename) + diff


def draw_messages(
    n: int,
    rng: np.random.Generator,
    *,
    messages: Sequence[str] = DIFF_MESSAGES,
    weights: Sequence[float] = DIFF_MESSAGE_WEIGHTS,
) -> list[str]:
    """``n`` commit messages drawn from ``messages`` (default: 40/30/30 from ``DIFF_MESSAGES``).

    Args:
        n: How many.
        rng: The only source of randomness (one ``rng.choice`` call).
        messages: The messages to draw from.
        weights: Their probabilities (normalised here).

    Raises:
        ValueError: If ``messages`` and ``weights`` differ in length or the weights do not make
            a distribution.
    """
    p = np.asarray(weights, dtype=float)
    if len(messages) != len(p) or not len(p) or (p < 0).any() or not p.sum() > 0:
        raise ValueError(f"need one non-negative weight per message with a positive sum, got {list(weights)!r}")
    picks = rng.choice(len(messages), size=n, p=p / p.sum())
    return [messages[int(i)] for i in picks]


def rewrite_prompt(parent: str) -> str:
    """The paper's prompt-based alternative for plain code models.

    The parent, a comment asking for a new walker, then ``def make_walker():`` with no
    trailing newline: byte-level tokenizers merge a newline with the next line's indentation,
    so ending at the colon lets the model choose that token itself.
    """
    renamed = parent.rstrip("\n")
    return f"{renamed}\n\n\n{REWRITE_INSTRUCTION}\ndef make_walker():"


def rewrite_chat_messages(parent: str) -> list[dict[str, str]]:
    """Chat messages asking a chat model for the modified program in one code block."""
    return [
        {
            "role": "system",
            "content": (
                "You edit Python programs that build Sodarace walkers with walker_creator(): "
                "add_joint(x, y) returns a joint; add_muscle(j0, j1) adds a passive muscle and "
                "add_muscle(j0, j1, False, amplitude, phase) an active one; make_walker() returns "
                "wc.get_walker(). Answer with the complete modified program in one ```python code "
                "block and nothing else."
            ),
        },
        {
            "role": "user",
            "content": f"Modify make_walker so the walker moves differently:\n\n```python\n{parent.rstrip()}\n```",
        },
    ]


def messages_for(kinds: Sequence[str]) -> str:
    """The commit message that describes a GP edit sequence, for training corpora.

    Only number changes -> "Changed parameters ..."; one structural edit -> "Small change ...";
    more -> "Changed make_walker function.". This gives the three messages a meaning the model
    can learn, so the message drawn at mutation time steers the kind of edit.
    """
    if kinds and all(k == "perturb_literal" for k in kinds):
        return DIFF_MESSAGES[1]
    if len(kinds) == 1:
        return DIFF_MESSAGES[2]
    return DIFF_MESSAGES[0]
