"""Language-model mutation operators: ``DiffMutation`` (the paper's diff model) and
``RewriteMutation`` (its prompt-based alternative). Both send a whole batch to the backend in
one call and turn every failure into a ``Child`` with ``failure`` set."""

from __future__ import annotations

import ast
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evolution.mutation._apply import apply_diff
from evolution.mutation._backends import MODES, Backend, check_sampling
from evolution.mutation._child import Child
from evolution.mutation._diff import unified_diff
from evolution.mutation._prompts import (
    DIFF_MESSAGE_WEIGHTS,
    DIFF_MESSAGES,
    DIFF_TAGS,
    FILENAME,
    diff_prompt,
    draw_messages,
    rewrite_chat_messages,
    rewrite_prompt,
)
from evolution.mutation._rewrite import DEF_LINE, cut_function, extract_code, replace_entry_point

log = logging.getLogger(__name__)

DIFF_STOP: tuple[str, ...] = DIFF_TAGS
"""A diff ends where the model starts another example's section."""

REWRITE_STOP: tuple[str, ...] = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(")
"""Top-level statements that end a rewritten ``make_walker`` early (the rest is cut anyway)."""

_SHOWN = 200  # characters of a bad completion kept in a failure message


class _LanguageModelOperator:
    """Sampling settings, input checks and the guarded backend call both operators share."""

    name = ""

    def __init__(self, backend: Backend, *, max_new_tokens: int, temperature: float, top_p: float) -> None:
        check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.backend!r}, max_new_tokens={self.max_new_tokens}, "
            f"temperature={self.temperature}, top_p={self.top_p})"
        )

    def _check(self, parents: Sequence[str], rng: np.random.Generator) -> None:
        if isinstance(parents, str):
            raise TypeError("parents must be a sequence of program texts; wrap one text in a list")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); got {type(rng).__name__}"
            )

    def _call(
        self, method: Callable[..., Any], inputs: list[Any], *, stop: Sequence[str], seed: int
    ) -> list[str] | str:
        """The backend's completions for ``inputs``, or why there are none (never raises)."""
        try:
            out = method(
                inputs,
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                stop=list(stop),
                seed=seed,
            )
        except Exception as exc:  # any backend failure is a recorded child failure, never a crashed run
            log.warning("%s mutation: the model call for %d parents failed: %s", self.name, len(inputs), exc)
            log.debug("backend failure", exc_info=True)
            return f"{type(exc).__name__}: {exc}"
        if not isinstance(out, list) or len(out) != len(inputs) or not all(isinstance(t, str) for t in out):
            shape = f"{len(out)} items" if isinstance(out, list) else type(out).__name__
            return f"the backend returned {shape} for {len(inputs)} inputs; expected one string per input"
        return out

    def _failed(self, parent: str, kind: str, why: str, message: str = "") -> Child:
        return Child(parent, None, "", self.name, message=message, failure=kind, failure_message=why)

    def _child(self, parent: str, text: str, message: str) -> Child:
        """A child from ``text``, unless it does not parse or equals the parent."""
        try:
            ast.parse(text)
        except (SyntaxError, ValueError) as exc:
            return self._failed(parent, "unparseable_child", f"the child is not Python: {exc}", message)
        if text == parent:
            return self._failed(parent, "no_change", "the model gave back the parent unchanged", message)
        return Child(parent, text, unified_diff(parent, text), self.name, message=message)

    def _log(self, children: list[Child]) -> None:
        if log.isEnabledFor(logging.DEBUG):
            kinds = Counter(child.failure or "ok" for child in children)
            log.debug("%s mutation: %s", self.name, dict(kinds))


