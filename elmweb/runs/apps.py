"""App configuration for elmweb.runs."""

from __future__ import annotations

from django.apps import AppConfig


class RunsConfig(AppConfig):
    """Evolution runs: storage, background steps and live events."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "elmweb.runs"
    label = "runs"
    verbose_name = "Runs"
