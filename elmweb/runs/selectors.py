"""Reads for the runs app.

Selectors return plain data (dicts, model instances) and never write.
"""

from __future__ import annotations

import math
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, connection

from elmweb.runs import engine
from elmweb.runs.models import ArchiveCell, Evaluation, Genome, Run, RunEvent, RunMetric, Seed

#: Distributions whose versions /healthz reports; read from metadata, never imported.
REPORTED_DISTRIBUTIONS = (
    "django",
    "channels",
    "daphne",
    "celery",
    "torch",
    "transformers",
    "pymunk",
)


def health_report() -> dict[str, Any]:
    """Return the lab's health: package versions and whether the database answers.

    Returns:
        ``{"status": "ok" | "degraded", "versions": {name: version | None},
        "database": {"vendor": str, "ok": bool, ...}}``. ``database`` holds
        ``journal_mode`` on SQLite, and ``error`` when the query failed, in
        which case ``status`` is ``"degraded"``.
    """
    database = database_report()
    return {
        "status": "ok" if database["ok"] else "degraded",
        "versions": versions_report(),
        "database": database,
    }


def versions_report() -> dict[str, str | None]:
    """Return Python's version and each reported distribution's (``None`` if missing)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in REPORTED_DISTRIBUTIONS:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def database_report() -> dict[str, Any]:
    """Run a trivial query on the default database and describe the outcome.

    Returns:
        ``{"vendor": str, "ok": True}`` plus ``journal_mode`` on SQLite, or
        ``{"vendor": str, "ok": False, "error": "<Exception>: <text>"}``.
    """
    report: dict[str, Any] = {"vendor": connection.vendor}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA journal_mode")
                report["journal_mode"] = cursor.fetchone()[0]
    except DatabaseError as exc:
        return {**report, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {**report, "ok": True}


# -- seeds -------------------------------------------------------------------------------------
def seed_list(*, enabled_only: bool = False) -> list[dict[str, Any]]:
    """Every seed (or every enabled one) as summaries, by name."""
    seeds = Seed.objects.order_by("name")
    if enabled_only:
        seeds = seeds.filter(enabled=True)
    return [seed_dict(seed) for seed in seeds]


def seed_get(*, name: str) -> Seed:
    """The seed called ``name``.

    Raises:
        Seed.DoesNotExist: If there is none.
    """
    return Seed.objects.get(name=name)


def seed_dict(seed: Seed, *, full: bool = False) -> dict[str, Any]:
    """A seed as plain data; ``full`` adds the program text and preamble."""
    data: dict[str, Any] = {
        "name": seed.name,
        "title": seed.title,
        "description": seed.description,
        "enabled": seed.enabled,
        "builtin": seed.builtin,
        "fitness": seed.fitness,
        "updated_at": seed.updated_at.isoformat(),
    }
    if full:
        data["text"] = seed.text
        data["preamble"] = seed.preamble
    return data


# -- runs --------------------------------------------------------------------------------------
RUN_LIST_FIELDS = (
    "id", "owner__username", "name", "seed_name", "terrain", "mutation", "batch_size", "evals",
    "status", "batches", "evaluations", "niches_filled", "max_fitness", "qd_score",
    "created_at", "started_at", "finished_at",
)  # fmt: skip


def run_list(
    *, owner: AbstractBaseUser | None = None, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Runs, newest first, optionally only one owner's or one status's."""
    runs = Run.objects.order_by("-id")
    if owner is not None:
        runs = runs.filter(owner=owner)
    if status:
        runs = runs.filter(status=status)
    return [_run_summary(row) for row in runs.values(*RUN_LIST_FIELDS)[:limit]]


