"""Grid archive semantics."""

from __future__ import annotations

import json

import pytest

from evolution.qd import GridArchive
from evolution.types import Outcome


def small() -> GridArchive:
    return GridArchive(dims=(4, 2), ranges=((0.0, 4.0), (0.0, 1.0)), names=("a", "b"))


def test_the_default_archive_is_the_papers_1728_niches_over_height_width_and_mass():
    archive = GridArchive()
    assert archive.dims == (12, 12, 12) and archive.cells == 1728
    assert archive.names == ("height", "width", "mass")


def test_a_genome_in_an_empty_cell_is_a_new_cell_and_a_fitter_one_improves_it():
    a = small()
    assert a.add(1, 2.0, (1.5, 0.2), "one") is Outcome.NEW_CELL
    assert a.add(2, 3.0, (1.9, 0.4), "two") is Outcome.IMPROVED
    assert a.elite((1, 0)).genome_id == 2 and a.elite((1, 0)).text == "two"


def test_an_equal_or_worse_genome_is_not_kept_and_the_incumbent_stays():
    a = small()
    a.add(1, 2.0, (1.5, 0.2), "one")
    assert a.add(2, 2.0, (1.5, 0.2), "two") is Outcome.NOT_KEPT
    assert a.add(3, 1.0, (1.5, 0.2), "three") is Outcome.NOT_KEPT
    assert a.elite((1, 0)).genome_id == 1


def test_a_failed_genome_changes_nothing():
    a = small()
    assert a.add(1, None, None, None) is Outcome.FAILED
    assert len(a) == 0


def test_values_outside_the_ranges_fall_into_the_edge_bins():
    a = small()
    assert a.cell_of((-5.0, 9.0)) == (0, 1)
    assert a.cell_of((4.0, 1.0)) == (3, 1)


def test_a_descriptor_of_the_wrong_length_or_not_finite_is_refused():
    a = small()
    with pytest.raises(ValueError, match="expected 2"):
        a.cell_of((1.0,))
    with pytest.raises(ValueError, match="finite"):
        a.cell_of((float("nan"), 0.0))


def test_coverage_qd_score_and_max_fitness_follow_the_elites():
    a = small()
    a.add(1, 2.0, (0.5, 0.2), "x")
    a.add(2, 5.0, (3.5, 0.7), "y")
    a.add(3, 1.0, (0.5, 0.2), "z")
    assert len(a) == 2 and a.coverage == 2 / 8
    assert a.qd_score == 7.0 and a.max_fitness == 5.0
    assert [e.genome_id for e in a.elites()] == [1, 2]


def test_an_archive_round_trips_through_json_exactly():
    a = small()
    a.add(1, 2.5, (0.5, 0.2), "x")
    a.add(2, 1.25, (3.5, 0.7), "y")
    b = GridArchive.from_dict(json.loads(json.dumps(a.to_dict())))
    assert list(b.elites()) == list(a.elites()) and b.dims == a.dims and b.ranges == a.ranges


def test_mismatched_dimensions_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="one entry per descriptor"):
        GridArchive(dims=(3, 3), ranges=((0, 1),), names=("a", "b"))
    with pytest.raises(ValueError, match="low < high"):
        GridArchive(dims=(3,), ranges=((1, 1),), names=("a",))
