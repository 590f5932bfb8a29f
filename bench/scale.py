"""Scale benchmark: load, faults and bad input on the scaled stack (PostgreSQL + Redis).

Run: ``make bench-scale`` (a throw-away PostgreSQL + Redis on free ports; about 5 minutes on
two cores). By hand: point ``DATABASE_URL`` (PostgreSQL), ``CELERY_BROKER_URL`` and
``REDIS_URL`` (Redis) at servers on this machine and run ``python bench/scale.py``. It creates a
database of its own on that PostgreSQL (dropped at the end), migrates it, and starts daphne and
one Celery worker per queue the way ``make run-scaled`` does (``llm``, ``sim,celery``,
``train``), all on the loopback. Every process it starts is stopped when it ends (Ctrl-C too).

Parts (``--parts``, all by default):

load
    Two users log in over HTTP; one creates and starts 4 GP runs at once through the JSON API,
    50 browser-like WebSocket clients watch them (``/ws/runs/<id>/`` with the session cookie;
    every tenth drops its connection once and reconnects with ``?last_id=``), and the API is
    polled meanwhile. Reported: evaluations per second per run (its evaluations over its
    ``started_at`` .. ``finished_at``) and in total, WebSocket event latency p50/p95 (receive
    time minus the event row's ``created_at``, live events only), and the database size per
    100k genomes.
faults
    One round per fault, each on fresh runs (GP; the ``llm`` round adds a run of the embedded
    diff model, whose steps go to the ``llm`` worker), injected once the runs are under way:
    ``sim-child`` (kill -9 a pool child of the ``sim`` worker; Celery replaces it),
    ``sim`` (kill -9 the ``sim`` worker's main process, then its process group, and start a
    new worker, as the launcher and systemd do), ``llm`` (the same for the ``llm`` worker),
    ``web`` (kill -9 daphne and start it again on the same port) and ``redis`` (stop
    redis-server with SIGTERM and start it again from its config file). A fault is survived
    when, afterwards, every run of the round finishes, each run's genome count equals the
    evaluations it reports (and its budget), no (run, batch) is stored twice, and every
    WebSocket client (some of which drop and reconnect with ``?last_id=`` across the fault)
    received exactly the run's event ids, in order, with no gap, as the RunEvent table holds
    them. The watchdog settings are shortened (``--stale-after``, ``--watchdog``) so that
    recovery takes seconds instead of a minute.
fuzz
    1,000 seeded random requests against daphne as the first user: JSON and form posts with
    wrong types, huge numbers, missing and unknown fields, malformed JSON, wrong methods and
    content types, unknown ids, no CSRF token, no login, and every run control, clone and
    delete on the runs of the second user. Counted: 5xx answers, and changes to the second
    user's runs, genomes, metrics, events, archive cells, to the user rows and to the seeds
    (snapshots before and after).

Last line: ``RESULT faults_survived=<n>/<n> fuzz_5xx=<n> load_evals_per_s=<x>``; the exit
status is non-zero when a check failed. Logs of every process: ``bench/out/scale/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import Api, free_port, percentile, start, wait_healthy  # noqa: E402
from elmweb import launch  # noqa: E402
from elmweb.wsclient import WebSocket, WebSocketClosed  # noqa: E402

log = logging.getLogger("bench.scale")

OUT = ROOT / "bench" / "out" / "scale"
USER, PASSWORD = "scale-a", "scale-a-password-123"  # creates the runs, sends the fuzz
OTHER, OTHER_PASSWORD = "scale-b", "scale-b-password-456"  # owns the runs the fuzz must not touch
POOLS = ("llm=1", "sim,celery={sim}", "train=1")  # as `make run-scaled`
FAULTS = ("sim-child", "sim", "llm", "web", "redis")
PROGRESS_S = 5.0  # a progress line this often during the long waits
QUIET_S = 3.0  # no new event for this long (and every client caught up): a round is over


class Stop(Exception):
    """SIGTERM: stop like Ctrl-C."""


# -- servers and processes ---------------------------------------------------------------------
def required_env() -> dict[str, str]:
    """The three server URLs, checked.

    Raises:
        SystemExit: If one is missing or is not PostgreSQL / Redis on this machine.
    """
    hint = (
        "run `make bench-scale` (it starts a throw-away PostgreSQL + Redis), or point DATABASE_URL "
        "(postgres://), CELERY_BROKER_URL and REDIS_URL (redis://) at servers on this machine "
        "(`make servers-up` prints them)"
    )
    urls = {name: os.environ.get(name, "") for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    schemes = {"DATABASE_URL": ("postgres", "postgresql"), "CELERY_BROKER_URL": ("redis",), "REDIS_URL": ("redis",)}
    for name, url in urls.items():
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in schemes[name]:
            raise SystemExit(f"{name}={url or '(unset)'} is not a {schemes[name][0]}:// URL: {hint}")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"{name} points at {parts.hostname}; this benchmark kills and restarts "
                             f"servers, so it only runs on the loopback: {hint}")  # fmt: skip
    return urls


def _admin_connection(url: str) -> Any:
    """An autocommit connection to the ``postgres`` database of the server at ``url``."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    return psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""), dbname="postgres", autocommit=True,
    )  # fmt: skip


@contextlib.contextmanager
def fresh_database(url: str, *, keep: bool) -> Iterator[str]:
    """Yield the URL of a new database on the server of ``url``; dropped afterwards unless ``keep``."""
    name = f"elmweb_scale_{os.getpid()}"
    with _admin_connection(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    log.info("database %s created on %s", name, urllib.parse.urlsplit(url).netloc.rpartition("@")[2])
    try:
        yield urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))
    finally:
        if keep:
            log.info("database %s kept (--keep-db); drop it with DROP DATABASE \"%s\"", name, name)
        else:
            with contextlib.suppress(ImportError):
                from django.db import connections

                connections.close_all()
            with _admin_connection(url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in out.stdout.split()]


