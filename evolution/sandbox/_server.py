"""The fork server: one process per sandbox worker, started through ``_boot``.

Started by ``SandboxPool`` from a clean interpreter (never forked from a web or Celery
process). It imports the walker API, enters a fresh network namespace, prepares the other
layers, warms itself up on the seeds, loads its own seccomp filter, checks the layers on a
trivial program and reports them. Then it serves requests one at a time on its stdin/stdout
pipes: for each program it parses, checks and compiles the text (never executing it, see
``_program``), forks a child that locks itself down and runs the code, watches the child's
output and result pipes against the limits and a wall-clock deadline, kills the child's
process group, answers with plain data, and reaps the child a moment later (so the kernel's
teardown of the child overlaps the next request). It is single-threaded, and never runs
program text itself.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import logging
import os
import math
import select
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from evolution.sandbox import _frames
from evolution.sandbox._child import EXIT_INTERNAL, child_main
from evolution.sandbox._program import compile_program, run_compiled
from evolution.sandbox._limits import DEFAULT_SANDBOX_LIMITS
from evolution.sandbox._lockdown import OPTIONAL_LAYERS, Lockdown, address_space_bytes

log = logging.getLogger("evolution.sandbox.server")
_READ_CHUNK = 1 << 16
_PROBE = "def make_walker():\n    wc = walker_creator()\n    wc.add_joint(0, 0)\n    return wc.get_walker()\n"


class ForkServer:
    """Runs programs in forked, locked-down children, one at a time.

    Args:
        disabled: Optional layers to leave off (tests only).
    """

    def __init__(self, *, disabled: frozenset[str] = frozenset()) -> None:
        self.lockdown = Lockdown(disabled=disabled)
        self.layers = dict(self.lockdown.layers)
        self.reasons = dict(self.lockdown.reasons)
        _warm_up()
        self.lockdown.seal_server()
        self._fork: Callable[[], int] = os.fork
        self._unreaped: list[int] = []
        self._served = 0
        self._baseline_vm = address_space_bytes()
        self._probe()
        single = _single_threaded()
        self.layers["single_threaded_server"] = single
        if single:
            self._fork = _raw_fork()
        else:  # pragma: no cover - something started a thread: keep Python's fork handlers
            log.warning("the fork server has threads; forking with os.fork")

    def _probe(self) -> None:
        """Run one trivial program so that a layer the kernel refuses stops the server."""
        reply = self.run({"id": 0, "text": _PROBE, "seed": 0, "limits": DEFAULT_SANDBOX_LIMITS.to_dict()})
        self.reap()
        if not reply["result"].startswith('{"ok"'):
            raise RuntimeError(f"the sandbox cannot run a trivial program: {reply}")

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one program in a fresh child; return what happened, as plain data.

        A child that sent a complete result is killed and left for ``reap`` (call it after
        sending the answer: the kernel tears a process down in about a millisecond, which
        need not delay the answer). Any other child is reaped here, for its exit status.
        """
        self.reap(block=False)
        limits = request["limits"]
        started = time.monotonic()
        code = compile_program(
            request["text"], imports=limits["imports"], check_source=limits["check_source"]
        )
        if isinstance(code, dict):  # a syntax error or a forbidden construct: nothing to run
            return _reply(
                request, reason="exited", result=json.dumps(code), wall_s=time.monotonic() - started
            )
        out_r, out_w = os.pipe()
        result_r, result_w = os.pipe()
        self._served += 1
        if self._served % 64 == 0:  # the heap may grow with big programs: re-measure now and then
            self._baseline_vm = address_space_bytes()
        baseline = self._baseline_vm
        pid = self._fork()
        if pid == 0:  # the child: never returns
            try:
                os.close(out_r)
                os.close(result_r)
                child_main(
                    lockdown=self.lockdown,
                    code=code,
                    request=request,
                    out_fd=out_w,
                    result_fd=result_w,
                    baseline_vm=baseline,
                )
            finally:
                os._exit(EXIT_INTERNAL)
        os.close(out_w)
        os.close(result_w)
        watch = _Watch(pid, out_r=out_r, result_r=result_r, limits=limits)
        try:
            reason = watch.wait(deadline=started + float(limits["timeout_s"]))
        finally:
            # Before reaping: the unreaped child keeps its pid and group id from being reused.
            _kill_group(pid)
            watch.close()
        del code
        reply = _reply(
            request,
            reason=reason,
            result=bytes(watch.result).decode("utf-8", "replace"),
            output=bytes(watch.output).decode("utf-8", "replace"),
            output_bytes=watch.output_bytes,
            wall_s=time.monotonic() - started,
        )
        if reason == "exited" and watch.result:
            self._unreaped.append(pid)
        else:
            reply.update(_reap(pid))
        return reply

    def reap(self, *, block: bool = True) -> None:
        """Reap the children that answered (already killed).

        Args:
            block: Wait for each; otherwise reap only those already gone, so that the next
                program need not wait for the kernel to tear the last one down.
        """
        pending = []
        for pid in self._unreaped:
            if block:
                os.waitpid(pid, 0)
            elif os.waitpid(pid, os.WNOHANG)[0] == 0:
                pending.append(pid)
        self._unreaped = pending

    @property
    def unreaped(self) -> bool:
        """Whether a child that answered still waits to be reaped."""
        return bool(self._unreaped)

    def close(self) -> None:
        """Reap what is left."""
        self.reap()


