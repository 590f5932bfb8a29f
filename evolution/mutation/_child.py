"""``Child``: what a mutation operator returns for one parent."""

from __future__ import annotations

from dataclasses import dataclass

FAILURE_KINDS = (
    "no_change",
    "unparseable_parent",
    "no_diff",
    "malformed_diff",
    "does_not_apply",
    "generation_error",
    "unparseable_child",
)
"""Every value ``Child.failure`` may take besides ``None``.

``no_change``: the operator found no edit that changed the program. ``unparseable_parent``: the
parent is not Python. The rest belong to language-model operators: ``no_diff`` (the model
wrote no diff), ``malformed_diff`` (it is not a unified diff), ``does_not_apply`` (its hunks do
not match the parent), ``generation_error`` (the model call itself failed) and
``unparseable_child`` (the model's program, or the parent with its diff applied, is not Python).
"""


@dataclass(frozen=True, slots=True)
class Child:
    """One child program, or the reason there is none.

    Exactly one of ``text`` and ``failure`` is set.

    Attributes:
        parent: The parent's program text (the mutable text only, never the preamble).
        text: The child's program text, or ``None`` when the operator produced none.
        diff: Unified diff from parent to child (``unified_diff``); ``""`` when ``text`` is
            ``None`` or equal to the parent.
        operator: Name of the operator that made it, e.g. ``"gp"``.
        message: A short description of the edit (GP: ``"perturb literal 5.0 -> 5.7 at line
            12"``; a language model: its commit message).
        failure: ``None``, or one of ``FAILURE_KINDS`` when no child text was produced.
        failure_message: Details of the failure, for people; ``""`` when there is none.

    Raises:
        ValueError: If ``text`` and ``failure`` are both set or both unset, or ``failure`` is
            not one of ``FAILURE_KINDS``.
    """

    parent: str
    text: str | None
    diff: str
    operator: str
    message: str = ""
    failure: str | None = None
    failure_message: str = ""

    def __post_init__(self) -> None:
        if (self.text is None) == (self.failure is None):
            raise ValueError(
                "a Child has either a text or a failure: pass text=None with failure=<kind>, "
                f"or a text with failure=None (got text={'None' if self.text is None else '...'}, "
                f"failure={self.failure!r})"
            )
        if self.failure is not None and self.failure not in FAILURE_KINDS:
            raise ValueError(f"unknown failure {self.failure!r}; use one of {', '.join(FAILURE_KINDS)}")
