"""Layer 5: refuse constructs a walker program never needs (defence in depth, not the wall).

Python's own escape hatches go through a handful of doors: dunder attributes
(``().__class__.__base__.__subclasses__()``), frame and code objects (``gen.gi_frame.f_globals``),
the builtins that run or fetch code (``eval``, ``exec``, ``compile``, ``__import__``,
``getattr``...), ``open``, and modules beyond the maths a walker needs. This check refuses each
of them by looking at the syntax tree, after Python has NFKC-normalised identifiers, so a
full-width ``ｅｖａｌ`` is seen as ``eval``. A determined attacker can still build strings at
run time, so the operating-system layers below are what actually contain a program.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "breakpoint",
        "input",
        "help",
        "memoryview",
        "exit",
        "quit",
        "copyright",
        "credits",
        "license",
        "__builtins__",
        "__loader__",
        "__spec__",
    }
)
"""Builtins (and module globals) a program may not name at all."""

FORBIDDEN_ATTRIBUTES = frozenset(
    {
        # frames, code, tracebacks, generators, coroutines: each leads to f_globals/builtins
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "cr_origin",
        "ag_frame",
        "ag_code",
        "ag_await",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "with_traceback",
        "func_globals",
        "mro",
        "format_map",
        # modules that library attributes re-export (numpy.f2py.os, numpy.ctypeslib.ctypes)
        "os",
        "sys",
        "subprocess",
        "ctypes",
        "ctypeslib",
        "builtins",
        "importlib",
        "inspect",
        "posix",
        "socket",
        "signal",
        "pickle",
        "marshal",
        "io",
        "pathlib",
        "shutil",
        "f2py",
        "testing",
        "SystemRandom",
    }
)
"""Attribute names refused on any object (besides every name starting with ``_``)."""

_DUNDER = re.compile(r"__\w+__")
_ALLOWED_DUNDER_NAMES = frozenset({"__name__"})


def source_problems(tree: ast.AST, *, imports: Iterable[str]) -> list[tuple[int, str]]:
    """Return every forbidden construct in ``tree``, in source order.

    Args:
        tree: A parsed program (``ast.parse``).
        imports: Top-level modules the program may import.

    Returns:
        ``[(line, message), ...]``; empty when the program passes.
    """
    allowed = frozenset(imports)
    found: list[tuple[int, str]] = []
    stack: list[object] = [tree]
    while stack:  # ast.walk, twice as fast: this runs for every program
        node = stack.pop()
        if not isinstance(node, ast.AST):  # str in Global.names, None in Dict.keys
            continue
        check = _CHECKS.get(node.__class__)
        if check is not None and (message := check(node, allowed)) is not None:
            found.append((getattr(node, "lineno", 0), message))
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                stack.extend(value)
            elif isinstance(value, ast.AST):
                stack.append(value)
    return sorted(found)


def _attribute_problem(node: ast.Attribute, allowed: frozenset[str]) -> str | None:
    if node.attr.startswith("_"):
        return f"access to the private or special attribute '.{node.attr}' is not allowed"
    if node.attr in FORBIDDEN_ATTRIBUTES:
        return f"the attribute '.{node.attr}' is not allowed in a walker program"
    return None


def _constant_problem(node: ast.Constant, allowed: frozenset[str]) -> str | None:
    if isinstance(node.value, str) and _DUNDER.search(node.value):
        return "strings naming special attributes (like '__class__') are not allowed"
    return None


def _names_problem(node: ast.Global | ast.Nonlocal, allowed: frozenset[str]) -> str | None:
    return next((p for p in map(_name_problem, node.names) if p), None)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _name_problem(name: str) -> str | None:
    if name in FORBIDDEN_NAMES:
        return f"'{name}' is not allowed in a walker program"
    if _is_dunder(name) and name not in _ALLOWED_DUNDER_NAMES:
        return f"the special name '{name}' is not allowed in a walker program"
    return None


def _import_problem(node: ast.Import | ast.ImportFrom, allowed: frozenset[str]) -> str | None:
    choices = ", ".join(sorted(allowed)) or "nothing"
    if isinstance(node, ast.ImportFrom):
        if node.level or not node.module:
            return f"relative imports are not allowed; programs may import only {choices}"
        modules = [node.module]
        private = [a.name for a in node.names if a.name.startswith("_")]
        if private:
            return f"importing the private name '{private[0]}' is not allowed"
    else:
        modules = [alias.name for alias in node.names]
    for module in modules:
        if module not in allowed:
            return f"import of '{module}' is not allowed; programs may import only {choices}"
    return None


_CHECKS = {
    ast.Name: lambda node, allowed: _name_problem(node.id),
    ast.Attribute: _attribute_problem,
    ast.Import: _import_problem,
    ast.ImportFrom: _import_problem,
    # defining __init__ or __str__ is harmless; reaching one through an attribute is not
    ast.FunctionDef: lambda node, allowed: None if _is_dunder(node.name) else _name_problem(node.name),
    ast.AsyncFunctionDef: lambda node, allowed: None if _is_dunder(node.name) else _name_problem(node.name),
    ast.ClassDef: lambda node, allowed: _name_problem(node.name),
    ast.arg: lambda node, allowed: _name_problem(node.arg),
    ast.Global: _names_problem,
    ast.Nonlocal: _names_problem,
    ast.Constant: _constant_problem,
    # every other place a program can bind a name of its choosing
    ast.alias: lambda node, allowed: _name_problem(node.asname) if node.asname else None,
    ast.keyword: lambda node, allowed: _name_problem(node.arg) if node.arg else None,
    ast.ExceptHandler: lambda node, allowed: _name_problem(node.name) if node.name else None,
    ast.MatchAs: lambda node, allowed: _name_problem(node.name) if node.name else None,
    ast.MatchStar: lambda node, allowed: _name_problem(node.name) if node.name else None,
    ast.MatchMapping: lambda node, allowed: _name_problem(node.rest) if node.rest else None,
}
