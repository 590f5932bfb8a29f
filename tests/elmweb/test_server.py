"""End to end: daphne serves the ASGI application on a real port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    """Return a TCP port on localhost that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    """Return the status and body of a GET to ``url``, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_listening(url: str, *, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url`` until it answers; fail with daphne's output if it exits or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            get(url)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"daphne did not answer {url}; its output:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate a fresh SQLite database, start daphne on it, yield its base URL."""
    tmp = tmp_path_factory.mktemp("server")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}"}
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    log = tmp / "daphne.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*daphne, "elmweb.asgi:application"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        wait_until_listening(f"http://127.0.0.1:{port}/healthz", process=process, log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_daphne_answers_healthz_with_versions_and_a_wal_database(server: str) -> None:
    status, body = get(f"{server}/healthz")

    assert status == 200, body
    report = json.loads(body)
    assert report["status"] == "ok"
    assert report["versions"]["daphne"]
    assert report["database"] == {"vendor": "sqlite", "ok": True, "journal_mode": "wal"}


def test_daphne_serves_the_index_page(server: str) -> None:
    status, body = get(f"{server}/")

    assert status == 200
    assert b"<title>elmweb</title>" in body


def test_daphne_serves_static_files_of_the_project_and_the_admin(server: str) -> None:
    status, body = get(f"{server}/static/css/base.css")

    assert status == 200
    assert b"font-family" in body
    assert get(f"{server}/static/admin/css/base.css")[0] == 200
