"""Score walkers: settle, measure centre-of-mass travel, describe, optionally trace."""

from __future__ import annotations

import math
from collections import defaultdict

from evolution.sodarace._descriptors import describe
from evolution.sodarace._physics import PlacedWalker, SimulationDiverged, World, place
from evolution.sodarace._settings import DEFAULT_SETTINGS, SimSettings
from evolution.sodarace._terrain import Terrain, get_terrain
from evolution.sodarace._trace import Trace
from evolution.types import Evaluation, WalkerSpec

DEFAULT_BATCH = 32


def simulate(
    spec: WalkerSpec,
    terrain: str | Terrain = "flat",
    settings: SimSettings = DEFAULT_SETTINGS,
    *,
    trace: bool = False,
) -> Evaluation:
    """Simulate one walker and score it.

    Fitness is ``|x_end - x_start|`` of the centre of mass, where ``x_start`` is taken after
    ``settings.settle_seconds`` of resting and ``x_end`` after ``settings.sim_seconds`` more.

    Raises:
        SimulationDiverged: If the physics blew up (a typed failure, never a giant fitness).
        ValueError: For an unknown terrain name.
    """
    (result,) = simulate_batch([spec], terrain, settings, trace=trace)
    if isinstance(result, SimulationDiverged):
        raise result
    return result


def simulate_batch(
    specs: list[WalkerSpec],
    terrain: str | Terrain = "flat",
    settings: SimSettings = DEFAULT_SETTINGS,
    *,
    trace: bool | list[bool] = False,
    batch_size: int = DEFAULT_BATCH,
) -> list[Evaluation | SimulationDiverged]:
    """Simulate many walkers, several per physics space, each result equal to its solo run.

    Args:
        specs: Walkers to score.
        terrain: Terrain name or object (all walkers race on it).
        settings: Simulation settings.
        trace: Record a replay for all walkers, or per walker.
        batch_size: Walkers per physics space (throughput only; results never change).

    Returns:
        One entry per spec, in order: an ``Evaluation``, or a ``SimulationDiverged`` value.
    """
    ground = get_terrain(terrain) if isinstance(terrain, str) else terrain
    wants = list(trace) if isinstance(trace, list) else [trace] * len(specs)
    # Equal walkers give equal results: simulate each distinct one once.
    first: dict[WalkerSpec, int] = {}
    for i, spec in enumerate(specs):
        j = first.setdefault(spec, i)
        wants[j] = wants[j] or wants[i]
    unique = sorted(set(first.values()))
    placed = {i: place(specs[i], ground, settings) for i in unique}
    groups: dict[float | None, list[int]] = defaultdict(list)
    for i in unique:
        groups[ground.layout_key(placed[i].width)].append(i)
    done: dict[int, Evaluation | SimulationDiverged] = {}
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            world = World([placed[i] for i in chunk], ground, settings, trace=[wants[i] for i in chunk])
            for i, outcome in zip(chunk, world.run()):
                done[i] = _evaluation(specs[i], placed[i], ground, settings, outcome)
    return [done[first[spec]] for spec in specs]


def _evaluation(spec, placed: PlacedWalker, ground: Terrain, settings: SimSettings, outcome):
    if outcome.diverged is not None:
        return SimulationDiverged(outcome.diverged)
    displacement = outcome.com_end - outcome.com_start
    if not math.isfinite(displacement):
        return SimulationDiverged("the centre of mass is not a finite number")
    frames = None
    if outcome.frames is not None:
        frames = Trace(
            fps=1.0 / (settings.trace_every * settings.dt),
            settle_frames=-(-settings.settle_steps // settings.trace_every),
            frames=outcome.frames,
            muscles=tuple((m.a, m.b, m.amplitude, m.phase) for m in spec.muscles),
            terrain=ground.to_dict(placed.width),
        )
    return Evaluation(
        fitness=abs(displacement),
        displacement=displacement,
        descriptor=describe(spec, settings),
        terrain=ground.name,
        sim_seconds=settings.measure_steps * settings.dt,
        settle_seconds=settings.settle_steps * settings.dt,
        trace=frames,
    )