class _Watch:
    """Reads a child's output and result pipes and waits for it, within limits.

    Uses ``poll`` (registering costs no system call, unlike epoll's), on three descriptors:
    the output pipe, the result pipe and a pidfd that becomes readable when the child exits.
    """

    def __init__(self, pid: int, *, out_r: int, result_r: int, limits: dict[str, Any]) -> None:
        self.output = bytearray()
        self.output_bytes = 0
        self.result = bytearray()
        self._max_output = int(limits["max_output_bytes"])
        self._max_result = int(limits["max_result_bytes"])
        self._pidfd = os.pidfd_open(pid)
        self._streams = {out_r: "output", result_r: "result"}
        self._fds = [out_r, result_r, self._pidfd]
        self._poll = select.poll()
        for fd in self._fds:
            self._poll.register(fd, select.POLLIN)

    def wait(self, *, deadline: float) -> str:
        """Return ``"exited"``, ``"timeout"``, ``"output_too_large"`` or ``"result_too_large"``.

        ``"exited"`` also covers a child that sent its whole result and closed its pipes
        (it is killed and reaped at once).
        """
        exited = False
        while True:
            if not self._streams and (self.result or exited):
                return "exited"
            if exited:  # the child is gone: take what is already in the pipes, then stop
                events = self._poll.poll(0)
                if not events:
                    return "exited"
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                events = self._poll.poll(max(1, math.ceil(remaining * 1000)))
            for fd, _ in events:
                if fd == self._pidfd:
                    exited = True
                    self._poll.unregister(fd)
                    continue
                overflow = self._receive(fd)
                if overflow:
                    return overflow

    def _receive(self, fd: int) -> str | None:
        chunk = os.read(fd, _READ_CHUNK)
        if not chunk:
            self._poll.unregister(fd)
            del self._streams[fd]
        elif self._streams[fd] == "output":
            self.output_bytes += len(chunk)
            self.output += chunk[: max(0, self._max_output - len(self.output))]
            if self.output_bytes > self._max_output:
                return "output_too_large"
        else:
            self.result += chunk
            if len(self.result) > self._max_result:
                return "result_too_large"
        return None

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


def _warm_up() -> None:
    """Run the (trusted) seeds here a few times, then freeze the heap.

    A child pays for every page it writes (copy on write). Running the exec and walker paths
    in the server first fills Python's caches and specialises its bytecode before any fork;
    ``gc.freeze`` keeps the collector off the old objects.
    """
    from evolution.sodarace import seeds

    limits = DEFAULT_SANDBOX_LIMITS.to_dict()
    for _ in range(3):
        for seed in seeds.SEEDS.values():
            code = compile_program(seed.program, imports=limits["imports"], check_source=True)
            if isinstance(code, dict):
                raise RuntimeError(f"the seed {seed.name} does not pass the sandbox's own check: {code}")
            run_compiled(code, seed=0, limits=limits)
    gc.collect()
    gc.freeze()