def cpu_ticks(pid: int) -> int:
    """User + system CPU ticks of ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def gone(pid: int) -> bool:
    """Whether process ``pid`` no longer runs (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


class Lab:
    """daphne and one Celery worker per pool, started, killed and restarted like an operator would.

    Each process runs in a process group of its own; ``close`` stops them all (SIGTERM, then
    SIGKILL to each group, so pool children go too). A killed worker's group is killed at once.
    """

    def __init__(self, *, out: Path, port: int, pools: list[launch.Pool]) -> None:
        self.out, self.port, self.pools = out, port, {pool.name: pool for pool in pools}
        self.url = f"http://127.0.0.1:{port}"
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.web: subprocess.Popen[bytes] | None = None
        self.unexpected: Counter[str] = Counter()  # processes that died without a fault and were restarted
        self.fault_at: datetime | None = None  # when the last fault struck (just before its kill)
        self._ready_from: dict[str, int] = {}

    def _log(self, name: str) -> Path:
        return self.out / f"{name}.log"

    def start_worker(self, name: str) -> None:
        pool = self.pools[name]
        argv = launch.worker_command(concurrency=pool.concurrency, queues=pool.queues, name=pool.name)
        path = self._log(f"worker-{name}")
        self._ready_from[name] = path.stat().st_size if path.exists() else 0
        process = start(argv, env=dict(os.environ), log_path=path, append=True)
        self.workers[name] = process

    def wait_workers_ready(self, names: list[str] | None = None, timeout: float = 180.0) -> None:
        """Wait until each worker logged ``ready.`` since it started (imports take a while here).

        Raises:
            RuntimeError: If one exits or stays silent; its log says why.
        """
        deadline = time.monotonic() + timeout
        for name in names or list(self.workers):
            path = self._log(f"worker-{name}")
            while b" ready." not in path.read_bytes()[self._ready_from[name]:]:
                if self.workers[name].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {name} worker did not get ready; see {path}")
                time.sleep(0.3)

    def start_web(self) -> None:
        argv = launch.server_command(host="127.0.0.1", port=self.port)
        self.web = start(argv, env=dict(os.environ), log_path=self._log("daphne"), append=True)
        wait_healthy(f"{self.url}/healthz", self.web, timeout=120.0)

    def start_all(self) -> None:
        for name in self.pools:
            self.start_worker(name)
        self.start_web()
        self.wait_workers_ready()

    def supervise(self) -> None:
        """Restart a process that died on its own (as the launcher or systemd would), and count it."""
        for name, process in list(self.workers.items()):
            if process.poll() is not None:
                log.warning("the %s worker exited by itself (status %s); starting a new one (see %s)",
                            name, process.returncode, self._log(f"worker-{name}"))  # fmt: skip
                self.unexpected[f"worker {name}"] += 1
                launch.stop([process], grace=0)
                self.start_worker(name)
        if self.web is not None and self.web.poll() is not None:
            log.warning("daphne exited by itself (status %s); starting it again (see %s)",
                        self.web.returncode, self._log("daphne"))  # fmt: skip
            self.unexpected["daphne"] += 1
            launch.stop([self.web], grace=0)
            self.start_web()

    # -- faults --------------------------------------------------------------------------------
    def mark(self) -> None:
        """Note the time of a fault, as the database's clock would (``created_at`` of events)."""
        from django.utils import timezone

        self.fault_at = timezone.now()

    def kill_pool_child(self, name: str) -> str:
        """kill -9 the busiest pool child of worker ``name``; its main process replaces it."""
        main = self.workers[name]
        before = {pid: cpu_ticks(pid) for pid in children_of(main.pid)}
        if not before:
            raise RuntimeError(f"the {name} worker (pid {main.pid}) has no pool children to kill")
        time.sleep(0.5)
        victim = max(before, key=lambda pid: cpu_ticks(pid) - before[pid])
        self.mark()
        os.kill(victim, signal.SIGKILL)
        return f"kill -9 pool child {victim} of the {name} worker (main process {main.pid} replaces it)"

    def kill_worker(self, name: str) -> str:
        """kill -9 the main process of worker ``name``, then its group; start a new worker."""
        process = self.workers[name]
        children = children_of(process.pid)
        self.mark()
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        launch.stop([process], grace=0)  # SIGKILL to its group: the orphaned pool children
        self.start_worker(name)
        self.wait_workers_ready([name])
        return (f"kill -9 main process {process.pid} of the {name} worker ({len(children)} pool children, "
                f"killed with its group); new worker {self.workers[name].pid} ready")  # fmt: skip

    def kill_web(self) -> str:
        """kill -9 daphne and start it again on the same port."""
        assert self.web is not None
        old = self.web.pid
        self.mark()
        os.kill(old, signal.SIGKILL)
        self.web.wait()
        launch.stop([self.web], grace=0)
        began = time.monotonic()
        self.start_web()
        took = time.monotonic() - began
        return f"kill -9 daphne {old}; new daphne {self.web.pid} answered /healthz after {took:.1f} s"

    def close(self) -> None:
        processes = [p for p in [*self.workers.values(), self.web] if p is not None]
        launch.stop(processes, grace=15.0)


def restart_redis(url: str, *, mark: Callable[[], None]) -> str:
    """Stop redis-server (SIGTERM: it writes its append-only file) and start it from its config file.

    Raises:
        RuntimeError: If it was started without a config file or does not daemonize (then
            restart it yourself), or does not come back.
    """
    import redis

    client = redis.Redis.from_url(url)
    info = client.info("server")
    pid, config = int(info["process_id"]), info.get("config_file", "")
    if not config or client.config_get("daemonize").get("daemonize") != "yes":
        raise RuntimeError(
            f"redis-server {pid} has no config file or does not daemonize, so it cannot be restarted "
            "from here: use `make bench-scale` (deploy/servers.sh's Redis), or skip this fault with "
            "--faults sim-child,sim,llm,web"
        )
    client.close()
    mark()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15.0
    while not gone(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server {pid} did not stop in 15 s after SIGTERM; stop it with kill -9 {pid}")
        time.sleep(0.05)
    down = time.monotonic()
    subprocess.run(["redis-server", config], check=True, stdout=subprocess.DEVNULL)
    client = redis.Redis.from_url(url, socket_timeout=1.0)
    while True:
        with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
            if client.ping():
                break
        if time.monotonic() > deadline + 10.0:
            raise RuntimeError(f"redis-server did not answer after a restart from {config}; see its log")
        time.sleep(0.05)
    new_pid = client.info("server")["process_id"]
    client.close()
    took = time.monotonic() - down
    return f"SIGTERM redis-server {pid}, started again from {config} as {new_pid} ({took:.1f} s down)"


# -- HTTP and WebSocket clients ----------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the fuzz wants each answer's own status


class Client(Api):
    """``bench.pipeline.Api`` plus raw requests that answer ``(status, body)`` whatever the status."""

    def __init__(self, base: str, *, username: str | None = None, password: str = "") -> None:
        super().__init__(base)
        self.raw = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)
        if username is not None:
            self.token = self.call("POST", "/api/login", {"username": username, "password": password})["csrf_token"]

    def send(self, method: str, path: str, data: bytes | None = None, *, content_type: str = "application/json",
             csrf: bool = True, timeout: float = 60.0) -> tuple[int, bytes]:  # fmt: skip
        headers = {"Content-Type": content_type} if data is not None else {}
        if csrf:
            headers["X-CSRFToken"] = self.token
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.raw.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.read()

    def ws_headers(self) -> dict[str, str]:
        return {"Cookie": f"sessionid={self.cookie('sessionid')}", "Origin": self.base}


def _event_time(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["at"]).timestamp()


class Watcher(threading.Thread):
    """A browser-like WebSocket client of one run: reconnects with ``?last_id=`` whenever it loses
    the connection (or is told to drop it), and records every event id and live latency."""

    def __init__(self, *, run_id: int, port: int, headers: dict[str, str]) -> None:
        super().__init__(name=f"watcher-run-{run_id}", daemon=True)
        self.run_id, self.port, self.headers = run_id, port, headers
        self.ids: list[int] = []
        self.latencies: list[float] = []  # seconds, events created while connected
        self.connects = 0
        self.failed_connects = 0
        self.losses: Counter[str] = Counter()  # why connections ended, other than a requested drop
        self.stopping = threading.Event()
        self._drop_for: float | None = None

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0

    def drop(self, seconds: float) -> None:
        """Close the connection now and reconnect with ``?last_id=`` after ``seconds``."""
        self._drop_for = seconds

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                ws = WebSocket("127.0.0.1", self.port, f"/ws/runs/{self.run_id}/?last_id={self.last_id}",
                               headers=self.headers, timeout=10.0)  # fmt: skip
            except (OSError, ConnectionError):
                self.failed_connects += 1  # the server is down (a fault): try again
                self.stopping.wait(0.3)
                continue
            self.connects += 1
            try:
                self._follow(ws, time.time())
            finally:
                ws.close()
            if self._drop_for is not None:
                self.stopping.wait(self._drop_for)
                self._drop_for = None

    def _follow(self, ws: WebSocket, connected_at: float) -> None:
        while not self.stopping.is_set() and self._drop_for is None:
            if not ws._buffer and not select.select([ws.sock], [], [], 0.25)[0]:
                continue  # a frame boundary: nothing is half read
            try:
                event = ws.recv_json()
            except WebSocketClosed as closed:
                self.losses[f"closed {closed.code}"] += 1
                return
            except (OSError, ValueError) as exc:
                self.losses[type(exc).__name__] += 1
                return
            if "id" not in event:
                self.losses["message without id"] += 1
                continue
            now, created = time.time(), _event_time(event)
            self.ids.append(event["id"])
            if created >= connected_at:
                self.latencies.append(now - created)


class Poller(threading.Thread):
    """Polls the API like a dashboard: the run list, then each run's detail and new metrics."""

    def __init__(self, client: Client, run_ids: list[int], *, every: float = 1.0) -> None:
        super().__init__(name="api-poller", daemon=True)
        self.client, self.run_ids, self.every = client, run_ids, every
        self.statuses: Counter[int] = Counter()
        self.unavailable = 0  # no answer at all (the web process is down during a fault)
        self.latencies: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        after = {run_id: -1 for run_id in self.run_ids}
        while not self.stopping.wait(self.every):
            paths = ["/api/runs?mine=1&limit=20"]
            for run_id in self.run_ids:
                paths += [f"/api/runs/{run_id}", f"/api/runs/{run_id}/metrics?after_batch={after[run_id]}"]
            for path in paths:
                began = time.perf_counter()
                try:
                    status, body = self.client.send("GET", path, timeout=30.0)
                except (urllib.error.URLError, OSError):
                    self.unavailable += 1
                    continue
                self.latencies.append(time.perf_counter() - began)
                self.statuses[status] += 1
                if status == 200 and "/metrics" in path:
                    rows = json.loads(body)["results"]
                    if rows:
                        after[int(path.split("/")[3])] = rows[-1]["batch"]


# -- runs and checks ---------------------------------------------------------------------------
def create_runs(client: Client, configs: list[dict[str, Any]]) -> list[int]:
    return [client.call("POST", "/api/runs", config)["id"] for config in configs]


def start_runs(client: Client, run_ids: list[int]) -> None:
    """Start the runs at once (one request each, in parallel)."""
    errors: list[BaseException] = []

    def start_one(run_id: int) -> None:
        try:
            client.call("POST", f"/api/runs/{run_id}/start")
        except (urllib.error.URLError, OSError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start_one, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"could not start every run: {errors[0]}")


def run_rows(run_ids: list[int]) -> dict[int, dict[str, Any]]:
    from elmweb.runs.models import Run

    fields = ("id", "status", "evaluations", "evals", "batches", "error", "started_at", "finished_at", "mutation")
    return {row["id"]: row for row in Run.objects.filter(pk__in=run_ids).values(*fields)}


def event_ids(run_id: int) -> list[int]:
    from elmweb.runs.models import RunEvent

    return list(RunEvent.objects.filter(run_id=run_id).order_by("id").values_list("id", flat=True))


def wait_for(what: str, done: Callable[[], bool], *, lab: Lab, timeout: float,
             progress: Callable[[], str]) -> bool:  # fmt: skip
    """Poll ``done`` (restarting dead processes meanwhile), with a progress line every few seconds."""
    began = time.monotonic()
    shown = began
    while not done():
        now = time.monotonic()
        if now - began > timeout:
            log.error("%s: not done after %.0f s: %s", what, timeout, progress())
            return False
        if now - shown >= PROGRESS_S:
            log.info("  %s, %3.0f s: %s", what, now - began, progress())
            shown = now
        lab.supervise()
        time.sleep(0.25)
    return True


def runs_progress(run_ids: list[int], watchers: list[Watcher]) -> Callable[[], str]:
    def line() -> str:
        rows = run_rows(run_ids)
        runs = ", ".join(f"{r['id']}: {r['evaluations']}/{r['evals']} {r['status']}" for r in rows.values())
        return f"runs {runs}; {sum(len(w.ids) for w in watchers)} events received"

    return line


def wait_quiet(run_ids: list[int], watchers: list[Watcher], *, lab: Lab, timeout: float) -> bool:
    """Wait until the runs' events stop coming (traces follow the last batch) and every client has
    received the last one."""
    state = {"last": None, "since": time.monotonic()}

    def quiet() -> bool:
        last = {run_id: (event_ids(run_id) or [0])[-1] for run_id in run_ids}
        if last != state["last"]:
            state["last"], state["since"] = last, time.monotonic()
        caught_up = all(w.last_id == last[w.run_id] for w in watchers)
        return caught_up and time.monotonic() - state["since"] >= QUIET_S

    def behind() -> str:
        last = state["last"] or {}
        late = [f"client of run {w.run_id} at {w.last_id} of {last.get(w.run_id)}"
                for w in watchers if w.last_id != last.get(w.run_id)]  # fmt: skip
        return f"{len(late)} clients behind: {', '.join(late[:4])}" if late else "waiting for quiet"

    return wait_for("events", quiet, lab=lab, timeout=timeout, progress=behind)


def check_runs(run_ids: list[int], watchers: list[Watcher]) -> list[str]:
    """Every check a round must pass; returns the problems found (empty: all passed)."""
    from django.db.models import Count

    from elmweb.runs.models import Genome, Run, RunEvent, RunMetric

    problems: list[str] = []
    for run in Run.objects.filter(pk__in=run_ids).order_by("pk"):
        where = f"run {run.pk}"
        if run.status != Run.Status.FINISHED:
            problems.append(f"{where} is {run.status}, not finished{': ' + run.error if run.error else ''}")
        genomes = Genome.objects.filter(run=run)
        count = genomes.count()
        if count != run.evaluations or run.evaluations != run.evals:
            problems.append(f"{where}: {count} genomes, {run.evaluations} evaluations reported, budget {run.evals}")
        gids = set(genomes.values_list("gid", flat=True))
        if gids != set(range(count)):
            problems.append(f"{where}: genome ids are not 0..{count - 1}")
        doubled = RunMetric.objects.filter(run=run).values("batch").annotate(n=Count("id")).filter(n__gt=1)
        if doubled:
            problems.append(f"{where}: metric rows stored twice for batches {[r['batch'] for r in doubled]}")
        payloads = RunEvent.objects.filter(run=run, kind="batch").values_list("payload", flat=True)
        batches = Counter(payload.get("batch") for payload in payloads)
        if any(n > 1 for n in batches.values()) or sorted(batches) != list(range(run.batches)):
            problems.append(f"{where}: batch events {sorted(batches.elements())} for {run.batches} batches")
        metric_sizes = dict(RunMetric.objects.filter(run=run).values_list("batch", "batch_size"))
        genome_sizes = dict(genomes.values("batch").annotate(n=Count("id")).values_list("batch", "n"))
        if metric_sizes != genome_sizes or sorted(metric_sizes) != list(range(run.batches)):
            problems.append(f"{where}: genomes per batch {genome_sizes} differ from the metric rows {metric_sizes}")
    for watcher in watchers:
        problems += check_events(watcher, event_ids(watcher.run_id))
    return problems


def untraced_elites(run_ids: list[int]) -> int:
    """Elites with no replay trace (information, not a check: a trace task lost with a killed
    worker's reserved messages is not recovered, and a re-run may time out under load)."""
    from elmweb.runs.models import Genome

    elites = Genome.objects.filter(run_id__in=run_ids, outcome__in=("new_cell", "improved"))
    return elites.filter(evaluation__trace=None).count()


def check_events(watcher: Watcher, table: list[int]) -> list[str]:
    """A client got exactly the table's event ids up to the last it saw, in order, and that last one
    is the table's last (``wait_quiet`` let it catch up)."""
    got = watcher.ids
    where = f"a client of run {watcher.run_id} ({watcher.connects} connections)"
    if any(b <= a for a, b in zip(got, got[1:])):
        back = next(i for i, (a, b) in enumerate(zip(got, got[1:])) if b <= a)
        return [f"{where} received ids out of order or twice: ... {got[max(0, back - 2):back + 3]} ..."]
    expected = [i for i in table if i <= watcher.last_id]
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        return [f"{where} missed event ids {missing[:10]}{' ...' if len(missing) > 10 else ''}"
                + (f" and got ids not in the table {extra[:10]}" if extra else "")]  # fmt: skip
    if table and watcher.last_id != table[-1]:
        return [f"{where} stopped at event {watcher.last_id}; the table goes on to {table[-1]}"]
    return []


def start_watchers(client: Client, port: int, run_ids: list[int], count: int) -> list[Watcher]:
    headers = client.ws_headers()
    watchers = [Watcher(run_id=run_ids[i % len(run_ids)], port=port, headers=headers) for i in range(count)]
    for watcher in watchers:
        watcher.start()
    deadline = time.monotonic() + 60.0
    while any(w.connects == 0 for w in watchers):
        if time.monotonic() > deadline:
            raise RuntimeError("WebSocket clients could not connect in 60 s; see bench/out/scale/daphne.log")
        time.sleep(0.1)
    return watchers


def stop_threads(threads: list[Watcher | Poller]) -> None:
    """Stop the clients; one still running after 15 s is logged with where it is stuck."""
    for thread in threads:
        thread.stopping.set()
    deadline = time.monotonic() + 15.0
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    for thread in threads:
        frame = sys._current_frames().get(thread.ident or -1)
        if thread.is_alive() and frame is not None:
            where = "".join(traceback.format_stack(frame)[-3:])
            log.warning("%s did not stop in 15 s; it is in:\n%s", thread.name, where)


def database_size() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return int(cursor.fetchone()[0])


def gp_config(args: argparse.Namespace, *, evals: int, batch: int, rng_seed: int, name: str) -> dict[str, Any]:
    return {"seed": args.seed, "name": name, "mutation": "gp", "batch_size": batch, "evals": evals,
            "sim_seconds": args.sim_seconds, "rng_seed": rng_seed}  # fmt: skip


# -- part 1: load ------------------------------------------------------------------------------
@dataclass
class LoadResult:
    rows: list[dict[str, Any]]
    evals_per_s: float
    latencies: list[float]
    events: int
    reconnects: int
    polls: Counter[int]
    poll_latencies: list[float]
    size_bytes: int
    size_growth: int
    genomes: int
    untraced: int
    problems: list[str]


def part_load(args: argparse.Namespace, lab: Lab, client: Client, *, empty_size: int) -> LoadResult:
    log.info("")
    log.info("== load: %d GP runs of %d evaluations (batch %d) at once, %d WebSocket clients, the API polled",
             args.runs, args.evals, args.batch, args.clients)  # fmt: skip
    configs = [gp_config(args, evals=args.evals, batch=args.batch, rng_seed=i, name=f"load {i}")
               for i in range(args.runs)]  # fmt: skip
    run_ids = create_runs(client, configs)
    watchers = start_watchers(client, lab.port, run_ids, args.clients)
    poller = Poller(Client(lab.url, username=USER, password=PASSWORD), run_ids)
    poller.start()
    start_runs(client, run_ids)
    droppers = watchers[::10]  # every tenth client drops its connection once, mid-run
    dropped = False

    def finished() -> bool:
        nonlocal dropped
        rows = run_rows(run_ids).values()
        if not dropped and sum(r["evaluations"] for r in rows) * 2 >= args.runs * args.evals:
            for watcher in droppers:
                watcher.drop(2.0)
            dropped = True
        return all(r["status"] in ("finished", "failed") for r in rows)

    ok = wait_for("load", finished, lab=lab, timeout=args.timeout, progress=runs_progress(run_ids, watchers))
    log.info("  load: runs ended; waiting for the last events to reach every client")
    ok = wait_quiet(run_ids, watchers, lab=lab, timeout=60.0) and ok
    stop_threads([*watchers, poller])
    problems = check_runs(run_ids, watchers) + ([] if ok else ["the load runs did not finish in time"])
    rows = []
    for row in run_rows(run_ids).values():
        ended, began = row["finished_at"], row["started_at"]
        wall = (ended - began).total_seconds() if ended and began else 0.0
        rows.append({**row, "wall_s": wall, "evals_per_s": row["evaluations"] / wall if wall else 0.0,
                     "events": len(event_ids(row["id"])),
                     "clients": sum(w.run_id == row["id"] for w in watchers)})  # fmt: skip
    began = min(r["started_at"] for r in rows)
    ended = max(r["finished_at"] or r["started_at"] for r in rows)
    total = sum(r["evaluations"] for r in rows)
    from elmweb.runs.models import Genome

    size = database_size()
    return LoadResult(
        rows=rows, evals_per_s=total / max((ended - began).total_seconds(), 1e-9),
        latencies=[x for w in watchers for x in w.latencies], events=sum(len(w.ids) for w in watchers),
        reconnects=sum(w.connects - 1 for w in watchers), polls=poller.statuses,
        poll_latencies=poller.latencies, size_bytes=size, size_growth=size - empty_size,
        genomes=Genome.objects.count(), untraced=untraced_elites(run_ids), problems=problems,
    )  # fmt: skip


def report_load(result: LoadResult) -> None:
    log.info("")
    log.info("load: evaluations per second per run (started_at .. finished_at of each run)")
    log.info("  %-6s %-9s %11s %8s %9s %8s %8s",
             "run", "status", "evaluations", "wall s", "evals/s", "events", "clients")  # fmt: skip
    for r in result.rows:
        log.info("  %-6d %-9s %11d %8.1f %9.1f %8d %8d", r["id"], r["status"], r["evaluations"], r["wall_s"],
                 r["evals_per_s"], r["events"], r["clients"])  # fmt: skip
    total = sum(r["evaluations"] for r in result.rows)
    log.info("  %-6s %-9s %11d %8s %9.1f", "total", "", total, "", result.evals_per_s)
    ms = sorted(1000 * x for x in result.latencies) or [float("nan")]
    log.info("  WebSocket: %d events received by the clients (%d reconnects); latency of %d live events: "
             "p50 %.0f ms, p95 %.0f ms, max %.0f ms", result.events, result.reconnects, len(result.latencies),
             percentile(ms, 0.5), percentile(ms, 0.95), ms[-1])  # fmt: skip
    log.info("  elites without a replay trace: %d (for information)", result.untraced)
    polls = sum(result.polls.values())
    api_ms = sorted(1000 * x for x in result.poll_latencies) or [float("nan")]
    log.info("  API polls: %d (%s), p50 %.0f ms, p95 %.0f ms", polls,
             ", ".join(f"{n}x {status}" for status, n in sorted(result.polls.items())),
             percentile(api_ms, 0.5), percentile(api_ms, 0.95))  # fmt: skip
    per = 100_000 / max(result.genomes, 1)
    log.info("  database: %.1f MB for %d genomes = %.0f MB per 100k genomes (pg_database_size / genomes); "
             "%.0f MB per 100k counting only its growth since the empty migrated database",
             result.size_bytes / 1e6, result.genomes, result.size_bytes * per / 1e6,
             result.size_growth * per / 1e6)  # fmt: skip
    for problem in result.problems:
        log.error("  FAILED: %s", problem)
    log.info("  checks: %s", "all passed" if not result.problems else f"{len(result.problems)} failed")


# -- part 2: faults ----------------------------------------------------------------------------
@dataclass
class FaultResult:
    fault: str
    action: str = ""
    runs: list[int] = field(default_factory=list)
    recovery_s: float | None = None
    reconnects: int = 0
    untraced: int = 0
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)


