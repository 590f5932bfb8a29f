"""The ``Child`` record and the ``Operator`` protocol."""

from __future__ import annotations

import pytest

from evolution.mutation import FAILURE_KINDS, Child, GPMutation, Operator


def test_a_child_has_a_text_or_a_failure_never_both_nor_neither():
    Child("x = 1\n", "x = 2\n", "diff", "gp")
    Child("x = 1\n", None, "", "gp", failure="no_change")
    with pytest.raises(ValueError, match="either a text or a failure"):
        Child("x = 1\n", None, "", "gp")
    with pytest.raises(ValueError, match="either a text or a failure"):
        Child("x = 1\n", "x = 2\n", "", "gp", failure="no_change")


def test_a_failure_must_be_a_known_kind_and_the_error_lists_them():
    with pytest.raises(ValueError, match="no_change, unparseable_parent"):
        Child("x = 1\n", None, "", "gp", failure="oops")
    assert {
        "no_change",
        "unparseable_parent",
        "no_diff",
        "malformed_diff",
        "does_not_apply",
        "generation_error",
        "unparseable_child",
    } == set(FAILURE_KINDS)


def test_a_child_is_immutable():
    child = Child("x = 1\n", "x = 2\n", "diff", "gp")
    with pytest.raises(AttributeError):
        child.text = "x = 3\n"


def test_gp_satisfies_the_operator_protocol_and_a_plain_object_does_not():
    assert isinstance(GPMutation(), Operator)
    assert GPMutation().name == "gp"
    assert not isinstance(object(), Operator)
