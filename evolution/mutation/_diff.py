"""Unified diffs between program texts."""

from __future__ import annotations

import difflib

_NO_NEWLINE = "\\ No newline at end of file\n"


def unified_diff(parent: str, child: str, *, filename: str = "walker.py", context: int = 3) -> str:
    """Return the unified diff that turns ``parent`` into ``child``.

    The headers are ``--- a/<filename>`` and ``+++ b/<filename>`` (git's form). A last line
    without a newline is followed by ``\\ No newline at end of file``, as GNU diff writes it,
    so the diff always applies with ``patch``.

    Args:
        parent: Text before the edit.
        child: Text after the edit.
        filename: The file name shown in the headers.
        context: Unchanged lines shown around each change.

    Returns:
        The diff, or ``""`` when the texts are identical.
    """
    if parent == child:
        return ""
    lines = difflib.unified_diff(
        _lines(parent),
        _lines(child),
        fromfile=f"a/{filename}",
        tofile=f"b/{filename}",
        n=context,
    )
    return "".join(line if line.endswith("\n") else f"{line}\n{_NO_NEWLINE}" for line in lines)


def _lines(text: str) -> list[str]:
    """Split after each ``\\n`` only (``str.splitlines`` also splits on form feeds and more)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