def _single_threaded() -> bool:
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = 0
    return threads == 1 and threading.active_count() == 1


def _raw_fork() -> Callable[[], int]:
    """Return libc's ``fork``, which skips Python's at-fork handlers.

    ``os.fork`` runs handlers registered by ``threading``, ``logging`` and ``random``; in the
    child they write to about 220 shared pages (copy on write), which costs about 0.6 ms per
    program here. They only matter when other threads exist: the server has none (checked
    before this is used), the child runs on in the forking thread, which still holds the GIL
    (``PyDLL`` keeps it held across the call), and ``random`` is seeded per program anyway.
    """
    try:
        libc_fork = ctypes.PyDLL(None).fork
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return os.fork
    libc_fork.restype = ctypes.c_int
    libc_fork.argtypes = []

    def fork() -> int:
        pid = libc_fork()
        if pid < 0:
            raise OSError(ctypes.get_errno(), "fork failed")
        return pid

    return fork


def _reply(
    request: dict[str, Any],
    *,
    reason: str,
    result: str,
    wall_s: float,
    output: str = "",
    output_bytes: int = 0,
) -> dict[str, Any]:
    return {
        "op": "done",
        "id": request.get("id"),
        "reason": reason,
        "exit_code": None,
        "signal": None,
        "cpu_s": None,
        "result": result,
        "output": output,
        "output_bytes": output_bytes,
        "wall_s": wall_s,
    }


def _reap(pid: int) -> dict[str, Any]:
    """Wait for a killed or finished child; return its exit status and CPU time."""
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return {
        "exit_code": code,
        "signal": signal.Signals(-code).name if code < 0 else None,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str] | None = None, *, lean: bool = False) -> int:
    """Serve requests on stdin/stdout until end of file or ``{"op": "quit"}``.

    Args:
        argv: Command-line arguments.
        lean: Whether ``_boot`` loaded only the walker API (reported to the parent).
    """
    parser = argparse.ArgumentParser(prog="python -s evolution/sandbox/_boot.py")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--disable", action="append", default=[], choices=OPTIONAL_LAYERS)
    parser.add_argument("--preload", action="append", default=[], help="a module programs may import")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="sandbox server: %(levelname)s %(message)s")
    if os.getppid() != args.parent_pid:
        return 0
    # The protocol moves off 0/1, which become /dev/null: nothing printed can corrupt it.
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the parent, which closes us
    warnings.simplefilter("ignore")  # a program's SyntaxWarnings are not the caller's business
    for module in args.preload:  # children cannot import from disk: they have no files
        importlib.import_module(module)
        if module == "numpy":  # loaded lazily by numpy, and seeded per program by the sandbox
            importlib.import_module("numpy.random")
    server = ForkServer(disabled=frozenset(args.disable))
    try:
        hello = {
            "op": "hello",
            "pid": os.getpid(),
            "layers": server.layers,
            "reasons": server.reasons,
            "python": sys.version.split()[0],
            "lean": lean and not args.preload,
        }
        _frames.write_frame(proto_out, hello)
        incoming = select.poll()
        incoming.register(proto_in, select.POLLIN)
        while True:
            if not incoming.poll(50 if server.unreaped else 1000):
                server.reap()  # idle: finish the last child now rather than at the next request
                if os.getppid() != args.parent_pid:  # orphaned (the caller died without closing)
                    return 0
                continue
            try:
                request = _frames.read_frame(proto_in)
            except _frames.FrameError:
                return 0
            if request.get("op") == "quit":
                return 0
            _frames.write_frame(proto_out, server.run(request))
    except _frames.FrameError:
        return 0
    finally:
        server.close()
