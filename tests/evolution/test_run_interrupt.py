"""Stopping a headless run with real signals: Ctrl-C, then resume; a killed run leaves no workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start(out: Path, evals: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "evolution", "run", "--seed", "square", "--evals", str(evals), "--batch", "16",
               "--workers", "2", "--seconds", "1", "--out", str(out), "--quiet"]
    # A session of its own, like a terminal's foreground job: Ctrl-C reaches every process in it.
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE, text=True)


def _wait_for_batches(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    metrics = out / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended early (rc {proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"no {n} batches within {timeout} s")


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process tables from /proc")
def test_ctrl_c_stops_a_run_between_batches_and_resume_finishes_it_with_every_genome_once(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, evals=160)
    _wait_for_batches(out, 2, proc)
    os.killpg(proc.pid, signal.SIGINT)
    rc = proc.wait(timeout=30)
    assert rc == 130, proc.stderr.read()
    stopped_at = json.loads((out / "state.json").read_text())["evaluations"]
    assert 0 < stopped_at < 160

    resumed = subprocess.run([sys.executable, "-m", "evolution", "run", "--resume", str(out), "--workers", "2", "--quiet"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    ids = [json.loads(line)["id"] for line in (out / "genomes.jsonl").read_text().splitlines()]
    assert len(ids) == 160 and len(set(ids)) == 160


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process tables from /proc")
def test_evaluation_workers_exit_when_the_run_is_killed(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, evals=100_000)
    _wait_for_batches(out, 1, proc)
    workers = _children(proc.pid)
    assert workers, "the run should have started worker processes"
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
