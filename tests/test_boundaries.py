"""Architecture boundary: the engine (evolution/) never imports the web stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "evolution"
FORBIDDEN = frozenset({"django", "celery", "channels"})
_DYNAMIC_IMPORTERS = frozenset({"__import__", "import_module"})


def forbidden_imports(source: str, *, forbidden: frozenset[str] = FORBIDDEN) -> list[str]:
    """Return the forbidden top-level packages that ``source`` imports, in source order.

    Covers ``import x``, ``from x import y`` (absolute only) and calls
    ``__import__("x")`` / ``importlib.import_module("x")`` with a literal name.

    Args:
        source: Python source text.
        forbidden: Top-level package names that must not be imported.

    Returns:
        ``["<package> (line N)", ...]``; empty when the source is clean.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and _called_name(node.func) in _DYNAMIC_IMPORTERS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names = [first.value]
        tops = [name.split(".")[0] for name in names]
        found += [(node.lineno, top) for top in tops if top in forbidden]
    return [f"{top} (line {line})" for line, top in sorted(found)]


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def test_the_checker_finds_every_kind_of_forbidden_import() -> None:
    source = "\n".join(
        [
            "import os, django.db",
            "from celery import shared_task",
            "import channels.layers as layers",
            "importlib.import_module('django.conf')",
            "__import__('celery')",
        ]
    )

    assert forbidden_imports(source) == [
        "django (line 1)",
        "celery (line 2)",
        "channels (line 3)",
        "django (line 4)",
        "celery (line 5)",
    ]


def test_the_checker_ignores_lookalikes_and_relative_imports() -> None:
    source = "\n".join(
        [
            "import djangofoo",
            "from .django import x",
            "from . import celery",
            "from evolution.channels import split",
            "name = 'django'",
        ]
    )

    assert forbidden_imports(source) == []


def test_the_engine_imports_no_django_celery_or_channels() -> None:
    if not ENGINE.is_dir():
        pytest.skip("evolution/ does not exist yet")
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted(ENGINE.rglob("*.py"))
        if (found := forbidden_imports(path.read_text(encoding="utf-8")))
    }

    assert offenders == {}, f"evolution/ must stay free of the web stack: {offenders}"
