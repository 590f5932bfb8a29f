"""The servers the integration tests run on, whichever they are.

``make test`` runs the whole suite on the embedded defaults (SQLite, kombu's filesystem broker,
the in-memory channel layer), then ``make test-scaled`` runs the tests marked ``integration``
again with ``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``REDIS_URL`` pointing at a PostgreSQL
and a Redis it started (``deploy/servers.sh``). These helpers let one test serve both: the URL
of the test database for worker processes, a fresh database for a server of the test's own,
and a broker of the test's own.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings

from elmweb.celery import app as celery_app

_fresh = itertools.count()


def vendor() -> str:
    """``"sqlite"`` or ``"postgresql"``: the database the tests run on (``DATABASE_URL``)."""
    return "sqlite" if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else "postgresql"


def filesystem_broker() -> bool:
    """Whether Celery uses kombu's filesystem transport (the embedded default)."""
    return str(celery_app.conf.broker_url).startswith("filesystem://")


def database_url(entry: Mapping[str, Any]) -> str:
    """The ``DATABASE_URL`` of a Django database entry, e.g. ``connection.settings_dict``.

    After pytest-django has set up the test database, ``connection.settings_dict`` names it,
    so the URL points worker processes at the test's own database.
    """
    if entry["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(entry['NAME']).resolve()}"
    user = quote(entry["USER"], safe="")
    password = quote(entry["PASSWORD"], safe="")
    port = f":{entry['PORT']}" if entry["PORT"] else ""
    return f"postgres://{user}:{password}@{entry['HOST']}{port}/{quote(entry['NAME'], safe='')}"


def _postgres_admin() -> Any:
    """An autocommit connection to the server's ``postgres`` database (to create databases)."""
    import psycopg

    entry = settings.DATABASES["default"]
    return psycopg.connect(
        host=entry["HOST"], port=entry["PORT"] or None, user=entry["USER"], password=entry["PASSWORD"],
        dbname="postgres", autocommit=True,
    )  # fmt: skip


@contextmanager
def fresh_database(folder: Path) -> Iterator[str]:
    """Yield the ``DATABASE_URL`` of a new, empty database on the tests' server.

    SQLite: a file in ``folder``. PostgreSQL: a database named after this process, dropped
    (connections and all) when the context ends.
    """
    if vendor() == "sqlite":
        yield f"sqlite:///{folder / 'db.sqlite3'}"
        return
    entry = dict(settings.DATABASES["default"])
    entry["NAME"] = f"test_fresh_{os.getpid()}_{next(_fresh)}"
    with _postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{entry["NAME"]}"')
    try:
        yield database_url(entry)
    finally:
        with _postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{entry["NAME"]}" WITH (FORCE)')


def _reset_producers() -> None:
    """Make the next publish open connections with the current configuration."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def own_broker(folder: Path) -> Iterator[dict[str, str]]:
    """Give one test a broker no earlier test left messages in; yield the workers' extra env.

    Filesystem broker: a new broker folder (``BROKER_DIR``) under ``folder``, which this
    process publishes to as well. Redis: the queues of ``CELERY_BROKER_URL`` are purged, before
    and after.
    """
    if not filesystem_broker():
        celery_app.control.purge()
        try:
            yield {}
        finally:
            celery_app.control.purge()
        return
    saved = celery_app.conf.broker_transport_options
    options = dict(saved)
    for key, name in (("data_folder_in", "queue"), ("data_folder_out", "queue"),
                      ("control_folder", "control"), ("processed_folder", "processed")):  # fmt: skip
        (folder / name).mkdir(parents=True, exist_ok=True)
        options[key] = str(folder / name)
    celery_app.conf.broker_transport_options = options
    _reset_producers()
    try:
        yield {"BROKER_DIR": str(folder)}
    finally:
        celery_app.conf.broker_transport_options = saved
        _reset_producers()
