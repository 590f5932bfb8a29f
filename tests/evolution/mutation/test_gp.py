"""The GP baseline: random syntax-tree edits of walker programs."""

from __future__ import annotations

import ast
import io
import logging
import tokenize
from collections import Counter

import numpy as np
import pytest

from evolution.mutation import EDIT_KINDS, Child, GPMutation
from evolution.sodarace import build_walker, seeds
from tests.evolution.mutation.patching import apply_unified_diff

logger = logging.getLogger(__name__)

SEED_NAMES = sorted(seeds.SEEDS)
CHILDREN_PER_SEED = 200


@pytest.fixture(scope="module")
def children() -> dict[str, list[Child]]:
    gp = GPMutation()
    return {
        name: gp.mutate([seeds.get_seed(name).text] * CHILDREN_PER_SEED, rng=np.random.default_rng(2024))
        for name in SEED_NAMES
    }


def _texts(kids: list[Child]) -> list[str]:
    return [child.text for child in kids if child.text is not None]


def _kinds(message: str) -> set[str]:
    return {kind for kind in EDIT_KINDS if kind.replace("_", " ") in message}


def _comments(text: str) -> Counter[str]:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return Counter(token.string for token in tokens if token.type == tokenize.COMMENT)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_gp_child_of_every_seed_parses(name, children):
    texts = _texts(children[name])
    assert len(texts) >= 0.95 * CHILDREN_PER_SEED
    for text in texts:
        ast.parse(text)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_most_gp_children_of_every_seed_still_build_a_walker(name, children):
    seed = seeds.get_seed(name)
    built = 0
    for text in _texts(children[name]):
        try:
            build_walker(seed.preamble + "\n\n" + text)
            built += 1
        except Exception:  # noqa: BLE001 - any failure to build counts as invalid
            pass
    rate = built / CHILDREN_PER_SEED
    logger.info("GP children of %s that build a walker: %.1f%%", name, 100 * rate)
    assert rate >= 0.6


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_child_differs_from_its_parent_and_records_parent_operator_diff_and_message(name, children):
    parent = seeds.get_seed(name).text
    for child in children[name]:
        assert child.failure is None and child.text != parent
        assert child.parent == parent and child.operator == "gp"
        assert child.diff.startswith("--- a/walker.py\n+++ b/walker.py\n@@ ")
        assert _kinds(child.message) and "\n" not in child.message


@pytest.mark.parametrize("name", SEED_NAMES)
def test_the_diff_applied_to_the_parent_gives_the_child(name, children):
    for child in children[name]:
        assert apply_unified_diff(child.parent, child.diff) == child.text


def test_every_edit_kind_is_exercised_on_the_seeds(children):
    seen = Counter(kind for kids in children.values() for child in kids for kind in _kinds(child.message))
    assert set(seen) == set(EDIT_KINDS)


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_each_edit_kind_alone_gives_parseable_children_described_by_their_message(kind):
    gp = GPMutation(weights={kind: 1.0}, edits_per_child=(1, 1))
    rng = np.random.default_rng(5)
    made = 0
    for name in SEED_NAMES:
        for child in gp.mutate([seeds.get_seed(name).text] * 20, rng=rng):
            if child.text is None:  # e.g. the CPPN seeds have no add_muscle to anchor a muscle to
                assert child.failure == "no_change"
                continue
            made += 1
            ast.parse(child.text)
            assert child.message.startswith(kind.replace("_", " ") + " ")
    assert made >= 60


def test_same_parents_and_generator_state_give_the_same_children():
    parents = [seeds.get_seed(name).text for name in SEED_NAMES] * 5
    first = GPMutation().mutate(parents, rng=np.random.default_rng(7))
    again = GPMutation().mutate(parents, rng=np.random.default_rng(7))
    other = GPMutation().mutate(parents, rng=np.random.default_rng(8))
    assert first == again
    assert first != other


def test_a_run_resumes_exactly_from_a_checkpointed_generator_state():
    gp, parents = GPMutation(), [seeds.get_seed("radial").text] * 10
    rng = np.random.default_rng(11)
    gp.mutate(parents, rng=rng)
    checkpoint = rng.bit_generator.state
    expected = gp.mutate(parents, rng=rng)
    resumed = np.random.default_rng()
    resumed.bit_generator.state = checkpoint
    assert gp.mutate(parents, rng=resumed) == expected


