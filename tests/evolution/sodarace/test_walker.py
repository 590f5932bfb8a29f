"""The walker API that evolved programs call, and its validation."""

from __future__ import annotations

import dataclasses
import math

import pytest

from evolution.sodarace import InvalidWalker, WalkerLimits, spec_from_dict, walker_creator
from evolution.types import MuscleSpec, WalkerSpec


def two_joints(wc: walker_creator):
    return wc.add_joint(0, 0), wc.add_joint(3, 4)


def test_a_muscle_with_only_two_joints_is_passive():
    wc = walker_creator()
    a, b = two_joints(wc)
    wc.add_muscle(a, b)
    (m,) = wc.get_walker().muscles
    assert m == MuscleSpec(0, 1, 0.0, 0.0) and not m.active


def test_the_paper_form_with_false_makes_an_active_muscle():
    wc = walker_creator()
    a, b = two_joints(wc)
    wc.add_muscle(a, b, False, 5.0, 0.25)
    assert wc.get_walker().muscles == (MuscleSpec(0, 1, 5.0, 0.25),)


def test_the_paper_form_with_true_makes_a_passive_muscle_whatever_the_amplitude():
    wc = walker_creator()
    a, b = two_joints(wc)
    wc.add_muscle(a, b, True, 5.0, 0.25)
    assert wc.get_walker().muscles[0].amplitude == 0.0


def test_the_openelm_form_without_the_flag_makes_an_active_muscle():
    wc = walker_creator()
    a, b = two_joints(wc)
    wc.add_muscle(a, b, 5.0, 0.25)
    wc.add_muscle(a, b, 2.0)
    wc.add_muscle(a, b, amplitude=1.5, phase=0.5)
    assert [m.amplitude for m in wc.get_walker().muscles] == [5.0, 2.0, 1.5]
    assert [m.phase for m in wc.get_walker().muscles] == [0.25, 0.0, 0.5]


def test_an_argument_list_of_no_known_form_is_a_type_error_naming_the_forms():
    wc = walker_creator()
    a, b = two_joints(wc)
    with pytest.raises(TypeError, match="is_distance"):
        wc.add_muscle(a, b, 1, 2, 3, 4)
    with pytest.raises(TypeError, match="True or False"):
        wc.add_muscle(a, b, "yes", 2.0, 0.0)


def test_two_joints_at_the_same_place_stay_two_joints():
    wc = walker_creator()
    a = wc.add_joint(1, 1)
    b = wc.add_joint(1, 1)
    c = wc.add_joint(5, 1)
    wc.add_muscle(a, c)
    wc.add_muscle(b, c, 2.0, 0.0)
    spec = wc.get_walker()
    assert len(spec.joints) == 3
    assert [(m.a, m.b) for m in spec.muscles] == [(0, 2), (1, 2)]
    assert a != b


def test_a_joint_reads_like_the_coordinate_pair_openelm_returned():
    wc = walker_creator()
    j = wc.add_joint(2.5, -1)
    x, y = j
    assert (x, y, j[0], j[1], len(j)) == (2.5, -1.0, 2.5, -1.0, 2)


def test_a_joint_from_another_creator_is_refused():
    mine, other = walker_creator(), walker_creator()
    a = mine.add_joint(0, 0)
    b = other.add_joint(1, 1)
    with pytest.raises(InvalidWalker) as err:
        mine.add_muscle(a, b)
    assert err.value.rule == "foreign_joint"


def test_a_muscle_end_that_is_not_a_joint_is_refused():
    wc = walker_creator()
    a = wc.add_joint(0, 0)
    with pytest.raises(InvalidWalker) as err:
        wc.add_muscle(a, (1.0, 1.0))
    assert err.value.rule == "not_a_joint"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_coordinates_and_amplitudes_are_refused(bad):
    wc = walker_creator()
    with pytest.raises(InvalidWalker) as err:
        wc.add_joint(bad, 0)
    assert err.value.rule == "finite_numbers"
    a, b = two_joints(wc)
    with pytest.raises(InvalidWalker) as err:
        wc.add_muscle(a, b, bad, 0.0)
    assert err.value.rule == "finite_numbers"


