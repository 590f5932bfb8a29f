"""Start the lab on this machine: Celery workers in the background, daphne in front.

``make run`` calls this after ``migrate`` and ``collectstatic``; on a first start it creates
a superuser ``admin`` and prints its password (``manage.py ensure_admin``)::

    python -m elmweb.launch --host 127.0.0.1 --port 8000

By default one worker serves every queue and writes to ``var/log/worker.log``. ``--pool``
(repeatable) starts one worker per pool instead, each on its own queues with its own
concurrency and log (``var/log/worker-<queues>.log``); ``make run-scaled`` does::

    python -m elmweb.launch --pool llm=1 --pool sim,celery=2 --pool train=1

daphne writes to the terminal. Once ``/healthz`` answers, one line says where the lab is.
A worker that dies (a crash, a ``kill -9``) is started again, and the runs it was stepping
go on. Ctrl-C (SIGINT) or SIGTERM stops them all: each child runs in its own process
group, so the launcher alone receives the terminal's signals and shuts the children down
in order (SIGTERM, then SIGKILL to the whole group after a grace period). On Linux the
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
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

log = logging.getLogger("elmweb.launch")

BASE_DIR = Path(__file__).resolve().parent.parent
LOG_DIR = BASE_DIR / "var" / "log"
QUEUES = "celery,llm,sim,train"
KNOWN_QUEUES = frozenset(QUEUES.split(","))  # elmweb.settings.CELERY_TASK_QUEUES
STARTUP_TIMEOUT_S = 60.0  # how long daphne may take to answer /healthz
GRACE_S = 10.0  # how long a child may take to exit after SIGTERM before SIGKILL
WORKER_MIN_UPTIME_S = 10.0  # a worker that dies sooner is broken (stop); later, it is restarted


class Stop(Exception):
    """Raised in the main loop when the launcher receives SIGINT or SIGTERM."""


@dataclass(frozen=True)
class Pool:
    """One Celery worker: the queues it serves and its number of pool processes.

    ``name`` is ``None`` for the single worker of ``make run`` (Celery's default node name,
    ``worker.log``); a named pool's node is ``<name>@<host>``, so several workers can share a
    host and a broker, and its log is ``worker-<name>.log``.
    """

    queues: str
    concurrency: int
    name: str | None = None

    def log_file(self, log_dir: Path) -> Path:
        return log_dir / ("worker.log" if self.name is None else f"worker-{self.name}.log")


def parse_pool(text: str) -> Pool:
    """Parse ``--pool QUEUES=CONCURRENCY``, e.g. ``sim,celery=2``.

    Raises:
        argparse.ArgumentTypeError: The text is not of that form or names an unknown queue.
    """
    queues, sep, number = text.partition("=")
    names = [name.strip() for name in queues.split(",") if name.strip()]
    if not sep or not names or not number.strip().isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not QUEUES=CONCURRENCY: write e.g. --pool sim,celery=2 (queues "
            f"{', '.join(sorted(KNOWN_QUEUES))}; concurrency an integer >= 1)"
        )
    unknown = sorted(set(names) - KNOWN_QUEUES)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"--pool {text!r} names unknown queues {unknown}: use {', '.join(sorted(KNOWN_QUEUES))}"
        )
    return Pool(queues=",".join(names), concurrency=int(number), name="-".join(names))


def worker_command(*, concurrency: int, queues: str = QUEUES, name: str | None = None) -> list[str]:
    """Return the argv of a Celery worker serving ``queues`` (every queue of the lab by default).

    Args:
        concurrency: Its number of pool processes.
        queues: Comma-separated queue names.
        name: Its node name is ``<name>@<host>`` (Celery's default when ``None``).
    """
    argv = [
        sys.executable, "-m", "celery", "-A", "elmweb", "worker",
        "-Q", queues, "--concurrency", str(concurrency), "--loglevel", "INFO",
    ]  # fmt: skip
    return argv if name is None else [*argv, "-n", f"{name}@%h"]


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


def start_worker(pool: Pool, *, log_dir: Path = LOG_DIR) -> subprocess.Popen[bytes]:
    """Start the Celery worker of ``pool``, appending to its log file in ``log_dir``."""
    argv = worker_command(concurrency=pool.concurrency, queues=pool.queues, name=pool.name)
    with pool.log_file(log_dir).open("ab") as worker_log:
        return start(argv, log_file=worker_log)


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


def _shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside, for shorter messages."""
    return path.relative_to(BASE_DIR) if path.is_relative_to(BASE_DIR) else path


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Ignore further signals: a second Ctrl-C must not interrupt the orderly shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def supervise(
    *,
    host: str,
    port: int,
    concurrency: int = 2,
    pools: list[Pool] | None = None,
    log_dir: Path = LOG_DIR,
    worker_min_uptime: float = WORKER_MIN_UPTIME_S,
) -> int:
    """Run the workers and the server until a signal arrives or the server exits.

    Args:
        host: Address daphne binds.
        port: Port daphne binds.
        concurrency: Pool processes of the single worker serving every queue (no ``pools``).
        pools: One worker per pool instead of that single worker.
        log_dir: Where the workers' logs go.
        worker_min_uptime: A worker that exits sooner stops everything; later, it is restarted.

    Returns:
        The exit status for the launcher: 0 after a requested stop, else non-zero.
    """
    if port_in_use(host=host, port=port):
        hint = f"stop what uses it, or run `make run PORT={port + 1}`"
        log.error("port %d is already in use on %s: %s", port, host, hint)
        return 1
    if subprocess.run(ensure_admin_command(), cwd=BASE_DIR, check=False).returncode != 0:
        log.warning("could not check for a first superuser; create one with `manage.py createsuperuser`")
    pools = pools or [Pool(queues=QUEUES, concurrency=concurrency)]
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []  # one per pool (in order), then daphne
    try:
        for pool in pools:  # one at a time: those started are stopped if a later one fails
            processes.append(start_worker(pool, log_dir=log_dir))
        started = [time.monotonic()] * len(pools)
        server = start(server_command(host=host, port=port))
        processes.append(server)
        url = health_url(host=host, port=port)
        if not wait_until_healthy(url, server=server, timeout=STARTUP_TIMEOUT_S):
            log.error("daphne did not answer /healthz on %s:%d (see its output above)", host, port)
            return 1
        for pool in pools:
            log.info("worker log (queues %s): %s", pool.queues, _shown(pool.log_file(log_dir)))
        log.info("elmweb is up at http://%s:%d/", host, port)
        while server.poll() is None:
            time.sleep(0.5)
            for i, pool in enumerate(pools):
                if processes[i].poll() is None:
                    continue
                if time.monotonic() - started[i] < worker_min_uptime:
                    where = pool.log_file(log_dir)
                    log.error("the Celery worker exited right after starting; stopping (see %s)", where)
                    return 1
                log.warning(
                    "the Celery worker of queues %s exited (status %s); starting a new one: runs it was "
                    "stepping go on once their heartbeat is stale (RUN_STALE_AFTER_S)",
                    pool.queues, processes[i].returncode,
                )  # fmt: skip
                stop(processes[i : i + 1], grace=0)  # whatever is left of its process group
                processes[i] = start_worker(pool, log_dir=log_dir)
                started[i] = time.monotonic()
        log.error("daphne exited unexpectedly; stopping (worker logs in %s)", _shown(log_dir))
        return 1
    except Stop as stop_signal:
        log.info("%s received; stopping the workers and daphne", stop_signal)
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
    parser.add_argument(
        "--concurrency", type=int, default=2,
        help="processes of the single worker serving every queue, without --pool (%(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--pool", type=parse_pool, action="append", dest="pools", metavar="QUEUES=N",
        help="start a worker serving QUEUES (comma-separated) with N processes; repeat for more "
        "workers, e.g. --pool llm=1 --pool sim,celery=2 --pool train=1",
    )  # fmt: skip
    parser.add_argument(
        "--log-dir", type=Path, default=LOG_DIR, help="folder of the workers' logs (var/log)"
    )
    parser.add_argument(
        "--worker-min-uptime", type=float, default=WORKER_MIN_UPTIME_S,
        help="a worker that exits sooner stops the lab; later it is restarted (%(default)s s)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    return supervise(
        host=args.host, port=args.port, concurrency=args.concurrency, pools=args.pools,
        log_dir=args.log_dir.resolve(), worker_min_uptime=args.worker_min_uptime,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