def test_children_come_back_one_per_parent_in_order():
    names = ["wheel", "square", "galloper", "square"]
    kids = GPMutation().mutate([seeds.get_seed(n).text for n in names], rng=np.random.default_rng(0))
    assert [child.parent for child in kids] == [seeds.get_seed(n).text for n in names]
    assert GPMutation().mutate([], rng=np.random.default_rng(0)) == []


@pytest.mark.parametrize("name", SEED_NAMES)
def test_comments_in_the_parent_survive_in_the_child(name):
    # Deleting a loop deletes the comments inside it, so every other kind is used here.
    weights = {kind: 1.0 for kind in EDIT_KINDS if kind != "delete_statement"}
    parent = seeds.get_seed(name).text
    assert _comments(parent)
    for child in GPMutation(weights=weights).mutate([parent] * 50, rng=np.random.default_rng(3)):
        assert not _comments(parent) - _comments(child.text), child.message


def test_a_literal_perturbation_changes_one_line_and_nothing_else():
    gp = GPMutation(weights={"perturb_literal": 1.0}, edits_per_child=(1, 1))
    for child in gp.mutate([seeds.get_seed("square").text] * 50, rng=np.random.default_rng(4)):
        old, new = child.parent.split("\n"), child.text.split("\n")
        assert len(old) == len(new)
        changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        assert len(changed) == 1
        assert f"at line {changed[0] + 1}" in child.message


def test_edits_per_child_sets_how_many_edits_each_child_gets():
    parent = seeds.get_seed("galloper").text
    one = GPMutation(edits_per_child=(1, 1)).mutate([parent] * 30, rng=np.random.default_rng(1))
    three = GPMutation(edits_per_child=(3, 3)).mutate([parent] * 30, rng=np.random.default_rng(1))
    assert all(child.message.count("; ") == 0 for child in one)
    assert all(child.message.count("; ") == 2 for child in three)


def _only(kind: str, program: str, count: int = 60, **options) -> list[Child]:
    gp = GPMutation(weights={kind: 1.0}, edits_per_child=(1, 1), **options)
    return gp.mutate([program] * count, rng=np.random.default_rng(9))


def test_ints_stay_ints_and_indices_and_range_bounds_move_by_one():
    program = "def make_walker():\n    return sides[3] + range(8) + 10\n"
    texts = {child.text for child in _only("perturb_literal", program)}
    lines = {text.splitlines()[1].strip() for text in texts}
    assert {"return sides[2] + range(8) + 10", "return sides[4] + range(8) + 10"} <= lines
    assert {"return sides[3] + range(7) + 10", "return sides[3] + range(9) + 10"} <= lines
    assert all("." not in line for line in lines)


def test_floats_are_perturbed_relatively_and_a_negated_one_is_parenthesised_where_needed():
    program = "def make_walker():\n    return f(5.0) - 2.0 ** 2 + x.y[0] * 0.5\n"
    for child in _only("perturb_literal", program, flip_probability=1.0):
        ast.parse(child.text)
        old, new = child.message.split("perturb literal ")[1].split(" at line")[0].split(" -> ")
        if "." in old:
            assert new.startswith("(-") or new.startswith("-") and "f(" + new in child.text
            value = float(new.strip("()"))
            assert value < 0 and 0.2 < abs(value) / float(old) < 2.0


def test_deleting_the_only_statement_of_a_block_leaves_pass():
    program = (
        "def make_walker():\n"
        "    wc = walker_creator()\n"
        "    a = wc.add_joint(0, 0)\n"
        "    if a:\n"
        "        wc.add_muscle(a, a)  # a note\n"
        "    return wc.get_walker()\n"
    )
    texts = {child.text for child in _only("delete_statement", program)}
    assert texts == {
        program.replace("    if a:\n        wc.add_muscle(a, a)  # a note\n", ""),
        program.replace("wc.add_muscle(a, a)  # a note", "pass"),
    }


