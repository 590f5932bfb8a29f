"""End to end: daphne serves the ASGI application on a real port.

On a fresh database of the tests' server (a SQLite file, or a PostgreSQL database under
``make test-scaled``, where the WebSockets go through the Redis channel layer).
"""

from __future__ import annotations

import http.cookiejar
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

from elmweb.wsclient import WebSocket
from tests.elmweb import servers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
USER, PASSWORD = "wsuser", "pw-ws-12345"


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
    """Migrate a fresh database, start daphne on it, yield its base URL."""
    tmp = tmp_path_factory.mktemp("server")
    with servers.fresh_database(tmp) as database_url:
        yield from _serve(tmp, database_url)


def _serve(tmp: Path, database_url: str) -> Iterator[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "memory://",  # keep off var/broker, which `make run` may be using
    }
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
    create_user = f"from django.contrib.auth.models import User; User.objects.create_user({USER!r}, password={PASSWORD!r})"
    subprocess.run([sys.executable, "manage.py", "shell", "-v0", "-c", create_user], cwd=ROOT, env=env, check=True, timeout=120)
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


def test_daphne_answers_healthz_with_versions_and_a_healthy_database(server: str) -> None:
    status, body = get(f"{server}/healthz")

    assert status == 200, body
    report = json.loads(body)
    assert report["status"] == "ok"
    assert report["versions"]["daphne"]
    if servers.vendor() == "sqlite":
        assert report["database"] == {"vendor": "sqlite", "ok": True, "journal_mode": "wal"}
    else:
        assert report["database"] == {"vendor": "postgresql", "ok": True}


def test_daphne_serves_the_index_page(server: str) -> None:
    status, body = get(f"{server}/")

    assert status == 200
    assert b"<title>elmweb</title>" in body


def test_daphne_serves_static_files_of_the_project_and_the_admin(server: str) -> None:
    status, body = get(f"{server}/static/css/base.css")

    assert status == 200
    assert b"font-family" in body
    assert get(f"{server}/static/admin/css/base.css")[0] == 200


class Session:
    """An HTTP client with cookies and the CSRF token, like a browser's JavaScript."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.token = self.call("GET", "/api/csrf")["csrf_token"]

    def call(self, method: str, path: str, data: object = None) -> dict:
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(self.base + path, data=body, method=method)
        request.add_header("Content-Type", "application/json")
        if method != "GET":
            request.add_header("X-CSRFToken", self.token)
        with self.opener.open(request, timeout=10) as response:
            return json.load(response)

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.cookies if c.name == name)


def test_daphne_streams_a_runs_events_over_a_websocket_to_a_logged_in_user(server: str) -> None:
    session = Session(server)
    session.token = session.call("POST", "/api/login", {"username": USER, "password": PASSWORD})["csrf_token"]
    run = session.call("POST", "/api/runs", {"seed": "square", "batch_size": 8, "evals": 9})
    host, port = server.removeprefix("http://").split(":")
    headers = {"Cookie": f"sessionid={session.cookie('sessionid')}", "Origin": server}

    socket = WebSocket(host, int(port), f"/ws/runs/{run['id']}/", headers=headers)
    try:
        created = socket.recv_json()
        session.call("POST", f"/api/runs/{run['id']}/start")
        running = socket.recv_json()
        session.call("POST", f"/api/runs/{run['id']}/stop")
        finished = socket.recv_json()
    finally:
        socket.close()

    assert [e["payload"]["status"] for e in (created, running, finished)] == ["created", "running", "finished"]
    assert created["id"] < running["id"] < finished["id"]


def test_daphne_refuses_the_websocket_of_an_anonymous_client(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")

    with pytest.raises(ConnectionError, match="refused the WebSocket: HTTP/1.1 403"):
        WebSocket(host, int(port), "/ws/runs/1/", headers={"Origin": server})
