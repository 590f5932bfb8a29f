"""Unified diffs between parent and child programs."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from evolution.mutation import unified_diff
from tests.evolution.mutation.patching import apply_unified_diff

PARENT = (
    "def make_walker():\n"
    "    wc = walker_creator()\n"
    "    # a comment\n"
    "    a = wc.add_joint(0, 0)\n"
    "    return wc.get_walker()\n"
)
CASES = {
    "one line changed": (PARENT, PARENT.replace("(0, 0)", "(0, 1.5)")),
    "line added": (PARENT, PARENT.replace("    return", "    b = a\n    return")),
    "line removed": (PARENT, PARENT.replace("    # a comment\n", "")),
    "no newline at the end of the parent": (PARENT.rstrip("\n"), PARENT),
    "no newline at the end of the child": (PARENT, PARENT.rstrip("\n")),
    "no newline at either end": (PARENT.rstrip("\n"), PARENT.rstrip("\n").replace("get_walker", "walker")),
    "from empty": ("", PARENT),
    "to empty": (PARENT, ""),
    "form feed and carriage returns kept in lines": (PARENT.replace("\n", "\r\n"), "\f" + PARENT),
}


def test_identical_texts_have_an_empty_diff():
    assert unified_diff(PARENT, PARENT) == ""
    assert unified_diff("", "") == ""


def test_the_diff_has_git_style_headers_naming_the_file_and_shows_only_the_change():
    diff = unified_diff(PARENT, PARENT.replace("(0, 0)", "(0, 1.5)"), filename="square.py")
    lines = diff.splitlines()
    assert lines[:2] == ["--- a/square.py", "+++ b/square.py"]
    assert [line for line in lines[2:] if line[:1] in "+-"] == [
        "-    a = wc.add_joint(0, 0)",
        "+    a = wc.add_joint(0, 1.5)",
    ]


def test_context_sets_the_number_of_unchanged_lines_around_a_change():
    child = PARENT.replace("(0, 0)", "(1, 0)")
    assert len(unified_diff(PARENT, child, context=0).splitlines()) == 5
    assert len(unified_diff(PARENT, child, context=1).splitlines()) == 7


@pytest.mark.parametrize("case", sorted(CASES))
def test_applying_the_diff_to_the_parent_gives_the_child(case):
    parent, child = CASES[case]
    assert apply_unified_diff(parent, unified_diff(parent, child)) == child


def test_a_last_line_without_a_newline_is_marked_as_gnu_diff_marks_it():
    diff = unified_diff("a\nb", "a\nc")
    assert diff.endswith("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")


@pytest.mark.skipif(shutil.which("patch") is None, reason="the patch program is not installed")
@pytest.mark.parametrize("case", sorted(set(CASES) - {"from empty", "to empty"}))
def test_the_patch_program_accepts_the_diff(case, tmp_path):
    parent, child = CASES[case]
    target = tmp_path / "walker.py"
    target.write_bytes(parent.encode())
    diff = unified_diff(parent, child)
    subprocess.run(["patch", "-s", "-p1", "-d", str(tmp_path)], input=diff.encode(), check=True)
    assert target.read_bytes().decode() == child
