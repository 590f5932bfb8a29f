"""Settings for Redis as the Celery broker (``make run-scaled``): a visibility timeout above
the longest task, checked against the step time limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"


def settings_value(expression: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Print ``expression`` evaluated in elmweb.settings, imported fresh with ``env`` added."""
    return subprocess.run(
        [sys.executable, "-c", f"from elmweb import settings as s; print({expression})"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_redis_broker_redelivers_only_after_the_longest_task() -> None:
    result = settings_value(
        "s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], s.CELERY_TASK_ACKS_LATE, "
        "s.CELERY_WORKER_PREFETCH_MULTIPLIER",
        CELERY_BROKER_URL=REDIS,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["172800.0", "True", "1"]  # 48 h: a 24 h training job fits


def test_settings_refuse_a_visibility_timeout_a_step_can_outlast() -> None:
    result = settings_value("1", CELERY_BROKER_URL=REDIS, BROKER_VISIBILITY_TIMEOUT_S="600")

    assert result.returncode != 0
    assert "BROKER_VISIBILITY_TIMEOUT_S=600 is not above a step's hard time limit" in result.stderr
    assert "Raise BROKER_VISIBILITY_TIMEOUT_S" in result.stderr


def test_the_filesystem_broker_gets_no_redis_options() -> None:
    result = settings_value(
        "sorted(s.CELERY_BROKER_TRANSPORT_OPTIONS)", CELERY_BROKER_URL="", BROKER_VISIBILITY_TIMEOUT_S="600"
    )

    assert result.returncode == 0, result.stderr
    assert "visibility_timeout" not in result.stdout and "data_folder_in" in result.stdout