@pytest.mark.parametrize("name", SEED_NAMES)
def test_deleting_never_removes_a_return_or_a_name_used_later(name):
    for child in _only("delete_statement", seeds.get_seed(name).text):
        assert "return wc.get_walker()" in child.text and "wc = walker_creator()" in child.text
        compile(child.text, "<child>", "exec")


def test_a_changed_loop_bound_keeps_n_minus_one_tidy():
    program = "def make_walker():\n    for k in range(len(sides) - 1):\n        pass\n    return k\n"
    calls = {child.text.splitlines()[1].strip() for child in _only("change_loop_bound", program, count=100)}
    assert calls == {
        f"for k in range({bound}):"
        for bound in ("len(sides)", "len(sides) - 2", "len(sides) + 1", "len(sides) - 3")
    }


def test_a_loop_bound_that_is_no_simple_sum_is_parenthesised():
    program = "def make_walker():\n    for k in range(a if b else c):\n        pass\n"
    for child in _only("change_loop_bound", program, count=10):
        assert "range((a if b else c) " in child.text


def test_swapping_muscle_ends_exchanges_the_first_two_arguments_only():
    program = "def make_walker():\n    wc.add_muscle(j[0], center, False, 5.0, 0.0)\n"
    texts = {child.text for child in _only("swap_muscle_ends", program, count=5)}
    assert texts == {program.replace("j[0], center", "center, j[0]")}


@pytest.mark.parametrize("name", ["square", "radial", "wheel", "galloper"])
def test_added_muscles_join_joints_in_scope_so_the_walker_still_builds(name):
    seed = seeds.get_seed(name)
    kids = _only("add_muscle", seed.text)
    for child in kids:
        spec = build_walker(seed.preamble + "\n\n" + child.text)
        assert len(spec.muscles) + len(spec.warnings) > len(build_walker(seed.program).muscles)
    assert len({child.text for child in kids}) > 10


def test_make_walker_and_the_helpers_it_calls_are_edited_more_than_unused_code():
    program = (
        "def unused():\n    return 1.0 + 2.0 + 3.0\n\n\n"
        "def make_walker():\n    return helper() + 4.0\n\n\n"
        "def helper():\n    return 5.0 + 6.0\n"
    )
    lines = Counter(
        int(child.message.rsplit(" ", 1)[1]) for child in _only("perturb_literal", program, count=400)
    )
    used, unused = lines[6] + lines[10], lines[2]
    assert unused > 0 and used > 2 * unused


def test_a_parent_that_does_not_parse_gives_an_unparseable_parent_child_and_no_exception():
    good = seeds.get_seed("square").text
    bad, worse = "def make_walker(:\n    return 1\n", "x = 1\0\n"
    kids = GPMutation().mutate([bad, good, worse], rng=np.random.default_rng(0))
    assert [child.failure for child in kids] == ["unparseable_parent", None, "unparseable_parent"]
    assert kids[0].text is None and kids[0].diff == "" and kids[0].parent == bad
    assert "does not parse" in kids[0].failure_message


def test_a_parent_with_nothing_to_edit_gives_a_no_change_child():
    (child,) = GPMutation().mutate(["import math\n"], rng=np.random.default_rng(0))
    assert child.failure == "no_change" and child.text is None and child.diff == ""


def test_a_single_string_or_a_legacy_random_generator_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="wrap one text in a list"):
        GPMutation().mutate("x = 1\n", rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="default_rng"):
        GPMutation().mutate(["x = 1\n"], rng=np.random.RandomState(0))


@pytest.mark.parametrize(
    "options",
    [
        {"edits_per_child": (0, 1)},
        {"edits_per_child": (2, 1)},
        {"sigma": -0.1},
        {"flip_probability": 1.5},
        {"max_attempts": 0},
        {"weights": {"mutate_everything": 1.0}},
        {"weights": {"perturb_literal": 0.0}},
        {"weights": {"perturb_literal": -1.0, "add_muscle": 1.0}},
    ],
)
def test_invalid_settings_are_refused(options):
    with pytest.raises(ValueError):
        GPMutation(**options)
