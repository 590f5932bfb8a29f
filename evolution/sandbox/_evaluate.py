"""The one-call entry points, over a lazily started default pool."""

from __future__ import annotations

import threading

from evolution.sandbox._failure import ProgramFailure
from evolution.sandbox._limits import DEFAULT_SANDBOX_LIMITS, SandboxLimits
from evolution.sandbox._outcome import ProgramRun
from evolution.sandbox._pool import SandboxPool
from evolution.types import WalkerSpec

_default: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """Return this process's shared one-worker pool, creating it on first use."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = SandboxPool(workers=1)
        return _default


def run_program(
    text: str,
    *,
    limits: SandboxLimits = DEFAULT_SANDBOX_LIMITS,
    seed: int | None = None,
    pool: SandboxPool | None = None,
) -> ProgramRun:
    """Run untrusted ``text`` in the sandbox; return its result and what it printed.

    Args:
        text: Program text defining ``make_walker()``.
        limits: Resource limits and language rules.
        seed: Seed of ``random``; by default derived from ``text``.
        pool: The pool to use; by default ``default_pool()``.
    """
    return (pool or default_pool()).run(text, limits=limits, seed=seed)


def evaluate_program(
    text: str,
    *,
    limits: SandboxLimits = DEFAULT_SANDBOX_LIMITS,
    seed: int | None = None,
    pool: SandboxPool | None = None,
) -> WalkerSpec | ProgramFailure:
    """Run untrusted ``text``'s ``make_walker()`` in the sandbox.

    Never raises for anything the program does: every problem is a ``ProgramFailure``.

    Args:
        text: Program text defining ``make_walker()``.
        limits: Resource limits and language rules.
        seed: Seed of ``random``; by default derived from ``text``.
        pool: The pool to use; by default ``default_pool()``.

    Returns:
        A validated ``WalkerSpec``, or the ``ProgramFailure`` saying why there is none.

    Raises:
        TypeError: If ``text`` is not a string.
        SandboxUnavailable: If the sandbox server cannot start at all.
    """
    return run_program(text, limits=limits, seed=seed, pool=pool).result


def isolation_report(*, pool: SandboxPool | None = None) -> dict[str, bool | str]:
    """Which isolation layers are active on this machine (for logs and the health page).

    Values are ``True`` or a short description when a layer is active, ``False`` when not.
    Starts the pool's first server if needed.
    """
    return (pool or default_pool()).isolation_report()