def inject(fault: str, lab: Lab) -> str:
    if fault == "sim-child":
        return lab.kill_pool_child("sim-celery")
    if fault == "sim":
        return lab.kill_worker("sim-celery")
    if fault == "llm":
        return lab.kill_worker("llm")
    if fault == "web":
        return lab.kill_web()
    if fault == "redis":
        return restart_redis(os.environ["CELERY_BROKER_URL"], mark=lab.mark)
    raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")


def part_fault(fault: str, args: argparse.Namespace, lab: Lab, client: Client, index: int) -> FaultResult:
    from django.utils import timezone

    from elmweb.runs.models import RunEvent

    began = time.monotonic()
    result = FaultResult(fault)
    configs = [gp_config(args, evals=args.fault_evals, batch=args.fault_batch, rng_seed=100 + 10 * index + i,
                         name=f"fault {fault} {i}") for i in range(args.fault_runs)]  # fmt: skip
    if fault == "llm":  # a run whose steps the llm worker takes: the embedded diff model
        configs.append({"seed": args.seed, "name": "fault llm diff", "mutation": "diff",
                        "batch_size": args.llm_batch, "evals": args.llm_evals,
                        "sim_seconds": args.sim_seconds})  # fmt: skip
    result.runs = run_ids = create_runs(client, configs)
    watchers = start_watchers(client, lab.port, run_ids, 3 * len(run_ids))
    droppers = watchers[2::3]  # one client per run drops its connection across the fault
    start_runs(client, run_ids)
    targets = [run_ids[-1]] if fault == "llm" else run_ids

    def under_way() -> bool:
        rows = run_rows(targets)
        if fault == "llm":
            return all(r["batches"] >= 2 or r["status"] != "running" for r in rows.values())
        return all(r["evaluations"] * 4 >= r["evals"] or r["status"] != "running" for r in rows.values())

    ok = wait_for(f"{fault}: runs under way", under_way, lab=lab, timeout=args.timeout,
                  progress=runs_progress(run_ids, watchers))  # fmt: skip
    running = [r["id"] for r in run_rows(targets).values() if r["status"] == "running"]
    if not ok or not running:
        result.problems.append(f"the runs were not running when the fault was due ({run_rows(targets)}); "
                               "give them larger budgets: --fault-evals / --llm-evals")  # fmt: skip
    for watcher in droppers:
        watcher.drop(3.0)
    lab.fault_at = None
    try:
        result.action = inject(fault, lab)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        result.action = f"could not inject: {exc}"
        result.problems.append(result.action)
    log.info("  %s: %s", fault, result.action)
    def ended() -> bool:
        return all(r["status"] in ("finished", "failed") for r in run_rows(run_ids).values())

    done = wait_for(f"{fault}: runs finishing", ended, lab=lab, timeout=args.timeout,
                    progress=runs_progress(run_ids, watchers))  # fmt: skip
    done = wait_quiet(run_ids, watchers, lab=lab, timeout=60.0) and done
    stop_threads(watchers)
    recoveries = []
    fault_at = lab.fault_at or timezone.now()
    for run_id in running:
        after = RunEvent.objects.filter(run_id=run_id, kind="batch", created_at__gt=fault_at).order_by("id").first()
        if after is not None:
            recoveries.append((after.created_at - fault_at).total_seconds())
    result.recovery_s = max(recoveries) if recoveries else None
    result.reconnects = sum(w.connects - 1 for w in watchers)
    result.untraced = untraced_elites(run_ids)
    result.problems += check_runs(run_ids, watchers) + ([] if done else ["the runs did not finish in time"])
    result.wall_s = time.monotonic() - began
    return result