def test_a_string_coordinate_is_refused_as_not_a_number():
    with pytest.raises(InvalidWalker) as err:
        walker_creator().add_joint("1", 0)
    assert err.value.rule == "not_a_number"


def test_a_muscle_from_a_joint_to_itself_is_dropped_with_a_warning():
    wc = walker_creator()
    a, b = two_joints(wc)
    wc.add_muscle(a, a, 1.0, 0.0)
    wc.add_muscle(a, b)
    spec = wc.get_walker()
    assert len(spec.muscles) == 1
    assert spec.warnings == ("muscle from joint 0 to itself was dropped",)


def test_a_muscle_between_coincident_joints_is_dropped_with_a_warning():
    wc = walker_creator()
    a, b, c = wc.add_joint(0, 0), wc.add_joint(0, 0), wc.add_joint(1, 0)
    wc.add_muscle(a, b)
    wc.add_muscle(a, c)
    spec = wc.get_walker()
    assert [(m.a, m.b) for m in spec.muscles] == [(0, 2)]
    assert "coincident" in spec.warnings[0]


@pytest.mark.parametrize(
    ("build", "rule"),
    [
        (lambda wc: None, "no_joints"),
        (lambda wc: [wc.add_joint(i, 0) for i in range(6)], "max_joints"),
        (lambda wc: wc.add_joint(60, 0), "coordinate_range"),
        (lambda wc: _muscles(wc, 7), "max_muscles"),
        (lambda wc: _star(wc, 4), "max_muscles_per_joint"),
        (lambda wc: wc.add_muscle(wc.add_joint(0, 0), wc.add_joint(0.001, 0)), "min_muscle_length"),
        (lambda wc: wc.add_muscle(wc.add_joint(0, 0), wc.add_joint(1, 0), 101.0, 0.0), "amplitude_range"),
        (lambda wc: wc.add_muscle(wc.add_joint(0, 0), wc.add_joint(1, 0), 1.0, 2e6), "phase_range"),
    ],
)
def test_each_named_limit_raises_invalid_walker_with_its_rule(build, rule):
    limits = WalkerLimits(max_joints=5, max_muscles=6, max_muscles_per_joint=3)
    wc = walker_creator(limits)
    with pytest.raises(InvalidWalker) as err:
        build(wc)
        wc.get_walker()
    assert err.value.rule == rule
    assert rule in str(err.value)


def _muscles(wc, n):
    a, b = wc.add_joint(0, 0), wc.add_joint(1, 0)
    for _ in range(n):
        wc.add_muscle(a, b)


def _star(wc, n):
    hub = wc.add_joint(0, 0)
    for i in range(n):
        wc.add_muscle(hub, wc.add_joint(1 + i * 0.5, 1))


def test_too_many_joints_fail_at_once_instead_of_building_a_huge_list():
    wc = walker_creator()
    with pytest.raises(InvalidWalker) as err:
        for i in range(100_000):
            wc.add_joint(i % 50, 0)
    assert err.value.rule == "max_joints" and len(wc._joints) == 128


def test_a_walker_is_immutable_plain_data_that_round_trips_through_a_dict():
    wc = walker_creator()
    a, b = two_joints(wc)
    c = wc.add_joint(1.5, 2.25)
    wc.add_muscle(a, b)
    wc.add_muscle(b, c, False, 3.5, 0.75)
    wc.add_muscle(c, c)
    spec = wc.get_walker()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.joints = ()  # type: ignore[misc]
    assert WalkerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"joints": [[0, 0]], "muscles": [[0, 5, 0.0, 0.0]]},
        {"joints": [[0, 0], [1, 1]], "muscles": [[0, True, 0.0, 0.0]]},
        {"joints": [[0, 0], [1, 1]], "muscles": [[0, 1, 0.0]]},
        {"joints": [["a", 0]], "muscles": []},
        {"joints": "xy", "muscles": []},
    ],
)
def test_malformed_data_is_refused_by_from_dict(data):
    with pytest.raises(InvalidWalker):
        spec_from_dict(data)


def test_from_dict_applies_the_same_limits_as_the_api():
    data = {"joints": [[i % 40, i // 40] for i in range(200)], "muscles": []}
    with pytest.raises(InvalidWalker) as err:
        spec_from_dict(data)
    assert err.value.rule == "max_joints"
