"""``make run-scaled`` in small: one worker pool per queue, on the servers the tests run on.

The launcher starts daphne and three workers (``llm``, ``sim,celery``, ``train``) on a fresh
database. A GP run created through the API is stepped by the ``sim`` pool alone, its events
reach a WebSocket (from the workers through Redis under ``make test-scaled``; on the embedded
defaults the ASGI process tails the event table), its genomes are in the database the launcher
was given, and Ctrl-C stops every process.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from elmweb.wsclient import WebSocket
from tests.elmweb import servers
from tests.elmweb.test_launch import alive, children_of
from tests.elmweb.test_server import Session, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "scaler", "pw-scaler-123"
POOLS = ("llm=1", "sim,celery=1", "train=1")
STARTUP_TIMEOUT_S = 120.0  # three workers and daphne import torch on a busy machine


@dataclass
class Lab:
    url: str
    database_url: str
    launcher: subprocess.Popen[bytes]
    output: Path
    log_dir: Path

    def worker_log(self, name: str) -> str:
        return (self.log_dir / f"worker-{name}.log").read_text(errors="replace")


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=180)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """The launcher with its pools on a fresh, migrated database with one superuser (so that
    ``ensure_admin`` writes no credentials file into var/)."""
    with servers.fresh_database(tmp_path) as database_url, servers.own_broker(tmp_path / "broker") as broker_env:
        env = {**os.environ, **broker_env, "DATABASE_URL": database_url, "EVAL_WORKERS": "0"}
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        create = f"User.objects.create_superuser({USER!r}, '', {PASSWORD!r})"
        manage(env, "shell", "-v0", "-c", f"from django.contrib.auth.models import User; {create}")
        port, output = free_port(), tmp_path / "launch.log"
        pools = [arg for pool in POOLS for arg in ("--pool", pool)]
        argv = [sys.executable, "-m", "elmweb.launch", "--port", str(port), *pools, "--log-dir", str(tmp_path)]
        with output.open("wb") as out:
            launcher = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
        lab = Lab(f"http://127.0.0.1:{port}", database_url, launcher, output, tmp_path)
        try:
            wait_for_output(lab, f"elmweb is up at http://127.0.0.1:{port}/", timeout=STARTUP_TIMEOUT_S)
            yield lab
        finally:
            if launcher.poll() is None:
                launcher.send_signal(signal.SIGINT)
                try:
                    launcher.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    launcher.kill()
                    launcher.wait()


def wait_for_output(lab: Lab, text: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in lab.output.read_text(errors="replace"):
        if lab.launcher.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {text!r} from the launcher; its output:\n{lab.output.read_text(errors='replace')}")
        time.sleep(0.2)


def count_genomes(database_url: str, run_id: int) -> int:
    """The genomes of run ``run_id`` in the database at ``database_url`` (not the tests' own)."""
    sql = "SELECT count(*) FROM runs_genome WHERE run_id = %s"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return db.execute(sql.replace("%s", "?"), (run_id,)).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute(sql, (run_id,)).fetchone()[0]


def statuses_until_finished(socket: WebSocket, *, limit: int = 500) -> list[str]:
    """The run's status events, in order, up to its end (``finished``, ``failed`` or ``stopped``)."""
    statuses: list[str] = []
    for _ in range(limit):
        event: dict[str, Any] = socket.recv_json()
        if event["kind"] == "status":
            statuses.append(event["payload"]["status"])
            if statuses[-1] in ("finished", "failed", "stopped"):
                return statuses
    raise AssertionError(f"no end of the run after {limit} events: {statuses}")


def test_one_worker_per_queue_runs_a_gp_run_created_through_the_api_to_the_end(lab: Lab) -> None:
    workers = children_of(lab.launcher.pid)
    session = Session(lab.url)
    session.token = session.call("POST", "/api/login", {"username": USER, "password": PASSWORD})["csrf_token"]
    run = session.call("POST", "/api/runs", {"seed": "square", "batch_size": 8, "evals": 33, "sim_seconds": 1.0})
    host, port = lab.url.removeprefix("http://").split(":")
    headers = {"Cookie": f"sessionid={session.cookie('sessionid')}", "Origin": lab.url}

    socket = WebSocket(host, int(port), f"/ws/runs/{run['id']}/", headers=headers, timeout=120)
    try:
        session.call("POST", f"/api/runs/{run['id']}/start")
        statuses = statuses_until_finished(socket)
    finally:
        socket.close()

    assert statuses == ["created", "running", "finished"], lab.worker_log("sim-celery")
    detail = session.call("GET", f"/api/runs/{run['id']}")
    assert (detail["status"], detail["evaluations"]) == ("finished", 33)
    assert count_genomes(lab.database_url, run["id"]) == 33
    assert session.call("GET", "/healthz")["database"]["vendor"] == servers.vendor()
    received = "Task elmweb.runs.tasks.step_run["  # a worker's log line for each step it takes
    assert received in lab.worker_log("sim-celery")
    for name, queue in (("llm", "llm"), ("sim-celery", "sim"), ("train", "train")):
        banner = lab.worker_log(name)
        assert f".> {queue} " in banner, banner  # Celery's banner lists the queues it consumes
        assert sum(f".> {other} " in banner for other in ("llm", "sim", "train")) == 1, banner
    assert received not in lab.worker_log("llm") + lab.worker_log("train")

    lab.launcher.send_signal(signal.SIGINT)
    assert lab.launcher.wait(timeout=60) == 0, lab.output.read_text()
    assert len(workers) == 4  # three workers and daphne
    assert [pid for pid in workers if alive(pid)] == []
    assert "elmweb stopped" in lab.output.read_text()


@pytest.mark.skipif(os.environ.get("ELMWEB_SCALED_TESTS") != "1", reason="only under `make test-scaled`")
@pytest.mark.django_db
def test_make_test_scaled_runs_on_postgresql_redis_and_the_redis_channel_layer(settings: Any) -> None:
    from elmweb.runs.management.commands import ensure_admin

    assert servers.vendor() == "postgresql"
    assert str(settings.CELERY_BROKER_URL).startswith("redis://")
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert settings.EVENTS_TAIL_TABLE is False  # workers nudge WebSocket clients through Redis
    # The first admin of a PostgreSQL lab is not written over the SQLite lab's credentials.
    assert ensure_admin.credentials_file().name == "admin-credentials-postgresql-test_elmweb.txt"
