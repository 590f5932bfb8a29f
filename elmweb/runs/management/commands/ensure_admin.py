"""``manage.py ensure_admin``: on a first start, create a superuser someone can log in with.

If the database has no superuser, create ``admin`` (or ``--username``) with a random
password, log the credentials once and write them to ``admin-credentials.txt`` (mode 0600)
next to the SQLite database (``var/admin-credentials-<vendor>-<name>.txt`` on another
database). With a superuser already there, do nothing.
Run by ``make run`` (through ``elmweb.launch``) after ``migrate``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

log = logging.getLogger("elmweb.runs.ensure_admin")


def credentials_file() -> Path:
    """Where the first admin's credentials are written: next to the SQLite file, else in var/
    under a name of the database's own (``admin-credentials-postgresql-elmweb.txt``), so a lab
    on PostgreSQL never overwrites the password of the SQLite lab of the same checkout."""
    if connection.vendor == "sqlite" and str(settings.DATABASES["default"]["NAME"]) != ":memory:":
        return Path(settings.DATABASES["default"]["NAME"]).with_name("admin-credentials.txt")
    if connection.vendor == "sqlite":
        return settings.VAR_DIR / "admin-credentials.txt"
    return settings.VAR_DIR / f"admin-credentials-{connection.vendor}-{connection.settings_dict['NAME']}.txt"


class Command(BaseCommand):
    help = "Create a superuser with a random password if there is none (first start)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="name of the superuser (admin)")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            log.debug("a superuser exists; nothing to do")
            return
        username = options["username"]
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        path = credentials_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"username: {username}\npassword: {password}\n")
        self.stdout.write(
            f"First start: created superuser {username!r} with password {password!r} "
            f"(also written to {path}); log in at /accounts/login/ or /admin/ and change it there."
        )
