"""App configuration for elmweb.training."""

from __future__ import annotations

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Models trained on what runs found (stage 2): jobs, live loss, evaluations."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "elmweb.training"
    label = "training"
    verbose_name = "Trained models"
