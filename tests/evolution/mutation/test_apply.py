"""``apply_diff``: unified diffs as language models write them, applied tolerantly."""

from __future__ import annotations

import numpy as np
import pytest

from evolution.mutation import GPMutation, apply_diff, unified_diff
from evolution.sodarace import seeds

SQUARE = seeds.get_seed("square").text
MOVED = SQUARE.replace("center = wc.add_joint(5, 5)", "center = wc.add_joint(5, 6)")

# Walker programs repeat lines: the same muscle line, with the same one line of context, twice.
REPEATED = (
    "def make_walker():\n"  # 1
    "    wc = walker_creator()\n"  # 2
    "    a = wc.add_joint(0, 0)\n"  # 3
    "    b = wc.add_joint(4, 0)\n"  # 4
    "    wc.add_muscle(a, b)\n"  # 5
    "    wc.add_muscle(a, b)\n"  # 6
    "    c = wc.add_joint(2, 3)\n"  # 7
    "    wc.add_muscle(a, b)\n"  # 8
    "    wc.add_muscle(a, b)\n"  # 9
    "    return wc.get_walker()\n"  # 10
)


def hunk(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


def test_a_diff_made_by_unified_diff_applies_exactly():
    applied = apply_diff(SQUARE, unified_diff(SQUARE, MOVED))
    assert applied.ok and applied.text == MOVED
    assert (applied.hunks, applied.fuzzy_hunks) == (1, 0)


def test_every_gp_child_of_every_seed_is_rebuilt_from_its_diff():
    gp = GPMutation(edits_per_child=(1, 3))
    for name in sorted(seeds.SEEDS):
        parent = seeds.get_seed(name).text
        for child in gp.mutate([parent] * 15, rng=np.random.default_rng(7)):
            if child.text is not None:
                applied = apply_diff(parent, child.diff)
                assert applied.text == child.text, (name, child.message, applied.message)
                assert applied.fuzzy_hunks == 0


def test_file_headers_are_optional():
    diff = unified_diff(SQUARE, MOVED)
    body = diff[diff.index("@@") :]
    assert apply_diff(SQUARE, body).text == MOVED


def test_wrong_hunk_header_counts_and_line_numbers_are_ignored():
    diff = unified_diff(SQUARE, MOVED)
    wrong = diff.replace(diff[diff.index("@@") : diff.index("@@", 3) + 2], "@@ -3,99 +40,1 @@")
    assert wrong != diff and apply_diff(SQUARE, wrong).text == MOVED
    bare = diff.replace(diff[diff.index("@@") : diff.index("@@", 3) + 2], "@@ @@")
    assert apply_diff(SQUARE, bare).text == MOVED


def test_a_hunk_with_a_misspelled_context_line_still_applies():
    diff = unified_diff(SQUARE, MOVED).replace("     # the main body is a square\n", "     # the main body is square\n")
    assert diff != unified_diff(SQUARE, MOVED)
    applied = apply_diff(SQUARE, diff)
    assert applied.ok and applied.fuzzy_hunks == 1 and "similarity" in applied.message
    assert applied.text == MOVED  # context lines keep the parent's text


def test_a_hunk_whose_removed_line_is_misremembered_still_replaces_the_right_line():
    diff = hunk("@@ -19,3 +19,3 @@", "     sides = make_square(wc, 0, 0, 10, 10)", "-    centre = wc.add_joint(5,5)", "+    center = wc.add_joint(5, 6)")
    assert apply_diff(SQUARE, diff).text == MOVED


def test_a_line_too_unlike_any_parent_line_does_not_apply():
    diff = hunk("@@ -19,2 +19,2 @@", "     sides = make_square(wc, 0, 0, 10, 10)", "-    spokes = [wc.add_joint(k, k) for k in range(9)]", "+    x = 1")
    applied = apply_diff(SQUARE, diff)
    assert applied.failure == "does_not_apply" and applied.text is None
    assert "hunk 1 of 1" in applied.message and "spokes" in applied.message


def test_the_similarity_threshold_decides_what_a_fuzzy_line_may_be():
    diff = hunk("@@ -19,2 +19,2 @@", "     sides = make_square(wc, 0, 0, 10, 12)", "-    center = wc.add_joint(5, 5)", "+    center = wc.add_joint(5, 6)")
    assert apply_diff(SQUARE, diff, similarity=0.9).text == MOVED
    assert apply_diff(SQUARE, diff, similarity=1.0).failure == "does_not_apply"
    with pytest.raises(ValueError, match="similarity must be in"):
        apply_diff(SQUARE, diff, similarity=1.5)


def test_whitespace_differences_alone_still_match_at_similarity_one():
    diff = hunk("@@ -19,2 +19,2 @@", "  sides = make_square(wc, 0, 0, 10, 10)  ", "-\tcenter = wc.add_joint(5, 5)", "+    center = wc.add_joint(5, 6)")
    assert apply_diff(SQUARE, diff, similarity=1.0).text == MOVED


@pytest.mark.parametrize("line", [5, 8])
def test_ambiguous_repeated_lines_are_resolved_by_the_header_line_number(line):
    diff = hunk(f"@@ -{line},2 +{line},2 @@", "     wc.add_muscle(a, b)", "-    wc.add_muscle(a, b)", "+    wc.add_muscle(a, b, False, 2.0, 0.5)")
    lines = REPEATED.splitlines(keepends=True)
    lines[line] = "    wc.add_muscle(a, b, False, 2.0, 0.5)\n"  # the line after the context line
    assert apply_diff(REPEATED, diff).text == "".join(lines)


def test_ambiguous_fuzzy_matches_are_resolved_by_the_header_line_number_too():
    diff = hunk("@@ -8,2 +8,2 @@", "     wc.add_muscle(a,b)", "-    wc.add_muscle(a,b)", "+    wc.add_muscle(b, a)")
    applied = apply_diff(REPEATED, diff)
    assert applied.fuzzy_hunks == 1
    assert applied.text == REPEATED.replace("    wc.add_muscle(a, b)\n    return", "    wc.add_muscle(b, a)\n    return")


def test_the_best_fuzzy_match_wins_over_a_nearer_worse_one():
    parent = "x = 1\nwc.add_joint(17, 20)\ny = 2\nwc.add_joint(10, 22)\n"
    diff = hunk("@@ -2,1 +2,1 @@", "-wc.add_joint(10, 21)", "+wc.add_joint(0, 0)")
    assert apply_diff(parent, diff).text == "x = 1\nwc.add_joint(17, 20)\ny = 2\nwc.add_joint(0, 0)\n"


def test_hunks_apply_in_order_and_never_overlap():
    one = hunk("@@ -5,2 +5,2 @@", "     wc.add_muscle(a, b)", "-    wc.add_muscle(a, b)", "+    wc.add_muscle(a, b, False, 1.0, 0.0)")
    two = hunk("@@ -5,2 +5,2 @@", "     wc.add_muscle(a, b)", "-    wc.add_muscle(a, b)", "+    wc.add_muscle(a, b, False, 2.0, 0.0)")
    applied = apply_diff(REPEATED, one + two)
    assert applied.hunks == 2
    assert applied.text.splitlines()[5:9] == [
        "    wc.add_muscle(a, b, False, 1.0, 0.0)",
        "    c = wc.add_joint(2, 3)",
        "    wc.add_muscle(a, b)",
        "    wc.add_muscle(a, b, False, 2.0, 0.0)",
    ]


def test_a_later_hunk_follows_the_offset_of_the_previous_one():
    # both headers are 4 lines too high; the second hunk's block occurs at lines 5-6 and 8-9
    one = hunk("@@ -7,1 +7,1 @@", "-    b = wc.add_joint(4, 0)", "+    b = wc.add_joint(5, 0)")
    two = hunk("@@ -12,2 +12,2 @@", "     wc.add_muscle(a, b)", "-    wc.add_muscle(a, b)", "+    wc.add_muscle(b, a)")
    lines = REPEATED.replace("(4, 0)", "(5, 0)").splitlines(keepends=True)
    lines[8] = "    wc.add_muscle(b, a)\n"
    assert apply_diff(REPEATED, one + two).text == "".join(lines)


def test_a_pure_insertion_goes_where_its_header_says():
    diff = hunk("@@ -3,0 +4,1 @@", "+    d = wc.add_joint(9, 9)")
    lines = REPEATED.splitlines(keepends=True)
    assert apply_diff(REPEATED, diff).text == "".join([*lines[:3], "    d = wc.add_joint(9, 9)\n", *lines[3:]])
    assert apply_diff(REPEATED, hunk("@@ @@", "+x = 1")).failure == "does_not_apply"


def test_no_newline_at_end_of_file_markers_are_honoured():
    parent, child = "a = 1\nb = 2", "a = 1\nb = 3"
    diff = unified_diff(parent, child)
    assert "\\ No newline at end of file" in diff
    assert apply_diff(parent, diff).text == child
    assert apply_diff(parent + "\n", unified_diff(parent + "\n", child)).text == child
    assert apply_diff(parent, unified_diff(parent, child + "\n")).text == child + "\n"


def test_a_missing_no_newline_marker_does_not_stop_the_diff_applying():
    assert apply_diff("a = 1\nb = 2", hunk("@@ -2 +2 @@", "-b = 2", "+b = 3")).text == "a = 1\nb = 3\n"


def test_trailing_garbage_and_a_second_file_after_the_last_hunk_are_ignored():
    diff = unified_diff(SQUARE, MOVED)
    assert apply_diff(SQUARE, diff + "This makes the walker taller.\n<NME> walker.py\n-    x").text == MOVED
    other = "--- a/other.py\n+++ b/other.py\n@@ -1 +1 @@\n-def make_walker():\n+def walker():\n"
    assert apply_diff(SQUARE, diff + other).text == MOVED
    assert apply_diff(SQUARE, diff + "And another file:\n" + other).text == MOVED


def test_a_crlf_diff_applies_to_an_lf_parent():
    assert apply_diff(SQUARE, unified_diff(SQUARE, MOVED).replace("\n", "\r\n")).text == MOVED


def test_the_parents_line_endings_and_indentation_survive():
    crlf = SQUARE.replace("\n", "\r\n")
    applied = apply_diff(crlf, unified_diff(SQUARE, MOVED))
    assert applied.text == MOVED.replace("\n", "\r\n")
    mixed = "def f():\n\treturn 1\r\n\n    # x\n"  # mostly LF: new lines get LF
    assert apply_diff(mixed, hunk("@@ -4 +4 @@", "-    # x", "+    # y")).text == "def f():\n\treturn 1\r\n\n    # y\n"


def test_a_blank_context_line_that_lost_its_leading_space_still_matches():
    diff = unified_diff(SQUARE, MOVED).replace("\n \n", "\n\n")
    assert apply_diff(SQUARE, diff).text == MOVED


@pytest.mark.parametrize("completion", ["", "   \n\n", "The walker is fine as it is."])
def test_a_completion_without_any_diff_is_no_diff(completion):
    applied = apply_diff(SQUARE, completion)
    assert applied.failure == "no_diff" and applied.text is None and applied.message


@pytest.mark.parametrize(
    "completion",
    ["--- a/walker.py\n+++ b/walker.py\n", "@@ -1,2 +1,2 @@\n", "-    center = wc.add_joint(5, 5)\n+    center = 1\n"],
)
def test_diff_like_text_without_a_usable_hunk_is_malformed(completion):
    applied = apply_diff(SQUARE, completion)
    assert applied.failure == "malformed_diff" and applied.text is None


def test_a_diff_that_changes_nothing_is_no_change():
    same = hunk("@@ -19 +19 @@", "-    center = wc.add_joint(5, 5)", "+    center = wc.add_joint(5, 5)")
    assert apply_diff(SQUARE, same).failure == "no_change"
    context_only = hunk("@@ -19 +19 @@", "     center = wc.add_joint(5, 5)")
    assert apply_diff(SQUARE, context_only).failure == "no_change"


def test_a_diff_of_an_empty_parent_inserts_the_whole_program():
    assert apply_diff("", unified_diff("", SQUARE)).text == SQUARE
