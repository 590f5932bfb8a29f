"""``GPMutation``: the paper's genetic-programming control, random edits of the syntax tree."""

from __future__ import annotations

import ast
import bisect
import functools
import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from evolution.mutation._child import Child
from evolution.mutation._diff import unified_diff
from evolution.mutation._gp_edits import EDITS, perturb_literal
from evolution.mutation._gp_sites import EDIT_KINDS, collect_sites
from evolution.mutation._source import Source

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "perturb_literal": 4.0,
    "duplicate_statement": 1.0,
    "delete_statement": 1.0,
    "change_loop_bound": 1.0,
    "swap_muscle_ends": 1.0,
    "add_muscle": 1.0,
}
"""How often each edit kind is chosen, relative to the others, among those a program admits."""


class GPMutation:
    """Random edits of a walker program's syntax tree: the paper's non-LLM control.

    Each child gets ``edits_per_child`` edits in a row, each chosen from the kinds in
    ``EDIT_KINDS`` that the program admits: perturb a number, duplicate or delete a
    statement, move a ``range`` bound, swap a muscle's ends, add a muscle between joints
    already in use. Sites inside ``make_walker`` and the functions it refers to are chosen
    four times as often as sites elsewhere. Edits replace spans of the text located through
    the AST, so comments and layout survive and the diff shows only the touched lines. Every
    candidate text is parsed; one that does not parse, or equals the parent, is discarded and
    another edit is drawn.

    Args:
        edits_per_child: ``(low, high)``: each child gets a uniform number of edits in this
            inclusive range.
        sigma: Relative size of a number perturbation (a float ``x`` becomes about
            ``x * (1 + sigma * N(0, 1))``).
        flip_probability: Chance that a perturbed float also changes sign.
        weights: Relative frequency of each edit kind (defaults: ``DEFAULT_WEIGHTS``); a kind
            missing from the mapping, or weighted 0, is never used.
        max_attempts: Edits drawn per requested edit before giving up on it.

    Raises:
        ValueError: For an empty or inverted ``edits_per_child``, a negative ``sigma``, a
            probability outside [0, 1], unknown or all-zero ``weights``, or
            ``max_attempts < 1``.
    """

    name = "gp"

    def __init__(
        self,
        *,
        edits_per_child: tuple[int, int] = (1, 2),
        sigma: float = 0.2,
        flip_probability: float = 0.1,
        weights: Mapping[str, float] | None = None,
        max_attempts: int = 20,
    ) -> None:
        low, high = edits_per_child
        if not 1 <= low <= high:
            raise ValueError(
                f"edits_per_child must be (low, high) with 1 <= low <= high, got {edits_per_child!r}"
            )
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts!r}")
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(weights) - set(EDIT_KINDS)
        if unknown or any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError(
                f"weights must map some of {', '.join(EDIT_KINDS)} to non-negative numbers, not all "
                f"zero; got {weights!r}"
            )
        self.edits_per_child = (low, high)
        self.sigma = sigma
        self.flip_probability = flip_probability
        self.weights = {kind: float(weights.get(kind, 0.0)) for kind in EDIT_KINDS}
        self.max_attempts = max_attempts
        self._edits = {
            **EDITS,
            "perturb_literal": functools.partial(
                perturb_literal, sigma=sigma, flip_probability=flip_probability
            ),
        }

    def __repr__(self) -> str:
        return (
            f"GPMutation(edits_per_child={self.edits_per_child}, sigma={self.sigma}, "
            f"flip_probability={self.flip_probability}, weights={self.weights}, "
            f"max_attempts={self.max_attempts})"
        )

    def mutate(self, parents: Sequence[str], *, rng: np.random.Generator) -> list[Child]:
        """Return one child per parent, in order (see ``Operator.mutate``).

        Args:
            parents: ``(B,)`` parent program texts.
            rng: The only source of randomness.

        Returns:
            ``(B,)`` children. A parent that does not parse gives ``failure="unparseable_parent"``;
            one that admits no edit gives ``failure="no_change"``.

        Raises:
            TypeError: If ``parents`` is a single string or ``rng`` is not a
                ``numpy.random.Generator``.
        """
        if isinstance(parents, str):
            raise TypeError("parents must be a sequence of program texts; wrap one text in a list")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); "
                f"got {type(rng).__name__}"
            )
        return [self._child(parent, rng) for parent in parents]

    def _child(self, parent: str, rng: np.random.Generator) -> Child:
        try:
            analysis = _analyse(parent)
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes
            return Child(
                parent,
                None,
                "",
                self.name,
                failure="unparseable_parent",
                failure_message=f"the parent does not parse: {exc}",
            )
        low, high = self.edits_per_child
        text, tree, messages = parent, None, []
        for _ in range(int(rng.integers(low, high + 1))):
            if tree is not None:  # a later edit works on the last result and its tree
                source = Source(text)
                analysis = _Analysis(source, collect_sites(tree, source))
            edited = self._edit(text, parent, analysis, rng)
            if edited is None:
                break
            text, tree, message = edited
            messages.append(message)
        if not messages:
            logger.debug("GP found no edit for a parent of %d characters", len(parent))
            return Child(
                parent,
                None,
                "",
                self.name,
                failure="no_change",
                failure_message=f"no edit changed the program in {self.max_attempts} attempts",
            )
        return Child(parent, text, unified_diff(parent, text), self.name, message="; ".join(messages))

    def _edit(
        self, text: str, parent: str, analysis: _Analysis, rng: np.random.Generator
    ) -> tuple[str, ast.Module, str] | None:
        """One edit of ``text`` that parses and differs from ``text`` and ``parent``."""
        source, sites = analysis.source, analysis.sites
        kinds = [kind for kind in EDIT_KINDS if sites[kind] and self.weights[kind] > 0]
        if not kinds:
            return None
        kind_totals = list(itertools.accumulate(self.weights[kind] for kind in kinds))
        for _ in range(self.max_attempts):
            kind = kinds[_pick(kind_totals, rng)]
            options = sites[kind]
            site = options[_pick(list(itertools.accumulate(s.weight for s in options)), rng)]
            edit = self._edits[kind](source, site, rng)
            if edit is None:
                continue
            spans, message = edit
            new_text = source.apply(spans)
            if new_text in (text, parent):
                continue
            try:
                tree = ast.parse(new_text)
            except (SyntaxError, ValueError) as exc:
                logger.debug("GP edit %r gave unparseable text (%s); drawing another", message, exc)
                continue
            return new_text, tree, message
        return None


class _Analysis(NamedTuple):
    source: Source
    sites: Mapping[str, list]


@functools.lru_cache(maxsize=256)
def _analyse(text: str) -> _Analysis:
    """Parse ``text`` and find its edit sites; memoised, as elites are mutated again and again.

    Raises:
        SyntaxError, ValueError: If ``text`` does not parse.
    """
    source = Source(text)
    return _Analysis(source, collect_sites(ast.parse(text), source))


def _pick(cumulative: list[float], rng: np.random.Generator) -> int:
    """Index drawn with probability proportional to the increments of ``cumulative``."""
    return min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)
