"""Start the lab on this machine: a Celery worker in the background, daphne in front.

``make run`` calls this after ``migrate`` and ``collectstatic``; on a first start it creates
a superuser ``admin`` and prints its password (``manage.py ensure_admin``)::

    python -m elmweb.launch --host 127.0.0.1 --port 8000

The worker writes to ``var/log/worker.log``; daphne writes to the terminal.
Once ``/healthz`` answers, one line says where the lab is. A worker that dies (a crash, a
``kill -9``) is started again, and the runs it was stepping go on. Ctrl-C (SIGINT) or
SIGTERM stops both: each child runs in its own process group, so the launcher
alone receives the terminal's signals and shuts the children down in order
(SIGTERM, then SIGKILL to the whole group after a grace period). On Linux the
children also receive SIGTERM if the launcher itself dies.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import IO

log = logging.getLogger("elmweb.launch")

BASE_DIR = Path(__file__).resolve().parent.parent
WORKER_LOG = BASE_DIR / "var" / "log" / "worker.log"
QUEUES = "celery,llm,sim,train"
STARTUP_TIMEOUT_S = 60.0  # how long daphne may take to answer /healthz
GRACE_S = 10.0  # how long a child may take to exit after SIGTERM before SIGKILL
WORKER_MIN_UPTIME_S = 10.0  # a worker that dies sooner is broken (stop); later, it is restarted


class Stop(Exception):
    """Raised in the main loop when the launcher receives SIGINT or SIGTERM."""


def worker_command(*, concurrency: int) -> list[str]:
    """Return the argv of a Celery worker serving every queue of the lab."""
    return [
        sys.executable, "-m", "celery", "-A", "elmweb", "worker",
        "-Q", QUEUES, "--concurrency", str(concurrency), "--loglevel", "INFO",
    ]  # fmt: skip


def ensure_admin_command() -> list[str]:
    """Return the argv that creates a first superuser (and prints its password) if none exists."""
    return [sys.executable, "manage.py", "ensure_admin"]


def server_command(*, host: str, port: int) -> list[str]:
    """Return the argv of daphne serving ``elmweb.asgi:application``."""
    return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "elmweb.asgi:application"]


def probe_host(host: str) -> str:
    """Return the address to connect to for a server bound to ``host`` (wildcards -> loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def health_url(*, host: str, port: int) -> str:
    """Return the /healthz URL of a server bound to ``host``."""
    probe = probe_host(host)
    return f"http://{f'[{probe}]' if ':' in probe else probe}:{port}/healthz"


def answers(url: str) -> bool:
    """Return whether ``url`` answers HTTP 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def port_in_use(*, host: str, port: int) -> bool:
    """Return whether something already accepts connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((probe_host(host), port), 1.0):
        return True
    return False


def wait_until_healthy(url: str, *, server: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll ``url`` until it answers 200; give up if ``server`` exits or ``timeout`` passes.

    Returns:
        Whether the server answered in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        if answers(url):
            return True
        time.sleep(0.2)
    return False


_PR_SET_PDEATHSIG = 1  # prctl option: signal to receive when the parent dies (linux/prctl.h)


def _die_with_parent() -> None:
    """In the child, before exec: ask for SIGTERM when the launcher dies (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start(argv: list[str], *, log_file: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the repository root, in a new process group of its own.

    Args:
        argv: The command line.
        log_file: Where its stdout and stderr go; ``None`` keeps the terminal.
    """
    return subprocess.Popen(
        argv,
        cwd=BASE_DIR,
        stdout=log_file,
        stderr=subprocess.STDOUT if log_file is not None else None,
        process_group=0,
        preexec_fn=_die_with_parent,  # the launcher has no threads, so preexec_fn is safe
    )


def start_worker(*, concurrency: int) -> subprocess.Popen[bytes]:
    """Start the Celery worker, appending to ``var/log/worker.log``."""
    with WORKER_LOG.open("ab") as worker_log:
        return start(worker_command(concurrency=concurrency), log_file=worker_log)


def stop(processes: list[subprocess.Popen[bytes]], *, grace: float) -> None:
    """SIGTERM each process; after ``grace`` seconds, SIGKILL what is left of its group."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop in %.0f s; killing its group", process.pid, grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # also reaps pool children left behind
        process.wait()


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Ignore further signals: a second Ctrl-C must not interrupt the orderly shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def supervise(
    *, host: str, port: int, concurrency: int, worker_min_uptime: float = WORKER_MIN_UPTIME_S
) -> int:
    """Run the worker and the server until a signal arrives or one of them exits.

    Returns:
        The exit status for the launcher: 0 after a requested stop, else non-zero.
    """
    if port_in_use(host=host, port=port):
        hint = f"stop what uses it, or run `make run PORT={port + 1}`"
        log.error("port %d is already in use on %s: %s", port, host, hint)
        return 1
    if subprocess.run(ensure_admin_command(), cwd=BASE_DIR, check=False).returncode != 0:
        log.warning("could not check for a first superuser; create one with `manage.py createsuperuser`")
    WORKER_LOG.parent.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(start_worker(concurrency=concurrency))
        worker_started = time.monotonic()
        server = start(server_command(host=host, port=port))
        processes.append(server)
        url = health_url(host=host, port=port)
        if not wait_until_healthy(url, server=server, timeout=STARTUP_TIMEOUT_S):
            log.error("daphne did not answer /healthz on %s:%d (see its output above)", host, port)
            return 1
        log.info("worker log: %s", WORKER_LOG.relative_to(BASE_DIR))
        log.info("elmweb is up at http://%s:%d/", host, port)
        while server.poll() is None:
            time.sleep(0.5)
            if processes[0].poll() is None:
                continue
            if time.monotonic() - worker_started < worker_min_uptime:
                log.error("the Celery worker exited right after starting; stopping (see %s)", WORKER_LOG)
                return 1
            log.warning(
                "the Celery worker exited (status %s); starting a new one: runs it was stepping "
                "go on once their heartbeat is stale (RUN_STALE_AFTER_S)", processes[0].returncode,
            )  # fmt: skip
            stop(processes[:1], grace=0)  # whatever is left of its process group
            processes[0] = start_worker(concurrency=concurrency)
            worker_started = time.monotonic()
        log.error("daphne exited unexpectedly; stopping (worker log: %s)", WORKER_LOG)
        return 1
    except Stop as stop_signal:
        log.info("%s received; stopping the worker and daphne", stop_signal)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(processes, grace=GRACE_S)
        log.info("elmweb stopped")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, install the signal handlers and supervise."""
    parser = argparse.ArgumentParser(
        prog="python -m elmweb.launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (%(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (%(default)s)")
    parser.add_argument(
        "--worker-min-uptime", type=float, default=WORKER_MIN_UPTIME_S,
        help="a worker that exits sooner stops the lab; later it is restarted (%(default)s s)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    return supervise(
        host=args.host, port=args.port, concurrency=args.concurrency,
        worker_min_uptime=args.worker_min_uptime,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
