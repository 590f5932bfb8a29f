"""A live lab for browser tests: daphne and a real Celery worker on a fresh database.

:class:`LiveLab` does what ``make run`` does (``elmweb.launch``), in a temporary folder
instead of ``var/``: migrate a new SQLite database, create a staff user, start one Celery
worker on the embedded filesystem broker (its own folder) and daphne on a free port, and
wait until ``/healthz`` answers and the worker is ready. Each process runs in a process
group of its own, asks for SIGTERM should the test process die, and is stopped (SIGTERM,
then SIGKILL to its whole group) by :meth:`LiveLab.stop`. Nothing here imports Django
models: the browser tests reach the lab only over HTTP, as a user does.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from elmweb import launch

ROOT = Path(__file__).resolve().parents[2]
USERNAME, PASSWORD = "browser-staff", "pw-browser-staff-123"
STARTUP_TIMEOUT_S = 90.0  # migrate, then daphne and the worker (imports torch) on a busy machine
STOP_GRACE_S = 1.0  # the database is thrown away: no need to wait for a warm shutdown (~6 s idle)

SUCCESS_LINE = re.compile(r'^\S+ - - \[[^]]+\] "[A-Z]+ [^"]*" [23]\d\d ')  # daphne's access log
#: Variables that would point the lab at a developer's services or data; the lab drops them.
FOREIGN_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "BROKER_DIR")


def free_port() -> int:
    """Return a TCP port on localhost that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LabError(RuntimeError):
    """The lab did not start; the message carries what its processes printed."""


class LiveLab:
    """Daphne and one Celery worker serving a fresh database in ``folder``.

    Args:
        folder: An empty folder for the database, the broker and the logs.
        worker_concurrency: Worker pool processes (1: the tests share one machine's CPUs).
        env: Further environment variables for every process (e.g. settings knobs).
    """

    def __init__(self, folder: Path, *, worker_concurrency: int = 1, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username, self.password = USERNAME, PASSWORD
        self.worker_concurrency = worker_concurrency
        base = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}
        self.env = {
            **base,
            "DJANGO_SETTINGS_MODULE": "elmweb.settings",
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "BROKER_DIR": str(folder / "broker"),
            "MODELS_DIR": str(folder / "models"),  # trained models stay out of the developer's var/models
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "true",
            # Evaluate in the worker's pool process (no evaluation processes on a shared
            # machine) and hand the worker back between batches every second.
            "EVAL_WORKERS": "0",
            "STEP_CHUNK_S": "1",
            **(env or {}),
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- logs ------------------------------------------------------------------------------
    @property
    def server_log(self) -> Path:
        return self.folder / "daphne.log"

    @property
    def worker_log(self) -> Path:
        return self.folder / "worker.log"

    def logs(self, *, tail: int = 4000) -> str:
        """The last ``tail`` characters of daphne's and the worker's output.

        Daphne's access-log lines of successful requests (2xx, 3xx) are left out: the tests
        poll the API, and those lines would bury the errors.
        """
        parts = []
        for log in (self.server_log, self.worker_log):
            text = log.read_text(errors="replace") if log.exists() else "(no output)"
            text = "".join(line for line in text.splitlines(keepends=True) if not SUCCESS_LINE.search(line))
            parts.append(f"--- {log.name} ---\n{text[-tail:]}")
        return "\n".join(parts)

    # -- life cycle ------------------------------------------------------------------------
    def manage(self, *args: str) -> None:
        """Run ``manage.py args`` against the lab's database."""
        argv = [sys.executable, "manage.py", *args]
        done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, timeout=180, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise LabError(f"`manage.py {' '.join(args)}` failed ({done.returncode}):\n{output}")

    def prepare(self) -> None:
        """Migrate the fresh database (which loads the shipped seeds) and add the staff user."""
        self.manage("migrate", "--noinput", "--verbosity", "0")
        create = (
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user({self.username!r}, password={self.password!r}, is_staff=True)"
        )
        self.manage("shell", "--verbosity", "0", "--command", create)

    def spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own process group, output to ``log``."""
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, process_group=0,
                preexec_fn=launch._die_with_parent,  # SIGTERM if the test process dies
            )  # fmt: skip
        self.processes.append(process)
        return process

    def start(self) -> None:
        """Prepare the database, start the worker and daphne, wait until both are ready.

        Raises:
            LabError: If a step fails or a process does not get ready in time (with logs).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prepare()
        worker_argv = [
            *launch.worker_command(concurrency=self.worker_concurrency),
            "-n", f"browser-tests-{self.port}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ]  # fmt: skip
        worker = self.spawn(worker_argv, self.worker_log)
        server = self.spawn(launch.server_command(host="127.0.0.1", port=self.port), self.server_log)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        url = launch.health_url(host="127.0.0.1", port=self.port)
        if not launch.wait_until_healthy(url, server=server, timeout=STARTUP_TIMEOUT_S):
            raise LabError(f"daphne did not answer {url}\n{self.logs()}")
        while not self.worker_ready():
            if worker.poll() is not None:
                raise LabError(f"the Celery worker exited ({worker.returncode})\n{self.logs()}")
            if time.monotonic() > deadline:
                raise LabError(f"the Celery worker was not ready in {STARTUP_TIMEOUT_S:.0f} s\n{self.logs()}")
            time.sleep(0.2)

    def worker_ready(self) -> bool:
        """Whether the worker says it is ready (Celery logs ``<name> ready.``)."""
        return self.worker_log.exists() and " ready." in self.worker_log.read_text(errors="replace")

    def check_alive(self) -> None:
        """Raise :class:`LabError` (with logs) if daphne or the worker has exited."""
        for process in self.processes:
            if process.poll() is not None:
                raise LabError(f"{process.args[2:5]} exited ({process.returncode})\n{self.logs()}")

    def stop(self) -> None:
        """SIGTERM both processes; SIGKILL each whole group after a short grace period.

        Quiet about it: a worker still in its warm shutdown is expected to be killed.
        """
        level = launch.log.level
        launch.log.setLevel(logging.ERROR)
        try:
            launch.stop(self.processes, grace=STOP_GRACE_S)
        finally:
            launch.log.setLevel(level)
        self.processes.clear()
