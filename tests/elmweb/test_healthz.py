"""GET /healthz: versions, database health, allowed methods."""

from __future__ import annotations

import sys
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test import Client

pytestmark = pytest.mark.django_db

PACKAGES = ("python", "django", "channels", "daphne", "celery", "torch", "transformers", "pymunk")


def test_it_answers_json_with_versions(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["versions"]) == set(PACKAGES)
    assert body["versions"]["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert body["versions"]["django"].startswith("5.2")


def test_it_reports_the_database_as_ok(client: Client) -> None:
    database = client.get("/healthz").json()["database"]

    assert database["vendor"] == connection.vendor
    assert database["ok"] is True


@pytest.mark.skipif(connection.vendor != "sqlite", reason="journal mode is SQLite's")
def test_it_reports_wal_journal_mode_on_sqlite(client: Client) -> None:
    assert client.get("/healthz").json()["database"]["journal_mode"] == "wal"


def test_it_does_not_import_torch_to_read_versions(client: Client) -> None:
    was_imported = "torch" in sys.modules
    client.get("/healthz")

    assert ("torch" in sys.modules) == was_imported


def test_it_answers_head(client: Client) -> None:
    assert client.head("/healthz").status_code == 200


def test_it_only_allows_get_and_head(client: Client) -> None:
    response = client.post("/healthz")

    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}


def test_it_answers_503_with_the_error_when_the_database_fails(client: Client) -> None:
    failure = OperationalError("disk I/O error")
    with mock.patch.object(connection, "cursor", side_effect=failure):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is False
    assert body["database"]["error"] == "OperationalError: disk I/O error"
    assert set(body["versions"]) == set(PACKAGES)


def test_the_index_page_links_to_healthz_and_admin(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>elmweb</title>" in html
    assert 'href="/healthz"' in html
    assert 'href="/admin/"' in html
