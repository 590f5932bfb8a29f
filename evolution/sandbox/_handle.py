"""One fork server process, seen from the caller: start, ask, restart, stop.

The server is ``python -s evolution/sandbox/_boot.py``, started from a clean interpreter with a
minimal environment; it answers on its stdout and reports to the caller's stderr. A server
that dies or stops answering is killed and started again on its next use. A handle inherited
through ``fork`` (a Celery prefork child) is dropped, not used: the child starts its own.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from evolution.sandbox import _frames

log = logging.getLogger("evolution.sandbox")

_ROOT = Path(__file__).resolve().parents[2]
_BOOT = Path(__file__).resolve().with_name("_boot.py")
_START_TIMEOUT_S = 60.0


class SandboxUnavailable(RuntimeError):
    """A fork server could not be started (the message says why)."""


class ServerHandle:
    """One fork server process and the lock that serialises its use.

    Args:
        index: Its number in the pool (for the logs).
        disabled: Optional layers it leaves off.
        preload: Modules it imports for programs.
    """

    def __init__(self, *, index: int, disabled: frozenset[str], preload: tuple[str, ...]) -> None:
        self.index = index
        self._disabled = disabled
        self._preload = preload
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()
        self.layers: dict[str, Any] = {}
        self.reasons: dict[str, str] = {}
        self.lean = False

    @property
    def pid(self) -> int | None:
        """The server's process id (``None`` before it starts)."""
        return None if self._proc is None else self._proc.pid

    def request(self, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        """Send one request and return the answer.

        Raises:
            SandboxUnavailable: If the server cannot start.
            _frames.FrameError: If it died or did not answer in time (it is then killed).
        """
        with self._lock:
            self._ensure_started()
            assert self._proc is not None and self._proc.stdin and self._proc.stdout
            try:
                _frames.write_frame(self._proc.stdin.fileno(), message)
                return _frames.read_frame(self._proc.stdout.fileno(), timeout_s=timeout_s)
            except _frames.FrameError:
                self._stop(kill=True)
                raise

    def start(self) -> None:
        """Start the server now if it is not running."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._owner != os.getpid():  # we are a fork of the process that started it
            self._forget()
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            log.warning(
                "sandbox server %d (pid %d) died with status %s; restarting",
                self.index,
                self._proc.pid,
                self._proc.returncode,
            )
            self._stop(kill=True)
        command = [sys.executable, "-s", str(_BOOT), "--parent-pid", str(os.getpid())]
        command += [arg for layer in sorted(self._disabled) for arg in ("--disable", layer)]
        command += [arg for module in self._preload for arg in ("--preload", module)]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_ROOT, env=_server_env()
        )
        try:
            assert self._proc.stdout is not None
            hello = _frames.read_frame(self._proc.stdout.fileno(), timeout_s=_START_TIMEOUT_S)
        except _frames.FrameError as exc:
            self._stop(kill=True)
            raise SandboxUnavailable(
                f"the sandbox server did not start ({exc}); see its messages on stderr"
            ) from exc
        self.layers, self.reasons = hello.get("layers", {}), hello.get("reasons", {})
        self.lean = bool(hello.get("lean"))
        active = ", ".join(k for k, v in self.layers.items() if v) or "none"
        inactive = (
            "; ".join(f"{k} ({self.reasons.get(k, '?')})" for k, v in self.layers.items() if not v) or "none"
        )
        extra = f", preloaded {', '.join(self._preload)}" if self._preload else ""
        if not self.lean and not self._preload:
            extra = ", with all of evolution.sodarace imported (slower forks)"
        missing = any(
            not on and self.reasons.get(k) != "disabled by configuration" for k, on in self.layers.items()
        )
        log.log(
            logging.WARNING if missing else logging.INFO,
            "sandbox server %d (pid %d%s) started; active layers: %s; inactive: %s",
            self.index,
            self._proc.pid,
            extra,
            active,
            inactive,
        )

    def _stop(self, *, kill: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if not kill and proc.poll() is None and proc.stdin:
                try:
                    _frames.write_frame(proc.stdin.fileno(), {"op": "quit"})
                except _frames.FrameError:
                    pass
                proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe:
                pipe.close()

    def _forget(self) -> None:
        """Drop a server inherited through fork without touching it (it is the parent's)."""
        if self._proc is not None:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe:
                    pipe.close()
        self._proc = None
        self._owner = os.getpid()

    def close(self) -> None:
        """Ask the server to quit, kill it if it does not."""
        with self._lock:
            if self._owner == os.getpid():
                self._stop(kill=False)
            else:
                self._forget()

    def after_fork_in_child(self) -> None:
        """In a child of the caller: a fresh lock, and no server (it is the parent's)."""
        self._lock = threading.Lock()
        self._forget()


def _server_env() -> dict[str, str]:
    env = {
        "PYTHONPATH": str(_ROOT),
        "PYTHONHASHSEED": "0",  # set and dict-of-str order is the same in every run
        "PYTHONDONTWRITEBYTECODE": "1",
        # if numpy is imported (preload, or a walker API that needs it), keep its BLAS from
        # starting threads, so that the server stays single-threaded and safe to fork
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    for name in ("PATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