def report_faults(results: list[FaultResult]) -> None:
    log.info("")
    log.info("faults: each injected mid-run; survived = every check passed afterwards")
    log.info("  %-9s %-13s %12s %10s %9s %7s  %s",
             "fault", "runs", "first batch", "reconnects", "untraced", "wall s", "checks")  # fmt: skip
    for r in results:
        recovery = f"+{r.recovery_s:.1f} s" if r.recovery_s is not None else "-"
        checks = "survived" if not r.problems else f"FAILED ({len(r.problems)})"
        log.info("  %-9s %-13s %12s %10d %9d %7.0f  %s", r.fault, ",".join(map(str, r.runs)), recovery,
                 r.reconnects, r.untraced, r.wall_s, checks)  # fmt: skip
    log.info("  (first batch: the slowest of the runs running at the fault to commit a batch after it; "
             "untraced: elites left without a replay trace, for information)")
    for r in results:
        log.info("  %s: %s", r.fault, r.action)
        for problem in r.problems:
            log.error("  %s FAILED: %s", r.fault, problem)


# -- part 3: fuzz ------------------------------------------------------------------------------
WRONG: list[Any] = [
    None, True, False, "", "x", "12", "1e3", "-1", [], [1], [[0, 10]], {}, {"a": 1}, 3.5, -7, 0,
    10**30, -(10**30), 2**63, 2**64, 1e308, float("inf"), float("-inf"), float("nan"), "\x00",
    "\u00e9" * 300, "<script>alert(1)</script>", "' OR 1=1 --", "9" * 400, "x" * 5000,
]  # fmt: skip
FORM = "application/x-www-form-urlencoded"
HUGE_IDS = ["0", "999999", "2147483648", "9223372036854775808", "99999999999999999999999999"]
QUERY_VALUES = ["", "x", "-1", "0", "1", "3.5", "1e3", "2147483648", "9223372036854775808", "9" * 40,
                "%00", "1,2", ",", "a,b", "nan", "inf", "true"]  # fmt: skip
