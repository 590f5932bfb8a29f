"""The launcher behind `make run`: starts a worker and daphne, and stops both on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from elmweb.launch import LOG_DIR, Pool, health_url, parse_pool, port_in_use, probe_host, worker_command

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port on localhost that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    """Return the ids of the live processes whose parent is ``pid``."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def alive(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_it_probes_loopback_when_bound_to_every_address() -> None:
    assert probe_host("0.0.0.0") == "127.0.0.1"
    assert health_url(host="::", port=8000) == "http://[::1]:8000/healthz"
    assert health_url(host="127.0.0.1", port=8000) == "http://127.0.0.1:8000/healthz"


def test_it_sees_whether_a_port_is_in_use() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use(host="127.0.0.1", port=port)
    assert not port_in_use(host="127.0.0.1", port=free_port())


def test_the_worker_serves_every_queue() -> None:
    argv = worker_command(concurrency=2)

    assert argv[argv.index("-Q") + 1] == "celery,llm,sim,train"


def test_a_pool_names_its_queues_concurrency_node_and_log() -> None:
    pool = parse_pool("sim, celery=3")
    argv = worker_command(concurrency=pool.concurrency, queues=pool.queues, name=pool.name)

    assert pool == Pool(queues="sim,celery", concurrency=3, name="sim-celery")
    assert argv[argv.index("-Q") + 1] == "sim,celery" and argv[argv.index("--concurrency") + 1] == "3"
    assert argv[argv.index("-n") + 1] == "sim-celery@%h"  # several workers share one host and broker
    assert pool.log_file(LOG_DIR) == LOG_DIR / "worker-sim-celery.log"
    assert Pool(queues="celery,llm,sim,train", concurrency=2).log_file(LOG_DIR) == LOG_DIR / "worker.log"


@pytest.mark.parametrize(
    ("text", "message"),
    [("sim", "is not QUEUES=CONCURRENCY"), ("sim=0", "is not QUEUES=CONCURRENCY"),
     ("=2", "is not QUEUES=CONCURRENCY"), ("gpu=1", "names unknown queues ['gpu']")],
)  # fmt: skip
def test_a_bad_pool_is_refused_with_the_form_to_write(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)) as excinfo:
        parse_pool(text)

    assert "celery, llm, sim, train" in str(excinfo.value)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the children")
def test_it_serves_healthz_restarts_a_killed_worker_and_stops_all_on_ctrl_c(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",  # keep off var/broker, which `make run` may be using
    }
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    output = tmp_path / "launch.log"
    with output.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "elmweb.launch", "--port", str(port), "--concurrency", "1",
             "--worker-min-uptime", "0"],
            cwd=ROOT, env=env, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while f"elmweb is up at http://127.0.0.1:{port}/" not in output.read_text():
            assert launcher.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        children = children_of(launcher.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.load(response)["status"] == "ok"
        worker = next(pid for pid in children if "celery" in Path(f"/proc/{pid}/cmdline").read_text())
        os.killpg(worker, signal.SIGKILL)
        while "starting a new one" not in output.read_text() or len(children_of(launcher.pid)) < 2:
            assert launcher.poll() is None, output.read_text()
            assert time.monotonic() < deadline + 60, output.read_text()
            time.sleep(0.2)
        restarted = [pid for pid in children_of(launcher.pid) if pid not in children]

        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 0, output.read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()

    assert len(children) == 2 and len(restarted) == 1
    assert [pid for pid in children + restarted if alive(pid)] == []
    assert "elmweb stopped" in output.read_text()
    assert "First start: created superuser 'admin' with password" in output.read_text()
    assert (tmp_path / "admin-credentials.txt").read_text().startswith("username: admin\n")
