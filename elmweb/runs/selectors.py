"""Reads for the runs app.

Selectors return plain data (dicts, model instances) and never write.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.db import DatabaseError, connection

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