def _run_summary(row: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in row.items() if k != "owner__username"}
    data["owner"] = row["owner__username"]
    for key in ("created_at", "started_at", "finished_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def run_get(*, run_id: int) -> Run:
    """A run without its (large) saved engine state.

    Raises:
        Run.DoesNotExist: If there is none.
    """
    return Run.objects.select_related("owner").defer("state").get(pk=run_id)


def run_dict(run: Run, *, user: AbstractBaseUser | AnonymousUser | None = None) -> dict[str, Any]:
    """A run's configuration, status and counters; ``can_control`` says whether ``user`` may."""
    stamps = ("created_at", "updated_at", "started_at", "finished_at", "heartbeat_at")
    return {
        "id": run.pk,
        "name": run.name,
        "owner": run.owner.get_username(),
        "can_control": bool(
            user and user.is_authenticated and (user.pk == run.owner_id or user.is_superuser)
        ),
        "cloned_from": run.cloned_from_id,
        "config": {
            "seed": run.seed_name,
            "terrain": run.terrain,
            "mutation": run.mutation,
            "model": run.model,
            "api_url": run.api_url,
            "api_model": run.api_model,
            "api_mode": run.api_mode,
            "batch_size": run.batch_size,
            "evals": run.evals,
            "sim_seconds": run.sim_seconds,
            "dims": run.dims,
            "ranges": run.ranges,
            "rng_seed": run.rng_seed,
        },
        "status": run.status,
        "error": run.error,
        "batches": run.batches,
        "evaluations": run.evaluations,
        "valid": run.valid,
        "niches_filled": run.niches_filled,
        "cells": math.prod(run.dims),
        "max_fitness": run.max_fitness,
        "qd_score": run.qd_score,
        "last_event_id": run.events.order_by("-id").values_list("id", flat=True).first() or 0,
        **{key: getattr(run, key).isoformat() if getattr(run, key) else None for key in stamps},
    }


def run_mass_bins(run: Run) -> list[dict[str, float]]:
    """The run's mass bins (the archive's third dimension): ``[{"index", "low", "high"}]``."""
    bins = run.dims[2] if len(run.dims) > 2 else 1
    low, high = run.ranges[2] if len(run.ranges) > 2 else (0.0, float(bins))
    width = (high - low) / bins
    return [{"index": i, "low": low + i * width, "high": low + (i + 1) * width} for i in range(bins)]


METRIC_FIELDS = (
    "batch", "evaluations", "batch_size", "valid", "valid_rate", "niches_filled", "coverage",
    "max_fitness", "qd_score", "wall_s", "evals_per_s", "outcomes", "failures", "operators",
)  # fmt: skip


def run_metrics(*, run: Run, after_batch: int = -1, limit: int = 10_000) -> list[dict[str, Any]]:
    """One row per batch after ``after_batch``, in batch order."""
    rows = RunMetric.objects.filter(run=run, batch__gt=after_batch).order_by("batch")
    return list(rows.values(*METRIC_FIELDS)[:limit])


def run_archive(*, run: Run) -> list[dict[str, Any]]:
    """Every occupied cell with a summary of its elite, in cell order."""
    rows = (
        ArchiveCell.objects.filter(run=run)
        .order_by("cell")
        .values(
            "coords", "fitness", "batch", "genome_id", "genome__gid", "genome__operator",
            "genome__evaluation__height", "genome__evaluation__width", "genome__evaluation__mass",
        )  # fmt: skip
    )
    return [
        {
            "cell": row["coords"],
            "gid": row["genome__gid"],
            "genome_id": row["genome_id"],
            "fitness": row["fitness"],
            "batch": row["batch"],
            "operator": row["genome__operator"],
            "descriptor": [
                row["genome__evaluation__height"],
                row["genome__evaluation__width"],
                row["genome__evaluation__mass"],
            ],
        }
        for row in rows
    ]


def event_list(*, run_id: int, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    """A run's events with ids above ``after``, in id order."""
    rows = RunEvent.objects.filter(run_id=run_id, id__gt=after).order_by("id")
    return [
        {"id": row["id"], "kind": row["kind"], "payload": row["payload"], "at": row["created_at"].isoformat()}
        for row in rows.values("id", "kind", "payload", "created_at")[:limit]
    ]


# -- genomes -----------------------------------------------------------------------------------
GENOME_SUMMARY_FIELDS = (
    "gid", "batch", "parent_gid", "operator", "message", "outcome", "failure", "fitness", "cell",
)  # fmt: skip


def genome_summary(row: dict[str, Any]) -> dict[str, Any]:
    """A genome row (``GENOME_SUMMARY_FIELDS``) as plain data; the cell as a list of ints."""
    data = dict(row)
    data["cell"] = [int(c) for c in row["cell"].split(",")] if row["cell"] else None
    return data


def genome_list(
    *,
    run: Run,
    outcome: str | None = None,
    cell: str | None = None,
    operator: str | None = None,
    batch: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of a run's genomes in id order, filtered; keyset-paginated with ``after``.

    Each summary also carries ``id``, the genome's database id (its page is ``/genomes/<id>/``).

    Args:
        run: The run.
        outcome: ``new_cell``, ``improved``, ``not_kept`` or ``failed``.
        cell: A cell key, e.g. ``"3,4,5"``.
        operator: An operator name.
        batch: A batch number.
        after: Only genomes with a larger id (the previous page's ``next_after``).
        limit: Page size.

    Returns:
        ``{"count": matches, "results": [summary, ...], "next_after": id | None}``.
    """
    genomes = Genome.objects.filter(run=run)
    if outcome:
        genomes = genomes.filter(outcome=outcome)
    if cell:
        genomes = genomes.filter(cell=cell)
    if operator:
        genomes = genomes.filter(operator=operator)
    if batch is not None:
        genomes = genomes.filter(batch=batch)
    count = genomes.count()
    if after is not None:
        genomes = genomes.filter(gid__gt=after)
    rows = list(genomes.order_by("gid").values("id", *GENOME_SUMMARY_FIELDS)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "count": count,
        "results": [genome_summary(row) for row in rows],
        "next_after": rows[-1]["gid"] if more else None,
    }


def genome_get(*, run: Run, gid: int) -> Genome:
    """One genome of a run, by its engine id, with its evaluation.

    Raises:
        Genome.DoesNotExist: If the run has no such genome.
    """
    return (
        Genome.objects.select_related("evaluation")
        .defer("evaluation__trace")
        .get(run=run, gid=gid)
    )


def genome_lineage(*, genome: Genome, limit: int = 1_000) -> list[dict[str, Any]]:
    """The parent chain from ``genome`` (first) back to the seed (last), at most ``limit``."""
    table = Genome._meta.db_table
    sql = f"""
        WITH RECURSIVE chain(id, parent_id, depth) AS (
            SELECT id, parent_id, 0 FROM {table} WHERE id = %s
            UNION ALL
            SELECT g.id, g.parent_id, chain.depth + 1
            FROM {table} g JOIN chain ON g.id = chain.parent_id
            WHERE chain.depth < %s
        )
        SELECT id, depth FROM chain
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [genome.pk, limit - 1])
        depth = dict(cursor.fetchall())
    rows = Genome.objects.filter(pk__in=list(depth)).values("id", *GENOME_SUMMARY_FIELDS)
    ordered = sorted(rows, key=lambda row: depth[row["id"]])
    return [genome_summary({k: v for k, v in row.items() if k != "id"}) for row in ordered]


def genome_children(*, genome: Genome, limit: int = 200) -> list[dict[str, Any]]:
    """The genomes mutated from ``genome``, in id order, at most ``limit``."""
    rows = genome.children.order_by("gid").values(*GENOME_SUMMARY_FIELDS)[:limit]
    return [genome_summary(row) for row in rows]


def genome_dict(genome: Genome) -> dict[str, Any]:
    """A genome's full record: program, diff, failure, evaluation, lineage and children."""
    data = genome_summary({field: getattr(genome, field) for field in GENOME_SUMMARY_FIELDS})
    data.update(
        text=genome.text,
        diff=genome.diff,
        failure_message=genome.failure_message,
        warnings=genome.warnings,
        evaluation=None,
        lineage=genome_lineage(genome=genome),
        children=genome_children(genome=genome),
    )
    evaluation = getattr(genome, "evaluation", None)
    if evaluation is not None:
        data["evaluation"] = {
            "fitness": evaluation.fitness,
            "descriptor": {"height": evaluation.height, "width": evaluation.width, "mass": evaluation.mass},
            "cell": evaluation.cell,
            "terrain": evaluation.terrain,
            "sim_seconds": evaluation.sim_seconds,
            "settle_seconds": evaluation.settle_seconds,
            "has_trace": Evaluation.objects.filter(pk=evaluation.pk, trace__isnull=False).exists(),
        }
    return data


def genome_trace(*, genome: Genome) -> dict[str, Any] | None:
    """The genome's replay for browsers, or ``None`` if none is stored (yet)."""
    data = Evaluation.objects.filter(pk=genome.pk).values_list("trace", flat=True).first()
    return None if data is None else engine.trace_json(data)


# -- pages: lineage, descendants, seeds' replays -------------------------------------------------
def genome_get_by_pk(*, pk: int) -> Genome:
    """A genome by its database id (the pages' URLs), with its run and evaluation.

    Raises:
        Genome.DoesNotExist: If there is none.
    """
    return (
        Genome.objects.select_related("run", "run__owner", "evaluation")
        .defer("evaluation__trace", "run__state")
        .get(pk=pk)
    )


def genome_lineage_steps(*, genome: Genome, limit: int = 1_000) -> list[dict[str, Any]]:
    """The chain from the seed (first) to ``genome`` (last), each step with its diff and message.

    At most ``limit`` steps (the ones nearest ``genome``); the first is the seed only when the
    chain is shorter than ``limit``.
    """
    chain = list(reversed(genome_lineage(genome=genome, limit=limit)))
    rows = Genome.objects.filter(run_id=genome.run_id, gid__in=[step["gid"] for step in chain])
    extra = {row["gid"]: row for row in rows.values("gid", "id", "diff")}
    return [{**step, "id": extra[step["gid"]]["id"], "diff": extra[step["gid"]]["diff"]} for step in chain]


def genome_descendants(*, genome: Genome, limit: int = 2_000) -> dict[str, Any]:
    """``genome`` and its descendants (children, their children, ...), breadth first.

    Returns:
        ``{"root": gid, "nodes": [summary + "id", "depth", ...], "truncated": bool}``; nodes are
        in depth order, at most ``limit`` (the nearest generations first).
    """
    table = Genome._meta.db_table
    sql = f"""
        WITH RECURSIVE tree(id, depth) AS (
            SELECT id, 0 FROM {table} WHERE id = %s
            UNION ALL
            SELECT g.id, tree.depth + 1 FROM {table} g JOIN tree ON g.parent_id = tree.id
        )
        SELECT id, depth FROM tree ORDER BY depth, id LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [genome.pk, limit + 1])
        depth = dict(cursor.fetchall())
    truncated = len(depth) > limit
    if truncated:
        depth.pop(max(depth, key=lambda pk: (depth[pk], pk)))
    rows = Genome.objects.filter(pk__in=list(depth)).values("id", *GENOME_SUMMARY_FIELDS)
    nodes = [
        {**genome_summary(row), "depth": depth[row["id"]]}
        for row in rows
    ]
    nodes.sort(key=lambda node: (node["depth"], node["gid"]))
    return {"root": genome.gid, "nodes": nodes, "truncated": truncated}


def run_form_choices() -> dict[str, list[str]]:
    """What a new run may choose: enabled seeds, terrains, mutation operators."""
    from evolution.mutation import OPERATORS

    return {
        "seeds": list(Seed.objects.filter(enabled=True).order_by("name").values_list("name", flat=True)),
        "terrains": engine.terrain_names(),
        "mutations": list(OPERATORS),
    }


#: Which run actions each status allows (mirrors ``services.run_*``; frontend/controls.js too).
RUN_ACTIONS = {
    "created": ("start", "stop"),
    "running": ("pause", "stop"),
    "pausing": ("resume", "stop"),
    "paused": ("resume", "stop"),
    "finished": (),
    "failed": (),
}


def seed_trace(*, seed: Seed, terrain: str = "flat", sim_seconds: float = 10.0) -> dict[str, Any] | None:
    """A replay of a seed's walker (computed in the sandbox once, then cached), or ``None``.

    Raises:
        ValueError: If ``terrain`` is unknown.
    """
    from django.core.cache import cache

    if terrain not in engine.terrain_names():
        raise ValueError(f"unknown terrain {terrain!r}; choose one of {', '.join(engine.terrain_names())}")
    key = f"seed-trace:{seed.name}:{seed.updated_at.timestamp()}:{terrain}:{sim_seconds}"
    data = cache.get(key)
    if data is None:
        config = engine.make_config(
            seed=seed.name, terrain=terrain, sim_seconds=sim_seconds,
            dims=engine.default_dims(), ranges=engine.default_ranges(),
        )  # fmt: skip
        data = engine.trace_bytes(text=seed.text, preamble=seed.preamble, config=config)
        if data is None:
            return None
        cache.set(key, data, timeout=24 * 3600)
    return engine.trace_json(data)
