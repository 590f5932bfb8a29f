"""Web pipeline benchmark: a GP (or diff-model) run through the full stack vs the headless CLI.

Run: ``make bench-pipeline``. In a throw-away folder: migrate a fresh SQLite database, start
a real Celery worker (filesystem broker) and daphne, log in over HTTP, create and start a run
through the JSON API, and follow its events over the WebSocket until it finishes. Then run
the CLI (``python -m evolution run``) on the same settings.

Reported:
    pipeline evals/s: evaluations after the seed / time between the seed's batch event and
        the last batch event, as the WebSocket client saw them (queueing, stepping, storing
        every genome, events and the WebSocket hop included);
    CLI evals/s: the CLI's own rate (its batches' summed wall time, batches after the seed);
    WebSocket latency: client receive time minus the event row's creation time, per event.

``--mutation diff`` races the embedded diff model instead (``--evals 161 --batch 32`` keeps it
to a few minutes): its steps write the children on ``llm`` and ``evaluate_chunk`` tasks on ``sim``
evaluate them (``EVALUATE_APART``), so the ratio shows what that hand-over costs.

Last line: ``RESULT pipeline_evals_per_s=<x> pipeline_vs_cli=<ratio> ws_latency_p95_ms=<x>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from elmweb.wsclient import WebSocket  # noqa: E402

log = logging.getLogger("bench.pipeline")
USER, PASSWORD = "bench", "bench-password-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=300)


def start(argv: list[str], *, env: dict[str, str], log_path: Path, append: bool = False) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the repository root, in a process group of its own, logging to ``log_path``
    (``append``: after what an earlier process of the same name wrote, e.g. a restarted one)."""
    with log_path.open("ab" if append else "wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out, process_group=0)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Api:
    """The JSON API over HTTP with a session cookie and the CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.token = ""
        self.token = self.call("GET", "/api/csrf")["csrf_token"]

    def call(self, method: str, path: str, data: object = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base + path, data=None if data is None else json.dumps(data).encode(), method=method,
            headers={"Content-Type": "application/json", "X-CSRFToken": self.token},
        )  # fmt: skip
        with self.opener.open(request, timeout=30) as response:
            return json.load(response)

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.cookies if c.name == name)


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"daphne did not answer {url}; see its log in the bench folder")


def run_pipeline(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One run through worker + daphne; returns rates and latencies."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "BROKER_DIR": str(tmp / "broker"),
        "EVAL_WORKERS": str(args.workers),
        "LOG_LEVEL": "WARNING",
    }
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    create = f"from django.contrib.auth.models import User; User.objects.create_user({USER!r}, password={PASSWORD!r})"
    manage(env, "shell", "-v0", "-c", create)
    port = free_port()
    worker = start(
        [sys.executable, "-m", "celery", "-A", "elmweb", "worker", "-Q", "celery,llm,sim,train",
         "--concurrency", "1", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        env=env, log_path=tmp / "worker.log",
    )  # fmt: skip
    daphne = start(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "elmweb.asgi:application"],
        env=env, log_path=tmp / "daphne.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/healthz", daphne)
        api = Api(base)
        api.token = api.call("POST", "/api/login", {"username": USER, "password": PASSWORD})["csrf_token"]
        config = {"seed": args.seed, "batch_size": args.batch, "evals": args.evals, "sim_seconds": args.sim_seconds,
                  "mutation": args.mutation}
        run = api.call("POST", "/api/runs", config)
        ws = WebSocket("127.0.0.1", port, f"/ws/runs/{run['id']}/", timeout=600,
                       headers={"Cookie": f"sessionid={api.cookie('sessionid')}", "Origin": base})  # fmt: skip
        ws.recv_json()  # created
        started = time.time()
        api.call("POST", f"/api/runs/{run['id']}/start")
        latencies, batches = [], []
        while True:
            event = ws.recv_json()
            now = time.time()
            latencies.append(now - datetime.fromisoformat(event["at"]).timestamp())
            if event["kind"] == "batch":
                batches.append((now, event["payload"]))
                if len(batches) % 5 == 0:
                    log.info("  batch %d: %d evaluations", event["payload"]["batch"], event["payload"]["evaluations"])
            elif event["payload"].get("status") in ("finished", "failed"):
                break
        ws.close()
        final = api.call("GET", f"/api/runs/{run['id']}")
        if final["status"] != "finished":
            raise RuntimeError(f"the run did not finish: {final['error']}")
        metrics = api.call("GET", f"/api/runs/{run['id']}/metrics")["results"][1:]
    finally:
        stop(daphne)
        stop(worker)
    (t_seed, _), (t_last, last) = batches[0], batches[-1]
    return {
        "evals_per_s": (last["evaluations"] - 1) / (t_last - t_seed),
        "wall_s": t_last - started,
        "evaluations": final["evaluations"],
        "latencies_ms": [1000 * x for x in latencies],
        "coverage": last["coverage"],
        # The steps' own ask -> evaluate -> tell time, without queueing and storing.
        "engine_evals_per_s": sum(m["batch_size"] for m in metrics) / sum(m["wall_s"] for m in metrics),
    }


def run_cli(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The headless CLI on the same settings; its own evals/s after the seed batch."""
    out = tmp / "cli"
    started = time.time()
    subprocess.run(
        [sys.executable, "-m", "evolution", "-q", "run", "--seed", args.seed, "--evals", str(args.evals),
         "--batch", str(args.batch), "--seconds", str(args.sim_seconds), "--workers", str(args.workers),
         "--mutation", args.mutation, "--out", str(out)],
        cwd=ROOT, check=True, timeout=3600, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.time() - started
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    return {
        "evals_per_s": sum(r["batch_size"] for r in rows) / sum(r["wall_s"] for r in rows),
        "wall_s": wall,
        "coverage": rows[-1]["coverage"],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="square")
    parser.add_argument("--evals", type=int, default=1025, help="evaluation budget (default 1025)")
    parser.add_argument("--batch", type=int, default=64, help="children per batch (default 64)")
    parser.add_argument("--sim-seconds", type=float, default=10.0, help="simulated seconds (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="evaluation processes (default 2)")
    parser.add_argument("--mutation", choices=("gp", "diff"), default="gp",
                        help="gp (default), or diff: the embedded diff model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("%s from %s: %d evaluations, batch %d, %.0f simulated s, %d evaluation processes",
             args.mutation, args.seed, args.evals, args.batch, args.sim_seconds, args.workers)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="elmweb-bench-") as folder:
        tmp = Path(folder)
        log.info("pipeline: worker + daphne + API + WebSocket ...")
        pipe = run_pipeline(tmp, args)
        log.info("CLI: python -m evolution run ...")
        cli = run_cli(tmp, args)
    p50, p95 = percentile(pipe["latencies_ms"], 0.5), percentile(pipe["latencies_ms"], 0.95)
    ratio = pipe["evals_per_s"] / cli["evals_per_s"]
    log.info("")
    log.info("%-10s %10s %10s %10s", "", "evals/s", "wall s", "coverage")
    log.info("%-10s %10.1f %10.1f %9.2f%%", "pipeline", pipe["evals_per_s"], pipe["wall_s"], 100 * pipe["coverage"])
    log.info("%-10s %10.1f %10.1f %9.2f%%", "CLI", cli["evals_per_s"], cli["wall_s"], 100 * cli["coverage"])
    log.info("pipeline / CLI: %.2f (target >= 0.70); inside the steps alone: %.1f evals/s",
             ratio, pipe["engine_evals_per_s"])  # fmt: skip
    log.info("WebSocket event latency over %d events: p50 %.0f ms, p95 %.0f ms (target p95 < 500 ms)",
             len(pipe["latencies_ms"]), p50, p95)  # fmt: skip
    log.info("RESULT pipeline_evals_per_s=%.1f pipeline_vs_cli=%.2f ws_latency_p95_ms=%.0f",
             pipe["evals_per_s"], ratio, p95)  # fmt: skip


if __name__ == "__main__":
    main()
