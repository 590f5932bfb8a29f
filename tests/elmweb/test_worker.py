"""Integration: real Celery worker processes, the broker and the database.

On the embedded defaults that is the filesystem broker (a folder of each test's own) and the
test's SQLite file; under ``make test-scaled``, Redis (queues purged) and PostgreSQL. The second
test kills the worker (its whole process group, with SIGKILL) in the middle of a run,
starts a new one, and checks that the run finishes with every genome stored exactly once,
identical to the engine's own run of the same configuration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from elmweb.celery import app as celery_app
from elmweb.runs import engine, services
from elmweb.runs.models import Evaluation, Genome, PendingBatch, Run, RunEvent, RunMetric
from tests.elmweb import servers
from tests.elmweb.conftest import make_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_worker, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
STALE_AFTER_S = 3


class Workers:
    """Starts and kills real `celery worker` processes on one broker and the test's database."""

    def __init__(self, tmp: Path, broker_env: dict[str, str]) -> None:
        self.tmp = tmp
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            **broker_env,
            "DATABASE_URL": servers.database_url(connection.settings_dict),
            "RUN_STALE_AFTER_S": str(STALE_AFTER_S),
            "WATCHDOG_INTERVAL_S": "0.5",
            "EVAL_WORKERS": "0",
        }

    def start(self, *, queues: str = "celery,llm,sim,train", **env: str) -> subprocess.Popen[bytes]:
        """Start a worker (one pool process) on ``queues``; ``env`` adds environment variables."""
        n = len(self.processes)
        argv = [
            sys.executable, "-m", "celery", "-A", "elmweb", "worker", "-Q", queues,
            "--concurrency", "1", "--loglevel", "INFO", "-n", f"test{n}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with (self.tmp / f"worker{n}.log").open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=log, process_group=0
            )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool children, as a crash would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def logs(self, *, tail: int | None = 3000, worker: int | None = None) -> str:
        """The workers' logs (or only the log of the ``worker``-th started)."""
        names = sorted(self.tmp.glob("worker*.log")) if worker is None else [self.tmp / f"worker{worker}.log"]
        texts = [p.read_text(errors="replace") for p in names]
        return "\n".join(text[-tail:] if tail else text for text in texts)

    def stop_all(self) -> None:
        """The test is over: no need for a warm shutdown."""
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)


@pytest.fixture
def workers(transactional_db: None, tmp_path: Path) -> Iterator[Workers]:
    with servers.own_broker(tmp_path / "broker") as broker_env:
        pool = Workers(tmp_path, broker_env)
        try:
            yield pool
        finally:
            pool.stop_all()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, workers: Workers) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; worker logs:\n{workers.logs()}")
        time.sleep(0.1)


def run_row(run: Run) -> Run:
    return Run.objects.defer("state").get(pk=run.pk)


def engine_genomes(run: Run) -> list[tuple]:
    """The genomes the engine alone produces for ``run``'s configuration (the reference)."""
    config = engine.run_config(run)
    scheduler = engine.new_scheduler(config, seed_text=run.seed_text, preamble=run.seed_preamble)
    records = []
    while scheduler.evaluations < config.evals:
        candidates = scheduler.ask(min(config.batch, config.evals - scheduler.evaluations))
        report = scheduler.tell(engine.evaluate(candidates, config, workers=0))
        records += engine.genome_records(report, scheduler)
    return [(r["id"], r["batch"], r["parent_id"], r["text"], r["outcome"], r["fitness"]) for r in records]


def stored_genomes(run: Run) -> list[tuple]:
    fields = ("gid", "batch", "parent_gid", "text", "outcome", "fitness")
    return list(Genome.objects.filter(run=run).order_by("gid").values_list(*fields))


def test_a_real_worker_runs_a_small_gp_run_to_the_end(user, workers: Workers) -> None:
    workers.start(EVAL_WORKERS="2")  # the pool process starts evaluation processes
    run = services.run_start(run=make_run(user, evals=33), user=user)

    wait_for(lambda: run_row(run).status != Run.Status.RUNNING, timeout=120, what="the run to end", workers=workers)

    run = run_row(run)
    assert run.status == Run.Status.FINISHED, run.error
    assert (run.evaluations, run.batches) == (33, 5)
    assert stored_genomes(run) == engine_genomes(run)
    assert list(RunMetric.objects.filter(run=run).values_list("batch", flat=True)) == [0, 1, 2, 3, 4]
    assert RunEvent.objects.filter(run=run, kind="status").last().payload == {"status": "finished"}
    elites = Genome.objects.filter(run=run, outcome__in=services.ELITE_OUTCOMES).count()
    traced = Evaluation.objects.filter(genome__run=run, trace__isnull=False)
    wait_for(lambda: traced.count() == elites, timeout=30, what="the elites' traces", workers=workers)


