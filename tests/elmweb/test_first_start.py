"""First start: `ensure_admin` creates a superuser with a printed, stored password, once."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command

from elmweb.runs.management.commands import ensure_admin

pytestmark = pytest.mark.django_db


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "admin-credentials.txt"
    monkeypatch.setattr(ensure_admin, "credentials_file", lambda: path)
    return path


def test_a_first_start_creates_admin_and_prints_a_password_that_works(credentials: Path) -> None:
    out = io.StringIO()

    call_command("ensure_admin", stdout=out)

    password = credentials.read_text().split("password: ")[1].strip()
    assert f"with password {password!r}" in out.getvalue()
    assert authenticate(username="admin", password=password).is_superuser
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_a_later_start_changes_nothing(credentials: Path) -> None:
    User.objects.create_superuser(username="root", password="pw-root-123")
    out = io.StringIO()

    call_command("ensure_admin", stdout=out)

    assert out.getvalue() == ""
    assert not credentials.exists()
    assert not User.objects.filter(username="admin").exists()


def test_the_credentials_go_next_to_the_sqlite_database() -> None:
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert ensure_admin.credentials_file().parent == Path(connection.settings_dict["NAME"]).parent
