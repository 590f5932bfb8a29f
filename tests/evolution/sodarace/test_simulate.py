"""Physics, fitness and determinism, including each mistake of the public re-implementation."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from evolution.sodarace import (
    DEFAULT_SETTINGS,
    TERRAINS,
    SimulationDiverged,
    build_walker,
    simulate,
    simulate_batch,
    walker_creator,
)
from evolution.types import WalkerSpec

SHORT = DEFAULT_SETTINGS.with_(sim_seconds=3.0)


def passive_square() -> WalkerSpec:
    wc = walker_creator()
    corners = [wc.add_joint(x, y) for x, y in ((0, 0), (0, 10), (10, 10), (10, 0))]
    centre = wc.add_joint(5, 5)
    for k in range(4):
        wc.add_muscle(corners[k], corners[(k + 1) % 4])
        wc.add_muscle(corners[k], centre)
    return wc.get_walker()


def muscle_lengths(frames: np.ndarray, spec: WalkerSpec) -> np.ndarray:
    """(T, M) lengths of every muscle in every frame."""
    a = np.array([m.a for m in spec.muscles])
    b = np.array([m.b for m in spec.muscles])
    return np.linalg.norm(frames[:, b] - frames[:, a], axis=2)


def test_a_walker_that_does_not_move_scores_about_zero():
    ev = simulate(passive_square())
    assert ev.fitness < 1e-3


def test_fitness_is_measured_on_the_ground_after_settling_not_in_mid_air(seed_specs):
    ev = simulate(seed_specs["square"], trace=True)
    frames, k = ev.trace.frames, ev.trace.settle_frames
    # at the start of measuring, the walker rests: lowest joint on the ground, nothing falling
    assert abs(frames[k, :, 1].min() - DEFAULT_SETTINGS.joint_radius) < 0.05
    vertical_speed = np.abs(frames[k, :, 1] - frames[k - 1, :, 1]) * ev.trace.fps
    assert vertical_speed.max() < 0.5
    assert ev.settle_seconds == pytest.approx(1.0) and ev.sim_seconds == pytest.approx(10.0)


def test_fitness_is_the_centre_of_mass_travel_in_either_direction(seed_specs):
    ev = simulate(seed_specs["galloper"], trace=True)
    assert ev.displacement < -10  # the galloper runs to the left
    assert ev.fitness == -ev.displacement
    frames, k = ev.trace.frames, ev.trace.settle_frames
    from evolution.sodarace._physics import joint_masses

    m = np.array(joint_masses(seed_specs["galloper"], DEFAULT_SETTINGS))
    com = (frames[:, :, 0] * m).sum(axis=1) / m.sum()
    assert com[-1] - com[k] == pytest.approx(ev.displacement, abs=1e-3)


def test_the_squares_active_muscles_really_change_length_and_its_rim_does_not(seed_specs):
    spec = seed_specs["square"]
    ev = simulate(spec, trace=True)
    lengths = muscle_lengths(ev.trace.frames[ev.trace.settle_frames :], spec)
    swing = (lengths.max(axis=0) - lengths.min(axis=0)) / lengths.mean(axis=0)
    active = np.array([m.active for m in spec.muscles])
    assert active.sum() == 3
    # each spoke's swing follows its amplitude (10 > 5 > 2); the passive rim holds its shape
    by_amplitude = swing[active][np.argsort([m.amplitude for m in spec.muscles if m.active])]
    assert by_amplitude[0] > 0.05 and by_amplitude[-1] > 0.3
    assert swing[~active].max() < by_amplitude[-1]


def test_amplitude_drives_the_oscillation_and_phase_alone_does_not():
    def pair(amplitude: float, phase: float) -> WalkerSpec:
        wc = walker_creator()
        a, b, c = wc.add_joint(0, 0), wc.add_joint(6, 0), wc.add_joint(3, 4)
        wc.add_muscle(a, c)
        wc.add_muscle(b, c)
        wc.add_muscle(a, b, False, amplitude, phase)
        return wc.get_walker()

    def swing(spec: WalkerSpec) -> float:
        ev = simulate(spec, settings=SHORT, trace=True)
        length = muscle_lengths(ev.trace.frames[ev.trace.settle_frames :], spec)[:, 2]
        return float(length.max() - length.min())

    assert swing(pair(5.0, 0.0)) > 1.0
    assert swing(pair(0.0, 0.5)) < 0.05


def test_coincident_joints_are_simulated_as_two_joints():
    wc = walker_creator()
    a, b, c = wc.add_joint(0, 0), wc.add_joint(0, 0), wc.add_joint(4, 3)
    wc.add_muscle(a, c, False, 5.0, 0.0)
    wc.add_muscle(b, c, False, 5.0, 0.5)
    ev = simulate(wc.get_walker(), settings=SHORT, trace=True)
    frames = ev.trace.frames
    assert frames.shape[1] == 3
    assert np.abs(frames[-1, 0] - frames[-1, 1]).max() > 0.1  # they went separate ways


def test_every_seed_runs_on_every_terrain(seed_specs):
    for terrain in TERRAINS:
        results = simulate_batch(list(seed_specs.values()), terrain, SHORT)
        assert all(not isinstance(r, SimulationDiverged) for r in results), terrain


def test_our_own_seed_designs_travel_several_body_widths_on_flat_ground(seed_specs):
    wheel, galloper = simulate_batch([seed_specs["wheel"], seed_specs["galloper"]])
    assert wheel.fitness > 5 * wheel.descriptor.width
    assert galloper.fitness > 3 * galloper.descriptor.width


def test_a_wall_blocks_travel_towards_it_and_not_away_from_it(seed_specs):
    from evolution.sodarace._terrain import WALL_GAP

    wheel = seed_specs["wheel"]  # rolls right on flat ground
    flat = simulate(wheel, "flat")
    away = simulate(wheel, "left-wall", trace=True)
    towards = simulate(wheel, "right-wall", trace=True)
    assert flat.displacement > 50
    assert away.displacement > 0.5 * flat.displacement
    assert towards.fitness < 0.2 * flat.fitness
    # no joint's centre ever gets further into a wall than its own radius (contacts are soft)
    r = DEFAULT_SETTINGS.joint_radius
    assert away.trace.frames[:, :, 0].min() > -WALL_GAP - r
    assert towards.trace.frames[:, :, 0].max() < WALL_GAP + r
    galloper = simulate(seed_specs["galloper"], "left-wall", trace=True)  # runs left on flat
    assert galloper.trace.frames[:, :, 0].min() > -WALL_GAP - r


def test_a_tall_walker_is_slowed_by_the_tunnel(seed_specs):
    wheel = seed_specs["wheel"]  # taller than the tunnel
    assert simulate(wheel, "tunnel").fitness < 0.5 * simulate(wheel, "flat").fitness


@pytest.mark.parametrize("terrain", ["flat", "left-wall", "bumpy", "tunnel"])
def test_a_walkers_result_is_bit_identical_solo_or_in_any_batch_slot(terrain, random_specs, seed_specs):
    specs = random_specs + list(seed_specs.values())
    solo = [simulate_batch([s], terrain, SHORT)[0] for s in specs]
    order = list(reversed(range(len(specs))))
    for batch_size in (3, 16):
        batched = simulate_batch([specs[i] for i in order], terrain, SHORT, batch_size=batch_size)
        for k, i in enumerate(order):
            assert batched[k].displacement == solo[i].displacement  # exact, not approx


def test_results_are_bit_identical_in_another_process(seed_specs):
    here = [repr(ev.displacement) for ev in simulate_batch(list(seed_specs.values()), "flat", SHORT)]
    code = (
        "import json; from evolution.sodarace import *; from evolution.sodarace.seeds import SEEDS\n"
        "st = DEFAULT_SETTINGS.with_(sim_seconds=3.0)\n"
        "specs = [build_walker(s.program) for s in SEEDS.values()]\n"
        "print(json.dumps([repr(simulate(s, 'flat', st).displacement) for s in specs]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here


def test_equal_walkers_in_a_batch_get_equal_results(seed_specs):
    s = seed_specs["radial"]
    a, b = simulate_batch([s, seed_specs["square"], s], "flat", SHORT)[::2]
    assert a == b


def test_a_diverging_walker_is_a_typed_failure_and_leaves_its_batch_unharmed(seed_specs):
    strict = SHORT.with_(max_speed=8.0)  # the wheel rolls faster than this; the radial does not
    wheel, radial = seed_specs["wheel"], seed_specs["radial"]
    with pytest.raises(SimulationDiverged):
        simulate(wheel, settings=strict)
    together = simulate_batch([wheel, radial], "flat", strict)
    assert isinstance(together[0], SimulationDiverged)
    assert together[1].displacement == simulate(radial, settings=strict).displacement


def test_a_physically_unstable_setting_ends_as_simulation_diverged_not_a_giant_fitness(seed_specs):
    wild = SHORT.with_(dt=0.05, stiffness=5e4, damping=0.0)
    results = simulate_batch(list(seed_specs.values()), "flat", wild)
    assert any(isinstance(r, SimulationDiverged) for r in results)
    assert all(isinstance(r, SimulationDiverged) or math.isfinite(r.fitness) for r in results)


def test_an_unknown_terrain_is_refused_with_the_valid_names(seed_specs):
    with pytest.raises(ValueError, match="left-wall"):
        simulate(seed_specs["square"], "lava")


def test_a_program_written_for_openelm_runs_unchanged():
    program = '''
def query_cppn(wc, xgrid, ygrid, scale, connect_func, amp_func, phase_func):
    joints = {}
    for x in range(xgrid):
        for y in range(ygrid):
            joints[(x, y)] = wc.add_joint(x * scale, y * scale)
    for x1 in range(xgrid):
        for y1 in range(ygrid):
            for x2 in range(x1, xgrid):
                for y2 in range(y1, ygrid):
                    if x1 == y1 and x2 == y2:
                        continue
                    if connect_func(x1, y1, x2, y2):
                        wc.add_muscle(joints[(x1, y1)], joints[(x2, y2)],
                                      amp_func(x1, y1, x2, y2), phase_func(x1, y1, x2, y2))
    return joints

def make_walker():
    wc = walker_creator()
    connect = lambda x1, y1, x2, y2: (x1 - x2) ** 2 + (y1 - y2) ** 2 <= 4.5
    amp = lambda x1, y1, x2, y2: max(abs(x1 - x2), abs(y1 - y2))
    phase = lambda x1, y1, x2, y2: x1 if x1 % 2 == 1 else -x1
    query_cppn(wc, 8, 3, 1.5, connect, amp, phase)
    return wc.get_walker()
'''
    spec = build_walker(program)
    assert len(spec.joints) == 24
    assert sum("to itself" in w for w in spec.warnings) == 21  # OpenELM's self-muscles, dropped
    assert simulate(spec, settings=SHORT).fitness >= 0
