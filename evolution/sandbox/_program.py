"""A program's two steps: compile (in the fork server) and run (in the locked-down child).

Compiling in the server is what keeps the sandbox fast: a forked child pays a page fault for
every page it writes (copy on write), which makes parsing and compiling there three to five
times slower (about 1.5 ms a program on this machine). The server only *parses* untrusted
text (``ast.parse`` and ``compile``, the operations ``ast.literal_eval`` already performs on
untrusted input): it never executes it, and the child inherits the code object through the
fork. The worst a text can do there is crash the parser, which kills the server; the pool
restarts it and reports ``crashed``. Even then the server's own seccomp filter leaves it no
way to run a program, open a socket or write a file. Syntax errors and forbidden constructs
are answered without forking at all.

Both steps return plain data for failures: ``{"failure": {"kind", "message", "line",
"detail"}}``; a success of ``run_compiled`` is ``{"ok": walker.to_dict()}``. Everything a
program can influence (exception names, messages, values) is cut to size here and checked
again by the parent.
"""

from __future__ import annotations

import ast
import functools
import math
import random
from types import CodeType
from typing import Any

from evolution.sandbox._failure import FailureKind
from evolution.sandbox._source_check import source_problems
from evolution.sodarace._limits import InvalidWalker, WalkerLimits
from evolution.sodarace._program import PROGRAM_FILENAME
from evolution.sodarace._walker import walker_creator
from evolution.types import WalkerSpec

_MAX_TEXT = 2000


def compile_program(
    text: str, *, imports: list[str] | tuple[str, ...], check_source: bool
) -> CodeType | dict[str, Any]:
    """Parse ``text``, run the source check, compile it. Executes nothing.

    Python's SyntaxWarnings go through ``warnings`` as usual (the fork server ignores them).

    Returns:
        The code object, or a ``syntax`` or ``forbidden`` failure.
    """
    try:
        tree = ast.parse(text, filename=PROGRAM_FILENAME)
        if check_source:
            problems = source_problems(tree, imports=imports)
            if problems:
                line, message = problems[0]
                return failure(FailureKind.FORBIDDEN, message, line, {"count": len(problems)})
        return compile(tree, PROGRAM_FILENAME, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return failure(FailureKind.SYNTAX, f"invalid Python: {text_of(exc.msg)}", exc.lineno)
    except (ValueError, UnicodeError, RecursionError, MemoryError, OverflowError) as exc:
        return failure(FailureKind.SYNTAX, f"the text cannot be read as Python: {text_of(exc)}")


def run_compiled(code: CodeType, *, seed: int, limits: dict[str, Any]) -> dict[str, Any]:
    """Execute ``code`` and call its ``make_walker()``. Only in a locked-down child.

    Args:
        code: From ``compile_program``.
        seed: Seed of ``random`` (and of ``numpy.random`` when numpy is allowed).
        limits: ``SandboxLimits.to_dict()``.

    Returns:
        ``{"ok": spec_dict}`` or a failure.
    """
    _seed(seed, numpy="numpy" in limits["imports"])
    creator = functools.partial(walker_creator, WalkerLimits(**limits["walker"]))
    namespace: dict[str, Any] = {"__name__": "walker_program", "walker_creator": creator}
    try:
        exec(code, namespace)  # noqa: S102 - inside the locked-down child
        make = namespace.get("make_walker")
        if not callable(make):
            return failure(
                FailureKind.NO_MAKE_WALKER,
                "the program defines no make_walker() function; define one that returns wc.get_walker()",
            )
        spec = make()
    except InvalidWalker as exc:
        detail = {"rule": text_of(exc.rule), "values": {text_of(k): _plain(v) for k, v in exc.values.items()}}
        return failure(FailureKind.INVALID_WALKER, text_of(exc.message), _program_line(exc), detail)
    except MemoryError as exc:
        return failure(FailureKind.MEMORY, "the program ran out of memory", _program_line(exc))
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are program failures too
        return _exception_failure(exc)
    if type(spec) is not WalkerSpec:
        return failure(
            FailureKind.NOT_A_WALKER,
            f"make_walker() returned {text_of(type(spec).__name__, 80)}, not a walker; end it with "
            "'return wc.get_walker()'",
        )
    return {"ok": spec.to_dict()}


def failure(
    kind: FailureKind, message: str, line: int | None = None, detail: dict | None = None
) -> dict[str, Any]:
    """Return a failure as plain data."""
    return {"failure": {"kind": kind.value, "message": message, "line": line, "detail": detail or {}}}


def text_of(value: Any, limit: int = _MAX_TEXT) -> str:
    """``str(value)``, cut to ``limit`` characters."""
    text = value if type(value) is str else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _seed(seed: int, *, numpy: bool) -> None:
    random.seed(seed)
    if numpy:
        import sys

        np = sys.modules.get("numpy")  # only if the server preloaded it
        if np is not None:
            np.random.seed(seed % 2**32)


def _exception_failure(exc: BaseException) -> dict[str, Any]:
    name = text_of(type(exc).__name__, 80)
    try:
        message = text_of(exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__
        message = ""
    return failure(
        FailureKind.EXCEPTION, f"{name}: {message}" if message else name, _program_line(exc), {"type": name}
    )


def _program_line(exc: BaseException) -> int | None:
    """The innermost line of the program in the traceback (frames named ``<walker>``)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == PROGRAM_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _plain(value: Any) -> Any:
    if value is None or type(value) in (bool, int):
        return value
    if type(value) is str:
        return text_of(value, 200)
    if type(value) is float:
        return value if math.isfinite(value) else repr(value)
    return text_of(repr(value), 200)