def test_a_run_survives_a_worker_killed_mid_batch_with_no_genome_lost_or_duplicated(
    user, workers: Workers
) -> None:
    first = workers.start()
    run = services.run_start(run=make_run(user, evals=121, sim_seconds=2.0), user=user)
    in_flight = lambda: (row := run_row(run)).batches >= 3 and row.lease_token != ""  # noqa: E731
    wait_for(in_flight, timeout=120, what="a batch in flight", workers=workers)

    workers.kill(first)
    killed_at = run_row(run)
    assert killed_at.status == Run.Status.RUNNING and killed_at.batches < 16
    workers.start()
    wait_for(lambda: run_row(run).status != Run.Status.RUNNING, timeout=180, what="the run to end", workers=workers)

    run = run_row(run)
    assert run.status == Run.Status.FINISHED, run.error
    assert (run.evaluations, run.batches) == (121, 16)
    assert stored_genomes(run) == engine_genomes(run)
    sizes = list(RunMetric.objects.filter(run=run).order_by("batch").values_list("batch", "batch_size"))
    assert sizes == [(0, 1)] + [(b, 8) for b in range(1, 16)]
    assert "re-enqueued the step of stale runs" in workers.logs(tail=None)


def test_a_language_model_run_writes_children_on_llm_and_evaluates_them_on_sim(user, workers: Workers) -> None:
    workers.start(queues="celery,llm", EVAL_CHUNK_SIZE="3")  # worker 0 holds the embedded diff model
    workers.start(queues="sim")  # worker 1 simulates
    run = services.run_start(run=make_run(user, mutation="diff", evals=17), user=user)

    wait_for(lambda: run_row(run).status != Run.Status.RUNNING, timeout=300, what="the run to end", workers=workers)

    run = run_row(run)
    assert run.status == Run.Status.FINISHED, run.error
    assert (run.evaluations, run.batches) == (17, 3)
    genomes = Genome.objects.filter(run=run)
    assert sorted(genomes.values_list("gid", flat=True)) == list(range(17))
    assert set(genomes.filter(gid__gt=0).values_list("operator", flat=True)) == {"diff"}
    assert Evaluation.objects.filter(genome__run=run).count() == genomes.exclude(outcome="failed").count()
    llm_log, sim_log = workers.logs(tail=None, worker=0), workers.logs(tail=None, worker=1)
    assert "tasks.evaluate_chunk[" not in llm_log and "tasks.step_run[" in llm_log
    assert "tasks.step_run[" not in sim_log
    received = [line for line in sim_log.splitlines() if "tasks.evaluate_chunk[" in line and "received" in line]
    assert len(received) >= 1 + 3 + 3  # the seed, then two batches of 8 in chunks of 3


def test_a_run_evaluated_apart_survives_its_sim_worker_killed_and_its_queued_chunks_lost(
    user, workers: Workers
) -> None:
    env = {"EVALUATE_APART": "ALL", "EVAL_CHUNK_SIZE": "2"}
    workers.start(queues="celery,llm,train", **env)
    sim = workers.start(queues="sim", **env)
    run = services.run_start(run=make_run(user, evals=121, sim_seconds=2.0), user=user)
    in_flight = lambda: run_row(run).batches >= 3 and PendingBatch.objects.filter(run=run).exists()  # noqa: E731
    wait_for(in_flight, timeout=120, what="a batch being evaluated", workers=workers)

    workers.kill(sim)
    celery_app.control.purge()  # the chunks (and replay tasks) queued for sim are lost too
    assert run_row(run).status == Run.Status.RUNNING
    workers.start(queues="sim", **env)
    wait_for(lambda: run_row(run).status != Run.Status.RUNNING, timeout=180, what="the run to end", workers=workers)

    run = run_row(run)
    assert run.status == Run.Status.FINISHED, run.error
    assert (run.evaluations, run.batches) == (121, 16)
    assert stored_genomes(run) == engine_genomes(run)
    assert not PendingBatch.objects.filter(run=run).exists()
    assert "pending batch taken over" in workers.logs(tail=None)
    elites = Genome.objects.filter(run=run, outcome__in=services.ELITE_OUTCOMES).count()
    traced = Evaluation.objects.filter(genome__run=run, trace__isnull=False)
    wait_for(lambda: traced.count() == elites, timeout=60, what="every elite's replay trace", workers=workers)
