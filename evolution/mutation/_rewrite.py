"""Turning a rewrite completion into a child program: cut it, or pull code out of a chat answer."""

from __future__ import annotations

import ast
import re

ENTRY_POINT = "make_walker"
DEF_LINE = f"def {ENTRY_POINT}():"

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def cut_function(completion: str) -> str:
    """The function body a completion after ``def make_walker():`` continues with.

    The completion is cut at its first top-level statement: the first line, after the one the
    ``def`` line continues, that starts at column 0 and is neither blank nor a comment. Blank
    and comment lines at the end of what is left are dropped too.
    """
    lines = completion.split("\n")
    keep = lines[:1]
    for line in lines[1:]:
        if line[:1] not in ("", " ", "\t", "#"):
            break
        keep.append(line)
    while len(keep) > 1 and (not keep[-1].strip() or keep[-1].startswith("#")):
        keep.pop()
    return "\n".join(keep)


def replace_entry_point(parent: str, function: str) -> str:
    """``parent`` with its top-level ``make_walker`` definition (decorators included) replaced
    by ``function``; helpers and everything else keep their text. ``function`` is appended when
    the parent has no ``make_walker``. The parent's line endings are kept.

    Raises:
        SyntaxError, ValueError: If ``parent`` does not parse.
    """
    tree = ast.parse(parent)
    newline = "\r\n" if "\r\n" in parent else "\n"
    function = function.replace("\r\n", "\n").replace("\n", newline)
    lines = parent.splitlines(keepends=True)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == ENTRY_POINT:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            after = lines[node.end_lineno :]
            ending = newline if after or lines[node.end_lineno - 1].endswith(("\n", "\r")) else ""
            return "".join(lines[:first]) + function.rstrip("\r\n") + ending + "".join(after)
    body = parent if not parent or parent.endswith(("\n", "\r")) else parent + newline
    return body + newline + newline + function.rstrip("\r\n") + newline


def extract_code(answer: str) -> str:
    """The program in a chat answer: the first ```python (or ```py) block, else the first fenced
    block of any language, else the whole answer. An unclosed block runs to the end."""
    blocks = [(lang.lower(), code) for lang, code in _FENCE.findall(answer)]
    for lang, code in blocks:
        if lang in ("python", "py", "python3"):
            return code
    if blocks:
        return blocks[0][1]
    return answer.strip("\n") + "\n"
