"""Indexes: with 100,000 genomes in a run, listing, filtering and lineage stay under 200 ms."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from elmweb.runs import selectors
from elmweb.runs.models import Genome, Run
from tests.elmweb.conftest import make_run

pytestmark = pytest.mark.django_db

GENOMES = 100_000
BATCH = 64
BUDGET_S = 0.200
OPERATORS = ("gp", "diff", "rewrite")
OUTCOMES = ("new_cell", "improved", "not_kept", "failed")


def fill(run: Run) -> None:
    """100,000 genomes of one run: each child's parent is in the batch before, so lineages are deep.

    Inserted with plain ``executemany`` (the ORM's bulk_create takes several times longer).
    """
    rng = random.Random(0)
    first = (Genome.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    genomes, evaluations, cells = [], [], {}
    for gid in range(GENOMES):
        batch = 0 if gid == 0 else 1 + (gid - 1) // BATCH
        parent = None if gid == 0 else rng.randrange(max(0, gid - 2 * BATCH), gid - (gid - 1) % BATCH)
        outcome = "new_cell" if gid == 0 else rng.choices(OUTCOMES, weights=(2, 3, 60, 35))[0]
        coords = (rng.randrange(12), rng.randrange(12), rng.randrange(12))
        valid = outcome != "failed"
        key = ",".join(map(str, coords)) if valid else ""
        fitness = rng.random() if valid else None
        genomes.append((
            first + gid, run.pk, gid, batch, None if parent is None else first + parent, parent,
            "def make_walker(): ...", "", rng.choice(OPERATORS), "", outcome,
            "" if valid else "exception", "", fitness, key, "[]", "2026-01-01 00:00:00",
        ))  # fmt: skip
        if valid:
            evaluations.append((first + gid, fitness, 1.0, 1.0, 1.0, json.dumps(coords), "flat", 10.0, 1.0))
        if outcome in ("new_cell", "improved"):
            cells[key] = (run.pk, key, json.dumps(coords), first + gid, fitness, batch)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO runs_genome (id, run_id, gid, batch, parent_id, parent_gid, text, diff, operator, "
            "message, outcome, failure, failure_message, fitness, cell, warnings, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            genomes,
        )
        cursor.executemany(
            "INSERT INTO runs_evaluation (genome_id, fitness, height, width, mass, cell, terrain, "
            "sim_seconds, settle_seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            evaluations,
        )
        cursor.executemany(
            "INSERT INTO runs_archivecell (run_id, cell, coords, genome_id, fitness, batch) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            list(cells.values()),
        )


@pytest.fixture
def big_run(user) -> Run:
    run = make_run(user)
    fill(run)
    return run


def timed(call: Callable[[], Any]) -> float:
    """Median wall time of three calls, in seconds (the first also warms caches)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_pages_of_a_run_with_100k_genomes_answer_in_under_200_ms(big_run: Run) -> None:
    run = selectors.run_get(run_id=big_run.pk)
    deepest = selectors.genome_get(run=run, gid=GENOMES - 1)
    seed = selectors.genome_get(run=run, gid=0)
    pages: dict[str, Callable[[], Any]] = {
        "first page": lambda: selectors.genome_list(run=run),
        "last page": lambda: selectors.genome_list(run=run, after=GENOMES - 51),
        "by outcome": lambda: selectors.genome_list(run=run, outcome="improved", after=GENOMES // 2),
        "by cell": lambda: selectors.genome_list(run=run, cell="3,4,5"),
        "by operator": lambda: selectors.genome_list(run=run, operator="diff", after=GENOMES // 2),
        "by batch": lambda: selectors.genome_list(run=run, batch=1000),
        "children": lambda: selectors.genome_children(genome=seed),
        "lineage": lambda: selectors.genome_lineage(genome=deepest),
        "genome detail": lambda: selectors.genome_dict(deepest),
        "archive": lambda: selectors.run_archive(run=run),
        "run detail": lambda: selectors.run_dict(run),
    }

    times = {name: timed(call) for name, call in pages.items()}

    slow = {name: f"{t * 1000:.0f} ms" for name, t in times.items() if t >= BUDGET_S}
    assert not slow, f"over {BUDGET_S * 1000:.0f} ms: {slow} (all: { {k: round(v * 1000) for k, v in times.items()} })"
    assert len(selectors.genome_lineage(genome=deepest)) > 100  # a real walk, not a short one
    assert selectors.genome_list(run=run, outcome="improved")["count"] > 1_000
    assert_genome_filters_use_an_index(big_run)


def assert_genome_filters_use_an_index(big_run: Run) -> None:
    """On SQLite: no genome filter scans the table."""
    if connection.vendor != "sqlite":
        return
    queries = [
        Genome.objects.filter(run=big_run, outcome="failed").order_by("gid")[:50],
        Genome.objects.filter(run=big_run, cell="1,2,3").order_by("gid")[:50],
        Genome.objects.filter(run=big_run, operator="gp").order_by("gid")[:50],
        Genome.objects.filter(parent_id=1),
        Genome.objects.filter(run=big_run, batch=5),
    ]
    for query in queries:
        plan = query.explain()
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
        assert "SCAN runs_genome" not in plan.replace("SCAN runs_genome USING", ""), plan