class DiffMutation(_LanguageModelOperator):
    """The paper's diff operator: a diff model writes a unified diff of each parent.

    For a batch of parents it draws one commit message each (40/30/30 from
    ``DIFF_MESSAGES``), builds the ``<NME> <BEF> <MSG> <DFF>`` prompts, asks the backend for
    all completions in one call, and applies each with ``apply_diff`` (tolerant parsing, fuzzy
    hunk matching). ``Child.message`` is the commit message; ``Child.diff`` is recomputed from
    parent and child, so it is always a clean diff of what changed.

    Args:
        backend: The model (``TransformersBackend``, ``OpenAIBackend``, ...); its completions
            endpoint is used whatever its ``mode``.
        messages: Commit messages to draw from.
        message_weights: How often each message is drawn.
        max_new_tokens: Most tokens per diff.
        temperature: Sampling temperature (0: greedy).
        top_p: Nucleus sampling mass.
        similarity: ``apply_diff``'s least line similarity for fuzzy hunk matching.
        filename: The file name after ``<NME>``.

    Raises:
        ValueError: For bad sampling settings, ``similarity`` outside [0, 1], or messages and
            weights of different lengths, negative or all zero.
    """

    name = "diff"

    def __init__(
        self,
        backend: Backend,
        *,
        messages: Sequence[str] = DIFF_MESSAGES,
        message_weights: Sequence[float] = DIFF_MESSAGE_WEIGHTS,
        max_new_tokens: int = 512,
        temperature: float = 1.0,
        top_p: float = 0.95,
        similarity: float = 0.75,
        filename: str = FILENAME,
    ) -> None:
        super().__init__(backend, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        if not 0.0 <= similarity <= 1.0:
            raise ValueError(f"similarity must be in [0, 1], got {similarity!r}")
        if (
            not messages
            or len(messages) != len(message_weights)
            or any(w < 0 for w in message_weights)
            or not sum(message_weights) > 0
        ):
            raise ValueError(
                "messages and message_weights need the same non-zero length and non-negative weights "
                f"with a positive sum; got {len(messages)} messages and weights {list(message_weights)!r}"
            )
        self.messages = tuple(messages)
        self.message_weights = tuple(float(w) / sum(message_weights) for w in message_weights)
        self.similarity = similarity
        self.filename = filename

    def mutate(self, parents: Sequence[str], *, rng: np.random.Generator) -> list[Child]:
        """Return one child per parent, in order (see ``Operator.mutate``).

        Draws from ``rng``, in this order: the commit messages, then one seed for the backend's
        sampling, so the same generator state gives the same children where the backend is
        deterministic for a seed.

        Returns:
            ``(B,)`` children; failures: ``generation_error`` (for the whole batch),
            ``no_diff``, ``malformed_diff``, ``does_not_apply``, ``no_change``,
            ``unparseable_child``.

        Raises:
            TypeError: If ``parents`` is a single string or ``rng`` is not a
                ``numpy.random.Generator``.
        """
        self._check(parents, rng)
        if not parents:
            return []
        messages = draw_messages(len(parents), rng, messages=self.messages, weights=self.message_weights)
        seed = int(rng.integers(2**31))
        prompts = [diff_prompt(p, m, filename=self.filename) for p, m in zip(parents, messages)]
        completions = self._call(self.backend.generate, prompts, stop=DIFF_STOP, seed=seed)
        if isinstance(completions, str):
            return [self._failed(p, "generation_error", completions, m) for p, m in zip(parents, messages)]
        children = [self._apply(p, c, m) for p, c, m in zip(parents, completions, messages)]
        self._log(children)
        return children

    def _apply(self, parent: str, completion: str, message: str) -> Child:
        applied = apply_diff(parent, completion, similarity=self.similarity)
        if applied.failure is not None:
            why = applied.message
            if applied.failure in ("no_diff", "malformed_diff") and completion.strip():
                why += f"; the model wrote {completion[:_SHOWN]!r}"
            return self._failed(parent, applied.failure, why, message)
        return self._child(parent, applied.text, message)


class RewriteMutation(_LanguageModelOperator):
    """The paper's prompt-based alternative: a code model rewrites ``make_walker``.

    Completion models get the parent, an instruction comment and ``def make_walker():``; the
    completion is cut at the next top-level statement and replaces the parent's
    ``make_walker`` (helper functions are kept). Chat models get ``rewrite_chat_messages`` and
    their first ```python block (or the whole answer) is the child program.

    Args:
        backend: The model.
        mode: ``"completions"`` or ``"chat"``; ``None``: the backend's ``mode``.
        max_new_tokens: Most tokens per answer.
        temperature: Sampling temperature (0: greedy).
        top_p: Nucleus sampling mass.

    Raises:
        ValueError: For bad sampling settings or an unknown ``mode``.
    """

    name = "rewrite"

    def __init__(
        self,
        backend: Backend,
        *,
        mode: str | None = None,
        max_new_tokens: int = 512,
        temperature: float = 1.0,
        top_p: float = 0.95,
    ) -> None:
        super().__init__(backend, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        mode = mode or getattr(backend, "mode", "completions")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode

    def mutate(self, parents: Sequence[str], *, rng: np.random.Generator) -> list[Child]:
        """Return one child per parent, in order (see ``Operator.mutate``).

        Draws one seed for the backend's sampling from ``rng``.

        Returns:
            ``(B,)`` children; failures: ``generation_error`` (for the whole batch),
            ``unparseable_parent`` (completions mode), ``unparseable_child``, ``no_change``.

        Raises:
            TypeError: If ``parents`` is a single string or ``rng`` is not a
                ``numpy.random.Generator``.
        """
        self._check(parents, rng)
        if not parents:
            return []
        seed = int(rng.integers(2**31))
        if self.mode == "chat":
            conversations = [rewrite_chat_messages(p) for p in parents]
            answers = self._call(self.backend.chat, conversations, stop=(), seed=seed)
            if isinstance(answers, str):
                return [self._failed(p, "generation_error", answers) for p in parents]
            children = [self._child(p, extract_code(a), "Rewrote the program.") for p, a in zip(parents, answers)]
        else:
            prompts = [rewrite_prompt(p) for p in parents]
            completions = self._call(self.backend.generate, prompts, stop=REWRITE_STOP, seed=seed)
            if isinstance(completions, str):
                return [self._failed(p, "generation_error", completions) for p in parents]
            children = [self._replace(p, c) for p, c in zip(parents, completions)]
        self._log(children)
        return children

    def _replace(self, parent: str, completion: str) -> Child:
        try:
            text = replace_entry_point(parent, DEF_LINE + cut_function(completion))
        except (SyntaxError, ValueError) as exc:
            return self._failed(parent, "unparseable_parent", f"the parent does not parse: {exc}")
        return self._child(parent, text, "Rewrote make_walker.")
