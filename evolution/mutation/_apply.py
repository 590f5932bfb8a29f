"""``apply_diff``: apply a unified diff written by a language model, tolerating its usual mistakes.

Why not a library: unidiff and patch-ng validate the hunk header counts and reject a hunk whose
body is shorter or longer than its header says (``UnidiffParseError: Hunk is shorter than
expected``), and unidiff rejects a hunk without ``---``/``+++`` headers; whatthepatch applies
hunks only where every context line matches exactly; diff-match-patch has its own
character-level patch format, not unified diffs. Models write wrong counts, drop headers, and
misremember context lines (the embedded model's probe found only 54% of its context and ``-``
lines verbatim in the parent), so the parser and the matcher here are written for that.

Parsing: ``---``/``+++`` headers are optional; any line starting with ``@@`` opens a hunk and its
numbers are only a hint of where it goes; a bare empty line inside a hunk is a blank context
line; ``\\ No newline at end of file`` is honoured; CRLF diffs are read as LF; whatever follows
the last hunk (or a second file's header) is ignored.

Matching: each hunk's "before" block (its context and ``-`` lines) is looked for in the parent,
after the previous hunk (hunks never overlap and keep their order). An exact match wins; else
every block line must be at least ``similarity`` alike (``difflib.SequenceMatcher.ratio`` of the
whitespace-stripped lines) to the parent line it stands for, and the position with the best mean
score wins. Ties go to the position nearest the header's line number, shifted by how far the
previous hunk was from its own header (walker programs repeat lines, and models often give one
line of context). Context lines keep the parent's text; untouched lines keep their line endings.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

_HUNK_HEADER = re.compile(r"@@+\s*(?:-(\d+))?")
_NO_NEWLINE = "\\"  # "\ No newline at end of file" (any text after the backslash)
_TIE = 1e-9


@dataclass(frozen=True, slots=True)
class Applied:
    """The result of ``apply_diff``: the patched text, or why there is none.

    Attributes:
        text: The parent with the diff applied, or ``None`` on failure.
        failure: ``None``, or one of ``"no_diff"``, ``"malformed_diff"``, ``"does_not_apply"``,
            ``"no_change"`` (see ``FAILURE_KINDS``).
        message: What happened, for people (which hunk failed and why).
        hunks: Hunks applied (hunks without changes are not counted).
        fuzzy_hunks: How many of them needed similarity matching rather than an exact match.
    """

    text: str | None
    failure: str | None = None
    message: str = ""
    hunks: int = 0
    fuzzy_hunks: int = 0

    @property
    def ok(self) -> bool:
        """Whether the diff applied and changed the parent."""
        return self.failure is None


@dataclass(slots=True)
class _Hunk:
    """One parsed hunk: ``rows`` are ``(kind, content, no_newline)`` with kind in ``" -+"``."""

    line: int | None  # 1-based "before" start line from the header, if it had one
    rows: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def before(self) -> list[str]:
        return [content for kind, content, _ in self.rows if kind != "+"]

    @property
    def changes(self) -> bool:
        return any(kind != " " for kind, _, _ in self.rows)


def apply_diff(parent: str, diff: str, *, similarity: float = 0.75) -> Applied:
    """Apply a one-file unified diff (typically a model's completion) to ``parent``.

    Args:
        parent: The program text the diff was written against.
        diff: The diff; text after its last hunk is ignored.
        similarity: The least ``SequenceMatcher`` ratio, in [0, 1], between a hunk line and the
            parent line it is matched to when no exact match exists; 1 allows only differences
            in leading and trailing whitespace.

    Returns:
        An ``Applied`` with the child text, or with ``failure`` set: ``"no_diff"`` (the text
        holds no diff at all), ``"malformed_diff"`` (diff-like text without a usable hunk),
        ``"does_not_apply"`` (a hunk matches no part of the parent) or ``"no_change"`` (the
        result equals the parent).

    Raises:
        ValueError: If ``similarity`` is outside [0, 1].
    """
    if not 0.0 <= similarity <= 1.0:
        raise ValueError(f"similarity must be in [0, 1], got {similarity!r}")
    rows = [row.rstrip("\r") for row in diff.replace("\r\n", "\n").split("\n")]
    if not diff.strip():
        return Applied(None, "no_diff", "the completion is empty")
    hunks = _parse(rows)
    if not hunks:
        if any(row[:1] in ("+", "-") or row.startswith("@@") for row in rows):
            return Applied(None, "malformed_diff", "the diff has no hunk with a body after an '@@' header")
        return Applied(None, "no_diff", "the completion holds no diff (no '@@' hunk, no '+' or '-' line)")
    return _apply(parent, hunks, similarity)


def _parse(rows: list[str]) -> list[_Hunk]:
    """The hunks of a diff with at least one body line each, in order."""
    hunks: list[_Hunk] = []
    current: _Hunk | None = None
    for i, row in enumerate(rows):
        if hunks and (row.startswith("diff --git") or _is_file_header(rows, i)):
            break  # a second file: the rest is not about this program
        if row.startswith("@@"):
            match = _HUNK_HEADER.match(row)
            current = _Hunk(int(match[1]) if match and match[1] else None)
            hunks.append(current)
        elif current is None:
            continue  # headers and whatever precedes the first hunk
        elif row[:1] in (" ", "-", "+"):
            current.rows.append((row[0], row[1:], False))
        elif row == "":
            current.rows.append((" ", "", False))  # a blank context line that lost its space
        elif row.startswith(_NO_NEWLINE):
            if current.rows:
                kind, content, _ = current.rows[-1]
                current.rows[-1] = (kind, content, True)
        else:
            current = None  # garbage ends the hunk; only a new "@@" starts another
    for hunk in hunks:  # trailing bare blank lines are the end of the text, not context
        while hunk.rows and hunk.rows[-1] == (" ", "", False):
            hunk.rows.pop()
    return [hunk for hunk in hunks if hunk.rows]


def _is_file_header(rows: list[str], i: int) -> bool:
    return rows[i].startswith("--- ") and i + 1 < len(rows) and rows[i + 1].startswith("+++ ")


def _apply(parent: str, hunks: list[_Hunk], similarity: float) -> Applied:
    lines = parent.split("\n")  # the last item is the text after the last "\n" (maybe "")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    contents = [line.removesuffix("\r") for line in lines]
    newline = "\r\n" if 2 * parent.count("\r\n") > parent.count("\n") else "\n"  # the majority
    out: list[tuple[str, str | None]] = []  # (content, line ending or None for "default")
    at, offset, applied, fuzzy = 0, 0, 0, 0
    for number, hunk in enumerate(hunks, 1):
        if not hunk.changes:
            continue
        where = _locate(contents, hunk, at, offset, similarity)
        if where is None:
            why = _mismatch(hunk, number, len(hunks), contents, similarity)
            return Applied(None, "does_not_apply", why, applied, fuzzy)
        start, exact = where
        for j in range(at, start):
            out.append((contents[j], _ending(lines[j], j, len(lines), ends_with_newline)))
        j = start
        for kind, content, no_newline in hunk.rows:
            if kind == " ":
                out.append((contents[j], _ending(lines[j], j, len(lines), ends_with_newline)))
            if kind == "+":
                out.append((content, "" if no_newline else None))
            if kind != "+":
                j += 1
        if hunk.line is not None:
            offset = start - _expected(hunk, 0)
        at, applied, fuzzy = j, applied + 1, fuzzy + (not exact)
    if not applied:
        return Applied(None, "no_change", "every hunk has only context lines")
    for j in range(at, len(lines)):
        out.append((contents[j], _ending(lines[j], j, len(lines), ends_with_newline)))
    text = _join(out, newline)
    if text == parent:
        return Applied(None, "no_change", "the diff applies but leaves the program as it was", applied, fuzzy)
    note = f" ({fuzzy} matched by similarity)" if fuzzy else ""
    return Applied(text, None, f"applied {applied} hunk{'s' * (applied != 1)}{note}", applied, fuzzy)


def _ending(line: str, j: int, count: int, ends_with_newline: bool) -> str:
    """The line ending parent line ``j`` had ("" for a last line without one)."""
    if j == count - 1 and not ends_with_newline:
        return ""
    return "\r\n" if line.endswith("\r") else "\n"


def _join(out: list[tuple[str, str | None]], newline: str) -> str:
    """Join lines; a line that lost its "last line" place gets a newline, new lines the parent's."""
    pieces = []
    for i, (content, ending) in enumerate(out):
        if ending is None or (ending == "" and i < len(out) - 1):
            ending = newline
        pieces.append(content + ending)
    return "".join(pieces)


def _expected(hunk: _Hunk, offset: int) -> int:
    """0-based parent index where the header says the "before" block starts, plus ``offset``."""
    line = hunk.line or 0
    # "-N,0" (nothing removed, no context) means "insert after line N"; otherwise N is the first line
    return (line if not hunk.before else line - 1) + offset


def _locate(
    contents: list[str], hunk: _Hunk, at: int, offset: int, similarity: float
) -> tuple[int, bool] | None:
    """Start index of the hunk's "before" block in ``contents[at:]``, and whether it is exact."""
    before = hunk.before
    last = len(contents) - len(before)
    if last < at:
        return None
    expected = _expected(hunk, offset) if hunk.line is not None else at

    def distance(p: int) -> int:
        return abs(p - expected)

    if not before:  # a pure insertion: only the header says where
        if hunk.line is None:
            return None
        return min(max(expected, at), len(contents)), True
    exact = [p for p in range(at, last + 1) if contents[p : p + len(before)] == before]
    if exact:
        return min(exact, key=distance), True
    wanted = [line.strip() for line in before]
    best: tuple[float, int] | None = None  # (score, position)
    for p in range(at, last + 1):
        score = _block_score(wanted, contents, p, similarity)
        if score is None:
            continue
        if best is None or score > best[0] + _TIE or (score > best[0] - _TIE and distance(p) < distance(best[1])):
            best = (score, p)
    return None if best is None else (best[1], False)


def _block_score(wanted: list[str], contents: list[str], p: int, similarity: float) -> float | None:
    """Mean line similarity of ``wanted`` against ``contents[p:]``, or ``None`` if a line is below
    ``similarity``."""
    total = 0.0
    for i, want in enumerate(wanted):
        have = contents[p + i].strip()
        if want == have:
            total += 1.0
            continue
        matcher = difflib.SequenceMatcher(None, want, have, autojunk=False)
        if matcher.real_quick_ratio() < similarity or matcher.quick_ratio() < similarity:
            return None
        ratio = matcher.ratio()
        if ratio < similarity:
            return None
        total += ratio
    return total / len(wanted)


def _mismatch(hunk: _Hunk, number: int, count: int, contents: list[str], similarity: float) -> str:
    """Why hunk ``number`` did not apply, for people: its line least like any parent line."""
    where = f" (header line {hunk.line})" if hunk.line is not None else ""
    if not hunk.before:
        return f"hunk {number} of {count} only adds lines and its header gives no line number"
    parent = {line.strip() for line in contents}
    best, worst = 1.0, hunk.before[0].strip()
    for line in hunk.before:
        want = line.strip()
        if want in parent:
            continue
        score = max((difflib.SequenceMatcher(None, want, have, autojunk=False).ratio() for have in parent), default=0.0)
        if score < best:
            best, worst = score, want
    if best >= similarity:
        why = "its lines exist in the parent but not together in this order after the previous hunk"
    else:
        why = f"its line {worst[:60]!r} is like no parent line (best similarity {best:.2f} < {similarity:g})"
    return f"hunk {number} of {count}{where} does not match the parent: {why}"