MALFORMED = [
    b"{", b'{"seed": }', b"\xff\xfe\x00", b"[1, 2]", b"null", b'"square"', b"1e999999", b"{}" * 3,
    b'{"seed": "square", "evals": 1e999}', b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000,
    b"\x00" * 10, "{\"name\": \"\ud800\"}".encode("utf-8", "surrogatepass"),
]  # fmt: skip
RUN_FIELDS = {
    "seed": "square", "name": "fuzz", "terrain": "flat", "mutation": "gp", "batch_size": 8, "evals": 17,
    "sim_seconds": 1.0, "rng_seed": 1, "dims": [12, 12, 12], "ranges": [[0, 10], [0, 10], [0, 5]],
}  # fmt: skip
MODEL_FIELDS = {"runs": [1], "name": "m", "threshold": 0.5, "heldout": 0.1, "init": "pretrained", "minutes": 1.0,
                "max_steps": 10, "samples": 4, "base": ""}  # fmt: skip


@dataclass
class Request:
    method: str
    path: str
    data: bytes | None = None
    content_type: str = "application/json"
    csrf: bool = True
    session: str = "user"  # "user" (the first user) or "anon" (not logged in)

    def __str__(self) -> str:
        body = "" if self.data is None else f" {self.content_type} {self.data[:100]!r}"
        return f"{self.method} {self.path}{body}{'' if self.csrf else ' (no CSRF token)'}" + (
            " (not logged in)" if self.session == "anon" else ""
        )


