"""A tiny unified-diff applier for the tests (the ``patch`` program may not be installed)."""

from __future__ import annotations

import re

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def apply_unified_diff(text: str, diff: str) -> str:
    """Apply a one-file unified diff to ``text``, checking every context and removed line.

    Raises:
        AssertionError: If a hunk does not match ``text``.
    """
    old, out, at = _lines(text), [], 0
    rows = _lines(diff)
    i = 0
    while i < len(rows):
        match = _HUNK.match(rows[i])
        i += 1
        if match is None:  # a file header
            continue
        start, count = int(match[1]), 1 if match[2] is None else int(match[2])
        begin = start - 1 if count else start
        assert begin >= at, f"hunk at line {start} overlaps the previous one"
        out += old[at:begin]
        at = begin
        while i < len(rows) and rows[i][:1] in (" ", "-", "+", "\\"):
            row = rows[i]
            i += 1
            if row[0] == "\\":
                continue
            body = row[1:]
            if i < len(rows) and rows[i].startswith("\\"):  # "\ No newline at end of file"
                body = body[:-1]
            if row[0] in " -":
                assert at < len(old) and old[at] == body, f"line {at + 1}: {old[at : at + 1]} != {[body]}"
                at += 1
            if row[0] in " +":
                out.append(body)
    return "".join(out + old[at:])
