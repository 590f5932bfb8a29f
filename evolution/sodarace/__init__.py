"""Sodarace: walkers made of joints and muscles, raced by a physics simulation.

API index:
    walker_creator, Joint: the API that walker programs call (paper and OpenELM forms).
    WalkerLimits, DEFAULT_LIMITS, InvalidWalker: named validation rules and their error.
    build_walker, NotAWalker: run TRUSTED program text in-process (seeds, tests).
    spec_from_dict: rebuild and re-validate a ``WalkerSpec`` from plain data.
    Terrain, TERRAINS, get_terrain: flat, left-wall, right-wall, bumpy, tunnel.
    SimSettings, DEFAULT_SETTINGS: every physical constant, documented.
    simulate, simulate_batch: score walkers (batched, bit-identical to solo runs).
    SimulationDiverged: the typed failure of a simulation that blew up.
    describe, DESCRIPTOR_NAMES, DEFAULT_RANGES, DEFAULT_BINS: height, width, mass.
    Trace: a compact replay of a simulated walker.
    random_walker: random valid walkers (calibration, benchmarks, tests).
    seeds: the shipped seed programs (``get_seed``, ``SEEDS``).
"""

from evolution.sodarace import seeds
from evolution.sodarace._descriptors import DEFAULT_BINS, DEFAULT_RANGES, DESCRIPTOR_NAMES, describe
from evolution.sodarace._limits import DEFAULT_LIMITS, InvalidWalker, WalkerLimits
from evolution.sodarace._physics import SimulationDiverged
from evolution.sodarace._program import NotAWalker, build_walker
from evolution.sodarace._random import random_walker
from evolution.sodarace._settings import DEFAULT_SETTINGS, SimSettings
from evolution.sodarace._simulate import simulate, simulate_batch
from evolution.sodarace._terrain import TERRAINS, Terrain, get_terrain
from evolution.sodarace._trace import Trace
from evolution.sodarace._walker import Joint, spec_from_dict, walker_creator

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_LIMITS",
    "DEFAULT_RANGES",
    "DEFAULT_SETTINGS",
    "DESCRIPTOR_NAMES",
    "TERRAINS",
    "InvalidWalker",
    "Joint",
    "NotAWalker",
    "SimSettings",
    "SimulationDiverged",
    "Terrain",
    "Trace",
    "WalkerLimits",
    "build_walker",
    "describe",
    "get_terrain",
    "random_walker",
    "seeds",
    "simulate",
    "simulate_batch",
    "spec_from_dict",
    "walker_creator",
]
