"""Replay traces and the height/width/mass descriptor."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest

from evolution.sodarace import DEFAULT_RANGES, DEFAULT_SETTINGS, Trace, describe, simulate, walker_creator


def test_a_trace_holds_30_frames_per_second_of_every_joint_and_round_trips(seed_specs):
    spec = seed_specs["cppn_fixed"]
    ev = simulate(spec, "bumpy", trace=True)
    t = ev.trace
    assert t.fps == pytest.approx(30.0)
    assert t.settle_frames == 30
    assert t.frames.shape == (331, len(spec.joints), 2) and t.frames.dtype == np.float32
    assert t.terrain["name"] == "bumpy" and len(t.terrain["segments"]) > 100
    assert len(t.muscles) == len(spec.muscles)
    data = t.to_bytes()
    assert len(data) < 200_000
    back = Trace.from_bytes(data)
    assert np.array_equal(back.frames, t.frames)
    assert (back.fps, back.settle_frames, back.muscles, back.terrain) == (t.fps, t.settle_frames, t.muscles, t.terrain)


def test_a_trace_for_browsers_carries_the_frames_as_base64_float32(seed_specs):
    t = simulate(seed_specs["square"], trace=True).trace
    d = t.to_json_dict()
    frames = np.frombuffer(base64.b64decode(d["frames_b64"]), dtype="<f4").reshape(d["shape"])
    assert np.array_equal(frames, t.frames)


def test_bytes_that_are_not_a_trace_are_refused():
    with pytest.raises(ValueError, match="SRT1"):
        Trace.from_bytes(b"nonsense")


def test_trace_frames_are_lane_local_coordinates(seed_specs):
    t = simulate(seed_specs["square"], trace=True).trace
    assert abs(t.frames[0, :, 0].mean()) < 6  # centred at the start, whatever lane it ran in


def test_the_descriptor_is_the_bounding_box_and_the_simulated_mass():
    wc = walker_creator()
    a, b, c = wc.add_joint(0, 0), wc.add_joint(4, 0), wc.add_joint(0, 3)
    wc.add_muscle(a, b)
    wc.add_muscle(b, c, False, 2.0, 0.0)
    d = describe(wc.get_walker())
    s = DEFAULT_SETTINGS
    assert (d.height, d.width) == (3.0, 4.0)
    assert d.mass == pytest.approx(3 * s.joint_mass + s.muscle_density * (4 + 5))


def test_the_seeds_fall_inside_the_default_descriptor_ranges(seed_specs):
    for spec in seed_specs.values():
        for value, (lo, hi) in zip(describe(spec).as_tuple(), DEFAULT_RANGES):
            assert lo <= value <= hi and math.isfinite(value)
