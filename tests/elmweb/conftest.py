"""Shared fixtures of the web tests: users, seeds, runs, a recorded task queue, a stepper."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client

from elmweb.runs import services
from elmweb.runs.models import PendingBatch, Run, Seed

load_seeds = importlib.import_module("elmweb.runs.migrations.0002_load_shipped_seeds").load_seeds


@pytest.fixture(autouse=True)
def _shipped_seeds(request: pytest.FixtureRequest) -> None:
    """Tests that use the database see the shipped seeds, as after `migrate`.

    Transactional tests empty every table when they end (seeds included), so each test
    reloads what the data migration loads.
    """
    if request.node.get_closest_marker("django_db") is not None:
        request.getfixturevalue("_django_db_helper")
        load_seeds(apps, None)


@pytest.fixture
def user(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(username="ada", password="pw-ada-123")


@pytest.fixture
def other_user(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(username="bob", password="pw-bob-123")


@pytest.fixture
def staff(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(username="sam", password="pw-sam-123", is_staff=True)


@dataclass
class Queue:
    """What the services put on the Celery queues (instead of a broker)."""

    steps: list[tuple[int, int, str]] = field(default_factory=list)
    chunks: list[tuple[int, int, int]] = field(default_factory=list)
    traces: list[tuple[int, int]] = field(default_factory=list)

    def step_batches(self, run: Run) -> list[int]:
        return [batch for run_id, batch, _ in self.steps if run_id == run.pk]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_worker: publishes to a real broker for real workers")
    config.addinivalue_line(
        "markers",
        "integration: real processes and servers; `make test-scaled` runs these again on PostgreSQL + Redis",
    )


@pytest.fixture(autouse=True)
def queue(request: pytest.FixtureRequest) -> Iterator[Queue | None]:
    """Record enqueued tasks instead of publishing them (except in ``real_worker`` tests).

    Enqueues happen on commit, so only transactional tests see them.
    """
    if request.node.get_closest_marker("real_worker") is not None:
        yield None
        return
    recorded = Queue()

    def step(*, args: tuple[int, int], queue: str) -> None:
        recorded.steps.append((*args, queue))

    def chunk(run_id: int, batch: int, index: int) -> None:
        recorded.chunks.append((run_id, batch, index))

    def traces(run_id: int, batch: int) -> None:
        recorded.traces.append((run_id, batch))

    with (
        mock.patch("elmweb.runs.tasks.step_run.apply_async", side_effect=step),
        mock.patch("elmweb.runs.tasks.evaluate_chunk.delay", side_effect=chunk),
        mock.patch("elmweb.runs.tasks.record_traces.delay", side_effect=traces),
    ):
        yield recorded


def make_run(owner: User, **config: Any) -> Run:
    """A small run: 8 children per batch, 1 simulated second, 25 evaluations."""
    values = {"seed": "square", "batch_size": 8, "evals": 25, "sim_seconds": 1.0, **config}
    return services.run_create(owner=owner, **values)


def step_until_done(run: Run, *, max_steps: int = 1000) -> Run:
    """Step a started run in this process, the way the workers would, until it stops running
    (the evaluation chunks of a run that evaluates apart included)."""
    for _ in range(max_steps):
        run.refresh_from_db()
        if run.status != Run.Status.RUNNING:
            return run
        if services.run_step(run_id=run.pk, batch=run.batches) == "evaluating":
            evaluate_chunks(run)
    raise AssertionError(f"run {run.pk} still running after {max_steps} steps")


def evaluate_chunks(run: Run) -> list[str]:
    """Run the missing evaluation chunks of ``run``'s pending batch, as `sim` workers would."""
    pending = PendingBatch.objects.get(run=run)
    return [services.run_evaluate_chunk(run_id=run.pk, batch=pending.batch, chunk=i) for i in pending.missing()]


@pytest.fixture
def ada(client: Client, user: User) -> Client:
    """A test client logged in as ``user``."""
    client.force_login(user)
    return client


@pytest.fixture
def finished_run(user: User) -> Run:
    """A finished run of 33 evaluations (5 batches of 8 after the seed), with its replays recorded."""
    run = services.run_start(run=make_run(user, evals=33), user=user)
    step_until_done(run)
    for batch in range(run.batches):
        services.run_record_traces(run_id=run.pk, batch=batch)
    return run


@pytest.fixture
def square(db: None) -> Seed:
    return Seed.objects.get(name="square")


@pytest.fixture(autouse=True)
def _test_settings(settings: Any) -> None:
    """Steps in the test process run one batch each, evaluated in-process (no processes to
    spawn); passwords use a fast hasher."""
    settings.EVAL_WORKERS = 0
    settings.STEP_CHUNK_S = 0.0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
