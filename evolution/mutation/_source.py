"""Program text addressed by AST node positions and edited by replacing spans of it.

Editing the text in place, rather than regenerating it with ``ast.unparse``, keeps comments and
formatting, so a child differs from its parent only on the lines an edit touched.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

_NEWLINE = re.compile(r"\r\n|\r|\n")  # the line ends Python's tokenizer counts


@dataclass(frozen=True, slots=True)
class Span:
    """Replace ``text[start:end]`` by ``replacement`` (character offsets)."""

    start: int
    end: int
    replacement: str


class Source:
    """A program text with line tables for turning AST positions into character offsets.

    Args:
        text: The program text that the AST was parsed from.
    """

    __slots__ = ("text", "newline", "_starts", "_ascii")

    def __init__(self, text: str) -> None:
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self._starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]
        self._ascii = text.isascii()

    def offset(self, lineno: int, col: int) -> int:
        """Character offset of AST position ``(lineno, col)``; ``col`` counts UTF-8 bytes."""
        start = self._starts[lineno - 1]
        if self._ascii:
            return start + col
        line = self.text[start : self.line_end(lineno)]
        return start + len(line.encode("utf-8")[:col].decode("utf-8", errors="replace"))

    def start(self, node: ast.AST) -> int:
        """Offset of the first character of ``node``."""
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: ast.AST) -> int:
        """Offset just past the last character of ``node``."""
        return self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, node: ast.AST) -> str:
        """The source text of ``node`` (without enclosing parentheses)."""
        return self.text[self.start(node) : self.end(node)]

    def line_start(self, lineno: int) -> int:
        """Offset of the first character of line ``lineno`` (1-based)."""
        return self._starts[lineno - 1]

    def line_end(self, lineno: int) -> int:
        """Offset of the line break ending line ``lineno`` (or of the end of the text)."""
        if lineno >= len(self._starts):
            return len(self.text)
        after = self._starts[lineno]
        return after - 2 if self.text.startswith("\r\n", after - 2) else after - 1

    def after_line(self, lineno: int) -> int:
        """Offset just past the line break ending line ``lineno`` (or the end of the text)."""
        return self._starts[lineno] if lineno < len(self._starts) else len(self.text)

    def indent(self, node: ast.AST) -> str:
        """The text between the start of ``node``'s first line and ``node``."""
        return self.text[self.line_start(node.lineno) : self.start(node)]

    def owns_lines(self, node: ast.AST) -> bool:
        """Whether ``node`` alone fills its lines: only indentation before it, and nothing
        after it but an optional comment (so no ``;`` neighbour and no ``if x: y`` header)."""
        if self.indent(node).strip():
            return False
        rest = self.text[self.end(node) : self.line_end(node.end_lineno)].lstrip()
        return not rest or rest.startswith("#")

    def insert_after(self, node: ast.AST, lines: str) -> Span:
        """A span inserting ``lines`` (no trailing line break) after ``node``'s last line."""
        at = self.after_line(node.end_lineno)
        if at == self.line_end(node.end_lineno):  # the last line has no line break
            return Span(at, at, self.newline + lines)
        return Span(at, at, lines + self.newline)

    def apply(self, spans: Iterable[Span], *, start: int = 0, end: int | None = None) -> str:
        """Return ``text[start:end]`` with non-overlapping ``spans`` (inside it) replaced.

        Raises:
            ValueError: If two spans overlap.
        """
        end = len(self.text) if end is None else end
        pieces, at = [], start
        for span in sorted(spans, key=lambda s: (s.start, s.end)):
            if span.start < at:
                raise ValueError(f"overlapping edits at offset {span.start}; make spans disjoint")
            pieces += [self.text[at : span.start], span.replacement]
            at = span.end
        pieces.append(self.text[at:end])
        return "".join(pieces)