class Fuzzer:
    """Random requests from a seeded RNG over every API route and form post of the lab."""

    def __init__(self, rng: random.Random, *, mine: list[int], theirs: list[int], genomes: int, token: str) -> None:
        self.rng, self.mine, self.theirs, self.genomes, self.token = rng, mine, theirs, genomes, token
        self.unknown = str(max([*mine, *theirs]) + 1000)

    def run_id(self) -> str:
        pick = self.rng.random()
        if pick < 0.45:
            return str(self.rng.choice(self.theirs))
        if pick < 0.8:
            return str(self.rng.choice(self.mine))
        return self.rng.choice([self.unknown, *HUGE_IDS])

    def value(self) -> Any:
        return self.rng.choice(WRONG)

    def query(self, *names: str) -> str:
        chosen = [n for n in names if self.rng.random() < 0.6]
        pairs = [f"{n}={urllib.parse.quote(self.rng.choice(QUERY_VALUES))}" for n in chosen]
        return "?" + "&".join(pairs) if pairs else ""

    def json_body(self, base: dict[str, Any]) -> bytes:
        """``base`` with fields dropped, replaced by wrong values or added; sometimes malformed."""
        roll = self.rng.random()
        if roll < 0.12:
            return self.rng.choice(MALFORMED)
        data = dict(base)
        for name in list(data):
            if self.rng.random() < 0.25:
                del data[name]
        for _ in range(self.rng.randint(1, 3)):
            data[self.rng.choice([*base, "unknown", "owner", "status", "evaluations", "id"])] = self.value()
        return json.dumps(data).encode()

    def form_body(self, base: dict[str, Any]) -> bytes:
        data = {k: v for k, v in base.items() if self.rng.random() < 0.7}
        for _ in range(self.rng.randint(1, 3)):
            data[self.rng.choice([*base, "unknown"])] = self.value()
        return urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}).encode()

    def body(self, base: dict[str, Any]) -> tuple[bytes, str]:
        if self.rng.random() < 0.3:
            return self.form_body(base), FORM
        content_type = self.rng.choices(["application/json", "text/plain", "multipart/form-data; boundary=x"],
                                        weights=(90, 5, 5))[0]  # fmt: skip
        return self.json_body(base), content_type

    def others_runs(self) -> list[Request]:
        """Every control, clone, delete and read of the other user's runs."""
        requests = []
        for run_id in self.theirs:
            for action in ("start", "pause", "resume", "stop", "clone", "delete"):
                requests.append(Request("POST", f"/api/runs/{run_id}/{action}", b"{}"))
            requests += [
                Request("DELETE", f"/api/runs/{run_id}"),
                Request("PATCH", f"/api/runs/{run_id}", b'{"status": "running"}'),
                Request("PUT", f"/api/runs/{run_id}", b'{"evals": 1}'), Request("GET", f"/api/runs/{run_id}"),
                Request("GET", f"/runs/{run_id}/"),
            ]  # fmt: skip
            form = urllib.parse.urlencode({"csrfmiddlewaretoken": self.token, "post": "yes"}).encode()
            requests.append(Request("POST", f"/admin/runs/run/{run_id}/delete/", form, FORM))
        return requests

    def random(self) -> Request:
        rng = self.rng
        kind = rng.choices(
            ["create", "action", "read", "genome", "seed", "model", "page", "login", "admin", "method"],
            weights=(22, 18, 14, 10, 6, 8, 8, 6, 4, 4),
        )[0]  # fmt: skip
        if kind == "create":
            data, content_type = self.body(RUN_FIELDS)
            request = Request("POST", "/api/runs", data, content_type)
        elif kind == "action":
            action = rng.choice(["start", "pause", "resume", "stop", "clone", "delete", "", "restart", "x" * 80])
            data, content_type = self.body({"name": "fuzz clone"})
            request = Request("POST", f"/api/runs/{self.run_id()}/{action}", data, content_type)
        elif kind == "read":
            run_id = self.run_id()
            path = rng.choice([
                f"/api/runs/{run_id}", f"/api/runs/{run_id}/metrics{self.query('after_batch')}",
                f"/api/runs/{run_id}/archive", f"/api/runs/{run_id}/events{self.query('after', 'limit')}",
                f"/api/runs{self.query('status', 'mine', 'limit')}", "/api/me", "/api/csrf", "/api/nothing/here",
            ])  # fmt: skip
            request = Request("GET", path)
        elif kind == "genome":
            run_id, gid = self.run_id(), rng.choice([*map(str, range(self.genomes)), *HUGE_IDS])
            path = rng.choice([
                f"/api/runs/{run_id}/genomes{self.query('outcome', 'cell', 'operator', 'batch', 'after', 'limit')}",
                f"/api/runs/{run_id}/genomes/{gid}", f"/api/runs/{run_id}/genomes/{gid}/trace",
                f"/api/runs/{run_id}/genomes/{gid}/lineage{self.query('limit')}",
                f"/api/runs/{run_id}/genomes/{gid}/descendants{self.query('limit')}",
            ])  # fmt: skip
            request = Request("GET", path)
        elif kind == "seed":
            name = rng.choice(["square", "radial", "nope", "x" * 70])
            if rng.random() < 0.5:
                request = Request("GET", rng.choice(["/api/seeds" + self.query("enabled"), f"/api/seeds/{name}",
                                                     f"/api/seeds/{name}/trace{self.query('terrain')}"]))  # fmt: skip
            else:
                seed = {"name": "fuzzseed", "text": "def make_walker(): pass", "enabled": False}
                data, content_type = self.body(seed)
                path = rng.choice(["/api/seeds", f"/api/seeds/{name}"])
                request = Request(rng.choice(["POST", "PATCH"]), path, data, content_type)
        elif kind == "model":
            model_id = rng.choice(["1", *HUGE_IDS])
            if rng.random() < 0.5:
                request = Request("GET", rng.choice([
                    "/api/models", f"/api/models/{model_id}", f"/api/models/{model_id}/evaluation",
                    f"/api/models/{model_id}/replay{self.query('terrain', 'source', 'rank')}",
                    f"/api/models/dataset{self.query('runs', 'threshold', 'heldout')}",
                ]))  # fmt: skip
            else:
                # never a valid training job: a wrong value always replaces its runs (training would
                # take the CPU for minutes)
                base = dict(MODEL_FIELDS, runs=rng.choice([[], [int(self.unknown)], "x", [int(self.theirs[0])], None]))
                data, content_type = self.body(base)
                path = rng.choice(["/api/models", f"/api/models/{model_id}/cancel", f"/api/models/{model_id}/stage3"])
                request = Request("POST", path, data, content_type)
        elif kind == "page":
            run_id, pk = self.run_id(), rng.choice(["1", "2", *HUGE_IDS])
            request = Request("GET", rng.choice([
                "/", f"/runs/{run_id}/", f"/runs/{run_id}/genomes/{pk}/", f"/genomes/{pk}/", f"/genomes/{pk}/lineage/",
                f"/compare/{self.query('runs')}", f"/compare/?runs={run_id},{self.run_id()}", "/seeds/", "/models/",
                f"/models/{pk}/", "/healthz", "/favicon.ico", "/static/nothing.js",
            ]))  # fmt: skip
        elif kind == "login":
            fields = {"username": rng.choice([USER, "nobody", "", self.value()]), "password": self.value()}
            if rng.random() < 0.5:
                data, content_type = self.body(fields)
                request = Request("POST", "/api/login", data, content_type, session="anon")
            else:  # the login page's form
                form = {"csrfmiddlewaretoken": self.token, **{k: str(v) for k, v in fields.items()}}
                request = Request("POST", "/accounts/login/", urllib.parse.urlencode(form).encode(),
                                  FORM, session="anon")  # fmt: skip
        elif kind == "admin":
            run_id = self.run_id()
            fields = {"csrfmiddlewaretoken": self.token, "status": "running", "evals": "1", "post": "yes"}
            form = urllib.parse.urlencode(fields).encode()
            path = rng.choice([f"/admin/runs/run/{run_id}/change/", f"/admin/runs/run/{run_id}/delete/",
                               "/admin/runs/seed/square/change/", "/admin/auth/user/"])  # fmt: skip
            request = Request(rng.choice(["GET", "POST"]), path, form, FORM)
        else:
            run_id = self.run_id()
            path = rng.choice(["/api/runs", f"/api/runs/{run_id}", f"/api/runs/{run_id}/start", "/api/login",
                               "/api/csrf", f"/api/runs/{run_id}/genomes", "/healthz", "/"])  # fmt: skip
            request = Request(rng.choice(["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "GET", "POST"]), path, b"{}")
        if rng.random() < 0.05:
            request.csrf = False
        if rng.random() < 0.05:
            request.session = "anon"
        return request


@dataclass
class FuzzResult:
    requests: int
    statuses: Counter[int]
    errors: list[str]  # 5xx answers and requests with no answer
    changes: list[str]
    wall_s: float


def snapshot(owner_ids: list[int]) -> dict[str, Any]:
    """Everything that belongs to ``owner_ids`` (their runs and all they hold), the user rows and
    the seeds: what a non-staff caller must not be able to change."""
    from django.contrib.auth.models import User
    from django.db.models import Count

    from elmweb.runs.models import ArchiveCell, Evaluation, Genome, Run, RunEvent, RunMetric, Seed

    data: dict[str, Any] = {}
    for run in Run.objects.filter(owner_id__in=owner_ids).values():
        run["state"] = json.dumps(run["state"], sort_keys=True)
        data[f"run {run['id']}"] = run
    for model, name in ((Genome, "genomes"), (RunMetric, "metrics"), (RunEvent, "events"), (ArchiveCell, "cells")):
        counts = model.objects.filter(run__owner_id__in=owner_ids).values("run").annotate(n=Count("pk"))
        for row in counts:
            data[f"{name} of run {row['run']}"] = row["n"]
    traces = Evaluation.objects.filter(genome__run__owner_id__in=owner_ids).exclude(trace=None).count()
    data["traces of their genomes"] = traces
    for user in User.objects.values():
        data[f"user {user['username']}"] = {k: v for k, v in user.items() if k != "last_login"}
    for seed in Seed.objects.values():
        data[f"seed {seed['name']}"] = seed
    return data


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    found = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            found.append(f"{key}: deleted")
        elif key not in before:
            found.append(f"{key}: added ({after[key]})")
        elif before[key] != after[key]:
            old, new = before[key], after[key]
            if isinstance(old, dict):
                diff = {k: (old.get(k), new.get(k)) for k in old if old.get(k) != new.get(k)}
                found.append(f"{key}: changed {diff}")
            else:
                found.append(f"{key}: {old} -> {new}")
    return found


def wait_still(*, lab: Lab, timeout: float) -> bool:
    """Wait until no event was written for ``QUIET_S`` (replay traces follow a run's last batch)."""
    from datetime import timedelta

    from django.utils import timezone

    from elmweb.runs.models import RunEvent

    def still() -> bool:
        return not RunEvent.objects.filter(created_at__gt=timezone.now() - timedelta(seconds=QUIET_S)).exists()

    return wait_for("quiet", still, lab=lab, timeout=timeout, progress=lambda: "events are still being written")


def prepare_other_user(args: argparse.Namespace, lab: Lab) -> list[int]:
    """The second user's runs: one created, one paused, one finished (small budgets)."""
    other = Client(lab.url, username=OTHER, password=OTHER_PASSWORD)
    configs = [gp_config(args, evals=evals, batch=8, rng_seed=500 + i, name=f"theirs {i}")
               for i, evals in enumerate((17, 10_000, 17))]  # fmt: skip
    created, paused, finished = run_ids = create_runs(other, configs)
    start_runs(other, [paused, finished])
    other.call("POST", f"/api/runs/{paused}/pause")
    wanted = {created: "created", paused: "paused", finished: "finished"}

    def statuses() -> dict[int, str]:
        return {run_id: row["status"] for run_id, row in run_rows(run_ids).items()}

    if not wait_for("the other user's runs", lambda: statuses() == wanted, lab=lab, timeout=args.timeout,
                    progress=lambda: str(statuses())):  # fmt: skip
        raise RuntimeError(f"the other user's runs are {statuses()}, not {wanted}; see {OUT / 'worker-sim-celery.log'}")
    wait_still(lab=lab, timeout=60.0)
    return run_ids


def own_runs(client: Client) -> list[int]:
    """The first user's runs (one is created if the other parts did not run)."""
    from elmweb.runs.models import Run

    mine = list(Run.objects.filter(owner__username=USER).values_list("pk", flat=True))
    return mine or [client.call("POST", "/api/runs", {"seed": "square", "name": "mine"})["id"]]


def part_fuzz(args: argparse.Namespace, lab: Lab, client: Client) -> FuzzResult:
    from django.contrib.auth.models import User

    from elmweb.runs.models import Run

    log.info("")
    log.info("== fuzz: %d requests (seed %d) as %s, on %s's runs among others", args.fuzz, args.fuzz_seed, USER, OTHER)
    theirs = prepare_other_user(args, lab)
    mine = own_runs(client)
    other_id = User.objects.get(username=OTHER).pk
    before = snapshot([other_id])
    anon = Client(lab.url)
    fuzzer = Fuzzer(random.Random(args.fuzz_seed), mine=mine, theirs=theirs, genomes=17, token=client.token)
    requests = fuzzer.others_runs()
    requests += [fuzzer.random() for _ in range(args.fuzz - len(requests))]
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    began = shown = time.monotonic()
    for i, request in enumerate(requests, 1):
        session = client if request.session == "user" else anon
        try:
            status, answer = session.send(request.method, request.path, request.data,
                                          content_type=request.content_type, csrf=request.csrf)  # fmt: skip
        except (urllib.error.URLError, OSError) as exc:
            statuses[0] += 1
            errors.append(f"no answer ({exc}): {request}")
            lab.supervise()
            continue
        statuses[status] += 1
        if status >= 500:
            errors.append(f"{status}: {request} -> {answer[:200]!r}")
        if time.monotonic() - shown >= PROGRESS_S:
            errors_so_far = sum(n for status, n in statuses.items() if status >= 500)
            log.info("  fuzz: %d/%d requests, %d 5xx so far", i, len(requests), errors_so_far)
            shown = time.monotonic()
    wall = time.monotonic() - began
    # Runs the fuzz created and started are stopped (the first user's own), so they stop taking the CPU.
    for run_id in Run.objects.filter(owner__username=USER, status__in=Run.CONTROLLABLE).values_list("pk", flat=True):
        client.send("POST", f"/api/runs/{run_id}/stop")
    wait_still(lab=lab, timeout=60.0)
    return FuzzResult(len(requests), statuses, errors, changes(before, snapshot([other_id])), wall)


def report_fuzz(result: FuzzResult) -> None:
    log.info("")
    rate = result.requests / max(result.wall_s, 1e-9)
    log.info("fuzz: %d requests in %.0f s (%.0f/s)", result.requests, result.wall_s, rate)
    classes = Counter(f"{status // 100}xx" if status else "no answer" for status in result.statuses.elements())
    log.info("  %s", ", ".join(f"{name}: {n}" for name, n in sorted(classes.items())))
    log.info("  by status: %s", ", ".join(f"{status}: {n}" for status, n in sorted(result.statuses.items())))
    log.info("  5xx or no answer: %d; unauthorized changes to the other user's data, users, seeds: %d",
             len(result.errors), len(result.changes))  # fmt: skip
    for error in result.errors[:20]:
        log.error("  FAILED: %s", error)
    for change in result.changes[:20]:
        log.error("  CHANGED: %s", change)


# -- main --------------------------------------------------------------------------------------
def configure_environment(args: argparse.Namespace, database_url: str) -> None:
    """The settings every process of the lab reads (this one included)."""
    os.environ.update({
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "elmweb.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "LOG_LEVEL": "INFO",
        "EVAL_WORKERS": str(args.eval_workers),
        "RUN_STALE_AFTER_S": str(args.stale_after),
        "WATCHDOG_INTERVAL_S": str(args.watchdog),
        "STEP_CHUNK_S": str(args.step_chunk),
    })  # fmt: skip


def prepare_database() -> int:
    """Migrate, create the two users; return the size of the database then."""
    import django
    from django.core.management import call_command

    django.setup()
    from django.contrib.auth.models import User

    from elmweb.celery import app as celery_app

    call_command("migrate", "--noinput", verbosity=0)
    User.objects.create_user(USER, password=PASSWORD)
    User.objects.create_user(OTHER, password=OTHER_PASSWORD)
    celery_app.control.purge()  # nothing an earlier benchmark queued on this Redis
    return database_size()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    parser.add_argument("--parts", default="load,faults,fuzz", help="which parts, comma-separated")
    parser.add_argument("--seed", default="square", help="seed of every run")
    parser.add_argument("--sim-seconds", type=float, default=10.0, help="simulated seconds per evaluation")
    parser.add_argument("--runs", type=int, default=4, help="load: runs at once")
    parser.add_argument("--clients", type=int, default=50, help="load: WebSocket clients")
    parser.add_argument("--evals", type=int, default=2500, help="load: evaluations per run")
    parser.add_argument("--batch", type=int, default=32, help="load: batch size")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"faults, in order (of {', '.join(FAULTS)})")
    parser.add_argument("--fault-runs", type=int, default=2, help="faults: GP runs per round")
    parser.add_argument("--fault-evals", type=int, default=600, help="faults: evaluations per GP run")
    parser.add_argument("--fault-batch", type=int, default=16, help="faults: batch size of the GP runs")
    parser.add_argument("--llm-evals", type=int, default=41, help="faults: evaluations of the diff run (llm round)")
    parser.add_argument("--llm-batch", type=int, default=8, help="faults: batch size of the diff run")
    parser.add_argument("--fuzz", type=int, default=1000, help="fuzz: requests")
    parser.add_argument("--fuzz-seed", type=int, default=0, help="fuzz: seed of its RNG")
    parser.add_argument("--sim-concurrency", type=int, default=2, help="processes of the sim worker")
    parser.add_argument("--eval-workers", type=int, default=0, help="EVAL_WORKERS of each step")
    parser.add_argument("--stale-after", type=float, default=10.0, help="RUN_STALE_AFTER_S (the watchdog's staleness)")
    parser.add_argument("--watchdog", type=float, default=1.0, help="WATCHDOG_INTERVAL_S")
    parser.add_argument("--step-chunk", type=float, default=3.0, help="STEP_CHUNK_S")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a wait may take before it fails")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark's database")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = sorted(set(args.parts) - {"load", "faults", "fuzz"}) + sorted(set(args.faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown parts or faults {unknown}: parts are load, faults, fuzz; faults {', '.join(FAULTS)}")
    return args


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    signal.signal(signal.SIGTERM, _raise_stop)
    urls = required_env()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.log"):
        old.unlink()
    began = time.monotonic()
    load: LoadResult | None = None
    faults: list[FaultResult] = []
    fuzz: FuzzResult | None = None
    failed: list[str] = []
    with fresh_database(urls["DATABASE_URL"], keep=args.keep_db) as database_url:
        configure_environment(args, database_url)
        empty_size = prepare_database()
        pools = [launch.parse_pool(text.format(sim=args.sim_concurrency)) for text in POOLS]
        lab = Lab(out=OUT, port=free_port(), pools=pools)
        try:
            log.info("starting daphne on %s and workers %s (logs in %s) ...", lab.url,
                     ", ".join(f"{p.queues}={p.concurrency}" for p in pools), OUT.relative_to(ROOT))  # fmt: skip
            lab.start_all()
            log.info("up after %.0f s", time.monotonic() - began)
            client = Client(lab.url, username=USER, password=PASSWORD)
            if "load" in args.parts:
                load = part_load(args, lab, client, empty_size=empty_size)
                report_load(load)
                failed += [f"load: {p}" for p in load.problems]
            if "faults" in args.parts:
                log.info("")
                log.info("== faults: %s, each on %d GP runs of %d evaluations "
                         "(RUN_STALE_AFTER_S=%g, WATCHDOG_INTERVAL_S=%g)", ", ".join(args.faults),
                         args.fault_runs, args.fault_evals, args.stale_after, args.watchdog)  # fmt: skip
                for index, fault in enumerate(args.faults):
                    faults.append(part_fault(fault, args, lab, client, index))
                    log.info("  %s: %s", fault, "survived" if not faults[-1].problems else "FAILED")
                report_faults(faults)
                failed += [f"fault {r.fault}: {p}" for r in faults for p in r.problems]
            if "fuzz" in args.parts:
                fuzz = part_fuzz(args, lab, client)
                report_fuzz(fuzz)
                failed += fuzz.errors + [f"unauthorized change: {c}" for c in fuzz.changes]
            if lab.unexpected:
                log.warning("processes that died without a fault (and were restarted): %s", dict(lab.unexpected))
        except (KeyboardInterrupt, Stop) as stop:
            log.error("interrupted (%s); stopping every process", type(stop).__name__)
            failed.append("interrupted")
        except RuntimeError as exc:  # the lab could not be driven on (a message says what to do)
            log.error("stopped: %s", exc)
            failed.append(str(exc))
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            lab.close()
    log.info("")
    verdict = "every check passed" if not failed else f"{len(failed)} checks FAILED (logs in {OUT.relative_to(ROOT)})"
    log.info("wall time %.0f s; %s", time.monotonic() - began, verdict)
    survived = sum(not r.problems for r in faults)
    log.info(
        "RESULT faults_survived=%s fuzz_5xx=%s load_evals_per_s=%s",
        f"{survived}/{len(faults)}" if "faults" in args.parts else "n/a",
        sum(n for status, n in fuzz.statuses.items() if status >= 500) if fuzz else "n/a",
        f"{load.evals_per_s:.1f}" if load else "n/a",
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
