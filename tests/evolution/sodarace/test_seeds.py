"""The shipped seed programs."""

from __future__ import annotations

import ast

import pytest

from evolution.sodarace import build_walker, seeds


def test_the_paper_seeds_and_two_of_our_own_are_shipped():
    assert set(seeds.SEEDS) == {"square", "radial", "cppn_fixed", "cppn_mutable", "wheel", "galloper"}


@pytest.mark.parametrize("name", sorted(seeds.SEEDS))
def test_every_seed_is_python_defining_make_walker_that_builds_a_walker(name):
    seed = seeds.get_seed(name)
    tree = ast.parse(seed.text)
    assert "make_walker" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    spec = build_walker(seed.program)
    assert len(spec.joints) >= 5 and spec.num_active >= 3


def test_the_square_is_written_in_the_papers_api_form():
    text = seeds.get_seed("square").text
    assert "wc.add_muscle(sides[0], center, False, 5.0, 0.0)" in text
    spec = build_walker(text)
    assert len(spec.joints) == 5 and len(spec.muscles) == 8
    assert sorted(m.amplitude for m in spec.muscles if m.active) == [2.0, 5.0, 10.0]
    assert {m.phase for m in spec.muscles} == {0.0}


def test_cppn_fixed_keeps_its_helper_outside_the_mutable_text_and_cppn_mutable_inside():
    fixed, mutable = seeds.get_seed("cppn_fixed"), seeds.get_seed("cppn_mutable")
    assert "def query_cppn" not in fixed.text and "def query_cppn" in fixed.preamble
    assert "def query_cppn" in mutable.text and mutable.preamble == ""
    assert build_walker(fixed.program) == build_walker(mutable.program)


def test_seed_names_are_forgiving_about_dashes_and_case_and_strict_otherwise():
    assert seeds.get_seed("CPPN-Fixed").name == "cppn_fixed"
    with pytest.raises(ValueError, match="square"):
        seeds.get_seed("triangle")
