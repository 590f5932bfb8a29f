"""The GP edit kinds: each turns one site (``_gp_sites``) into text replacements.

Every function takes the program ``Source``, a site and the generator, and returns the spans to
replace and a one-line message, or ``None`` when this site admits no change. None of them
checks the syntax of the result: ``GPMutation`` parses every candidate and retries.
"""

from __future__ import annotations

import ast
import math

import numpy as np

from evolution.mutation._gp_sites import Call, Literal, MuscleAnchor, Statement
from evolution.mutation._source import Source, Span

Edit = tuple[list[Span], str]
"""Spans to replace and the message describing the edit."""

_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult)
_ATOMS = (ast.Name, ast.Call, ast.Attribute, ast.Subscript, ast.Constant, ast.UnaryOp)


def perturb_literal(
    source: Source, site: Literal, rng: np.random.Generator, *, sigma: float, flip_probability: float
) -> Edit | None:
    """Ints move by whole steps (±1 for indices and range bounds, else about ``sigma`` of
    their size); floats are scaled by ``1 + sigma * N(0, 1)`` (zero gets ``sigma * N(0, 1)``)
    and sometimes change sign, then are rounded to three significant digits."""
    value = site.value
    if isinstance(value, int):
        step = 1 if site.index_like else max(1, round(abs(value) * sigma * abs(rng.normal())))
        new = value + step if rng.random() < 0.5 else value - step
        text = str(new)
    else:
        new = sigma * rng.normal() if value == 0 else value * (1.0 + sigma * rng.normal())
        if rng.random() < flip_probability:
            new = -new
        new = float(f"{new:.3g}")
        if not math.isfinite(new):
            return None
        text = repr(new)
    if text.startswith("-") and site.tight and new < 0 <= value:
        text = f"({text})"
    old = source.segment(site.node)
    if text == old:
        return None
    span = Span(source.start(site.node), source.end(site.node), text)
    return [span], f"perturb literal {old} -> {text} at line {site.node.lineno}"


def duplicate_statement(source: Source, site: Statement, rng: np.random.Generator) -> Edit:
    """Repeat a statement right after itself (its trailing comment is not copied)."""
    stmt = site.node
    copy = source.indent(stmt) + source.segment(stmt)
    return [source.insert_after(stmt, copy)], f"duplicate statement at line {stmt.lineno}: {_brief(copy)}"


def delete_statement(source: Source, site: Statement, rng: np.random.Generator) -> Edit:
    """Remove a statement's lines; the only statement of a block becomes ``pass``."""
    stmt = site.node
    start, end = source.line_start(stmt.lineno), source.after_line(stmt.end_lineno)
    replacement = ""
    if site.sole:
        line_break = source.text[source.line_end(stmt.end_lineno) : end]
        replacement = f"{source.indent(stmt)}pass{line_break}"
    message = f"delete statement at line {stmt.lineno}: {_brief(source.segment(stmt))}"
    return [Span(start, end, replacement)], message


def change_loop_bound(source: Source, site: Call, rng: np.random.Generator) -> Edit:
    """Move a ``range`` start or stop by ±1 (75%) or ±2, keeping ``n - 1`` forms tidy."""
    call, arg = site.node, site.node.args[site.arg]
    delta = (1 if rng.random() < 0.75 else 2) * (1 if rng.random() < 0.5 else -1)
    spans = _shift_int(source, arg, delta)
    if spans is None:
        text = source.segment(arg)
        if not isinstance(arg, _ATOMS) and not (
            isinstance(arg, ast.BinOp) and isinstance(arg.op, _ARITHMETIC)
        ):
            text = f"({text})"
        spans = [Span(source.start(arg), source.end(arg), f"{text} {'+' if delta > 0 else '-'} {abs(delta)}")]
    old = source.segment(call)
    new = source.apply(spans, start=source.start(call), end=source.end(call))
    return spans, f"change loop bound {_brief(old)} -> {_brief(new)} at line {call.lineno}"


def swap_muscle_ends(source: Source, site: Call, rng: np.random.Generator) -> Edit | None:
    """``wc.add_muscle(a, b, ...)`` becomes ``wc.add_muscle(b, a, ...)``."""
    a, b = site.node.args[:2]
    text_a, text_b = source.segment(a), source.segment(b)
    if text_a == text_b:
        return None
    spans = [Span(source.start(a), source.end(a), text_b), Span(source.start(b), source.end(b), text_a)]
    return spans, f"swap muscle ends {_brief(text_a)}, {_brief(text_b)} at line {site.node.lineno}"


def add_muscle(source: Source, site: MuscleAnchor, rng: np.random.Generator) -> Edit | None:
    """Add a muscle between two joint expressions already used at this point, passive or
    (half the time) active with amplitude in [1, 10) and phase in [0, 1)."""
    for _ in range(8):
        i, j = rng.choice(len(site.joints), size=2, replace=False)
        ends = (site.joints[i], site.joints[j])
        if frozenset(ends) != site.pair:
            break
    else:
        return None
    args = f"{ends[0]}, {ends[1]}"
    if rng.random() < 0.5:
        amplitude, phase = round(float(rng.uniform(1.0, 10.0)), 1), round(float(rng.uniform(0.0, 1.0)), 2)
        args += f", False, {amplitude!r}, {phase!r}"
    line = f"{site.receiver}.add_muscle({args})"
    stmt = site.node
    span = source.insert_after(stmt, source.indent(stmt) + line)
    return [span], f"add muscle {_brief(line)} after line {stmt.end_lineno}"


def _shift_int(source: Source, arg: ast.expr, delta: int) -> list[Span] | None:
    """Spans adding ``delta`` to an int literal or to ``expr ± int``; ``None`` for others."""
    value = _int_value(arg)
    if value is not None:
        return [Span(source.start(arg), source.end(arg), str(value + delta))]
    if not (isinstance(arg, ast.BinOp) and isinstance(arg.op, (ast.Add, ast.Sub))):
        return None
    offset = _int_value(arg.right)
    if offset is None or isinstance(arg.right, ast.UnaryOp):
        return None
    offset = (offset if isinstance(arg.op, ast.Add) else -offset) + delta
    tail = Span(source.end(arg.left), source.end(arg), "")
    if offset == 0:
        return [tail]
    if (offset > 0) == isinstance(arg.op, ast.Add):
        return [Span(source.start(arg.right), source.end(arg.right), str(abs(offset)))]
    return [Span(tail.start, tail.end, f" {'+' if offset > 0 else '-'} {abs(offset)}")]


def _int_value(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_value(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _brief(text: str, limit: int = 72) -> str:
    """One line of at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


EDITS = {
    "perturb_literal": perturb_literal,
    "duplicate_statement": duplicate_statement,
    "delete_statement": delete_statement,
    "change_loop_bound": change_loop_bound,
    "swap_muscle_ends": swap_muscle_ends,
    "add_muscle": add_muscle,
}
"""Edit kind -> function; the keys are ``_gp_sites.EDIT_KINDS``."""
