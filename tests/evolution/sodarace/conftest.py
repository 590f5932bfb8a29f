"""Shared walkers for the Sodarace tests."""

from __future__ import annotations

import random

import pytest

from evolution.sodarace import build_walker, random_walker, seeds
from evolution.types import WalkerSpec


@pytest.fixture(scope="session")
def seed_specs() -> dict[str, WalkerSpec]:
    return {name: build_walker(seed.program) for name, seed in seeds.SEEDS.items()}


@pytest.fixture(scope="session")
def random_specs() -> list[WalkerSpec]:
    rng = random.Random(7)
    return [random_walker(rng, joints=(3, 12), side=(6.0, 16.0)) for _ in range(12)]
