"""Session fixtures: the tiny random GPT-2 models the mutation, CLI and training tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evolution.mutation.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Folder of the tiny random GPT-2 (built once per test session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def quick_model(tmp_path_factory) -> Path:
    """The tiny model with its end-of-text token favoured: samples are a few dozen tokens long."""
    return build_tiny_model(tmp_path_factory.mktemp("quick-gpt2"), eos_bias=4.0)
