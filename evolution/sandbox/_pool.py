"""The caller's side: a pool of fork servers, safe to share between threads.

Each worker is one fork server (see ``_handle``); the pool hands a program to an idle one. A
server that dies or stops answering is restarted on its next use, and the program it was
running becomes a ``crashed`` failure. Pools close at interpreter exit, and a process forked
from the caller (a Celery prefork child) starts its own servers instead of sharing its
parent's.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import queue
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evolution.sandbox import _frames
from evolution.sandbox._failure import FailureKind, ProgramFailure
from evolution.sandbox._handle import ServerHandle
from evolution.sandbox._limits import ALLOWED_IMPORTS, DEFAULT_SANDBOX_LIMITS, SandboxLimits
from evolution.sandbox._lockdown import OPTIONAL_LAYERS
from evolution.sandbox._outcome import ProgramRun, outcome
from evolution.types import WalkerSpec

_ANSWER_GRACE_S = 10.0
_POOLS: weakref.WeakSet[SandboxPool] = weakref.WeakSet()


class SandboxPool:
    """Fork servers that run untrusted walker programs, ``workers`` at a time.

    Thread-safe: each call takes an idle server (waiting for one if all are busy).

    Args:
        workers: Number of fork servers, so programs that can run in parallel.
        disable: Optional layers to leave off (``"seccomp"``, ``"fd_lock"``,
            ``"network_namespace"``, ``"unprivileged_user"``, ``"chroot"``). For tests that
            prove each layer on its own; never for real use.
        preload: Modules beyond ``math`` and ``random`` that programs may import (with
            ``SandboxLimits.imports`` listing them too), imported by each fork server before
            it locks itself down, e.g. ``("numpy",)`` for programs written for OpenELM.
            Each one makes every fork dearer (numpy: about 1 ms a program).

    Raises:
        ValueError: For ``workers < 1`` or an unknown layer.
    """

    def __init__(self, *, workers: int = 1, disable: Iterable[str] = (), preload: Iterable[str] = ()) -> None:
        disabled = frozenset(disable)
        if workers < 1:
            raise ValueError(f"a SandboxPool needs at least one worker, got {workers}")
        if disabled - set(OPTIONAL_LAYERS):
            raise ValueError(
                f"unknown layers {sorted(disabled - set(OPTIONAL_LAYERS))}; choose from {OPTIONAL_LAYERS}"
            )
        self.workers = workers
        self.preload = tuple(preload)
        self._servers = [
            ServerHandle(index=i, disabled=disabled, preload=self.preload) for i in range(workers)
        ]
        self._idle: queue.SimpleQueue[ServerHandle] = queue.SimpleQueue()
        for server in self._servers:
            self._idle.put(server)
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        _POOLS.add(self)

    def start(self) -> SandboxPool:
        """Start every server now (otherwise each starts on first use); return the pool.

        Raises:
            SandboxUnavailable: If a server cannot start.
        """
        for server in self._servers:
            server.start()
        return self

    def run(
        self, text: str, *, limits: SandboxLimits = DEFAULT_SANDBOX_LIMITS, seed: int | None = None
    ) -> ProgramRun:
        """Run ``text``'s ``make_walker()`` in the sandbox.

        Args:
            text: Untrusted program text.
            limits: Resource limits and language rules.
            seed: Seed of ``random`` for this program; by default derived from ``text``,
                so the same text always builds the same walker.

        Returns:
            The result (a validated ``WalkerSpec`` or a ``ProgramFailure``) and the output.

        Raises:
            TypeError: If ``text`` is not a string.
            RuntimeError: If the pool is closed.
            SandboxUnavailable: If no server can be started at all.
            ValueError: If ``limits.imports`` names a module the servers did not preload.
        """
        if not isinstance(text, str):
            raise TypeError(f"program text must be a str, got {type(text).__name__}")
        missing = set(limits.imports) - set(ALLOWED_IMPORTS) - set(self.preload)
        if missing:
            fix = f"SandboxPool(preload={tuple(sorted(missing))!r})"
            raise ValueError(f"programs cannot import {sorted(missing)}: create the pool with {fix}")
        if self._closed:
            raise RuntimeError("this SandboxPool is closed; create a new one")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limits.max_source_bytes:
            message = f"the program is {size} bytes long; at most {limits.max_source_bytes} are allowed"
            return ProgramRun(ProgramFailure(FailureKind.FORBIDDEN.value, message))
        seed = program_seed(text) if seed is None else int(seed)
        request = {"op": "run", "text": text, "seed": seed, "limits": _limits_data(limits)}
        server = self._idle.get()
        try:
            reply = server.request(request, timeout_s=limits.timeout_s + _ANSWER_GRACE_S)
        except _frames.FrameError as exc:
            failure = ProgramFailure(
                FailureKind.CRASHED.value,
                "the sandbox server stopped answering and was restarted",
                detail={"error": str(exc)},
            )
            return ProgramRun(failure)
        finally:
            self._idle.put(server)
        return ProgramRun(
            outcome(reply, limits=limits),
            output=str(reply.get("output", "")),
            output_bytes=int(reply.get("output_bytes", 0)),
            wall_s=float(reply.get("wall_s", 0.0)),
        )

    def evaluate(
        self, text: str, *, limits: SandboxLimits = DEFAULT_SANDBOX_LIMITS, seed: int | None = None
    ) -> WalkerSpec | ProgramFailure:
        """Like ``run``, returning only the walker or the failure."""
        return self.run(text, limits=limits, seed=seed).result

    def run_many(
        self,
        texts: Sequence[str],
        *,
        limits: SandboxLimits = DEFAULT_SANDBOX_LIMITS,
        seeds: Sequence[int | None] | None = None,
    ) -> list[ProgramRun]:
        """Run many programs on all workers at once; results are in the order of ``texts``.

        Raises:
            ValueError: If ``seeds`` is given with another length than ``texts``.
        """
        seeds = [None] * len(texts) if seeds is None else list(seeds)
        if len(seeds) != len(texts):
            raise ValueError(f"got {len(texts)} programs but {len(seeds)} seeds")
        if self.workers == 1:
            return [self.run(t, limits=limits, seed=s) for t, s in zip(texts, seeds)]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox")
        return list(
            self._executor.map(lambda ts: self.run(ts[0], limits=limits, seed=ts[1]), zip(texts, seeds))
        )

    def isolation_report(self) -> dict[str, bool | str]:
        """Which isolation layers are active (``True`` or a description) or not (``False``).

        Starts the first server if it is not running.
        """
        server = self._servers[0]
        server.start()
        return {**server.layers, "source_check": True}

    def inactive_reasons(self) -> dict[str, str]:
        """Why each inactive layer is off, in words."""
        self._servers[0].start()
        return dict(self._servers[0].reasons)

    @property
    def server_pids(self) -> list[int | None]:
        """Process ids of the servers (``None`` for one not started)."""
        return [server.pid for server in self._servers]

    def close(self) -> None:
        """Stop every server. The pool cannot be used afterwards."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for server in self._servers:
            server.close()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_fork_in_child(self) -> None:
        self._executor = None
        self._idle = queue.SimpleQueue()
        for server in self._servers:
            server.after_fork_in_child()
            self._idle.put(server)


@functools.lru_cache(maxsize=32)
def _limits_data(limits: SandboxLimits) -> dict[str, Any]:
    return limits.to_dict()


def program_seed(text: str) -> int:
    """The default seed of a program: the first 8 bytes of its SHA-256, so stable everywhere."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def _close_all_pools() -> None:
    for pool in list(_POOLS):
        pool.close()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool._after_fork_in_child()


atexit.register(_close_all_pools)
os.register_at_fork(after_in_child=_after_fork_in_child)
