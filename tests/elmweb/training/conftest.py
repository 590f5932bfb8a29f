"""Shared fixtures and helpers of the training app's tests (stage 2 models and stage 3 inventors)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.evolution.lm.test_stage3 import one_torch_thread as one_torch_thread  # autouse: jobs train on one thread


@pytest.fixture(autouse=True)
def _models_dir(settings, tmp_path):
    settings.MODELS_DIR = tmp_path / "models"


@pytest.fixture
def queued(monkeypatch) -> list[tuple[int, str]]:
    """Train tasks put on the queue (recorded instead of published)."""
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr("elmweb.training.tasks.train_model.apply_async", lambda args, queue: sent.append((args[0], queue)))
    return sent


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, path: str, data: dict[str, Any] | None = None):
    return client.post(path, json.dumps(data or {}), content_type="application/json")
