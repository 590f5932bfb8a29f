"""Mutation operators: parent program texts in, child program texts out, in batches.

API index:
    Operator: the protocol every mutation implements, ``mutate(parents, *, rng) -> [Child]``.
    Child: one child program (its parent, diff, operator and message), or why there is none.
    FAILURE_KINDS: the values ``Child.failure`` may take.
    unified_diff: the parent -> child diff every ``Child`` records.
    GPMutation: the paper's genetic-programming control, random syntax-tree edits.
    EDIT_KINDS, DEFAULT_WEIGHTS: the GP edit kinds and how often each is chosen.
"""

from evolution.mutation._child import FAILURE_KINDS, Child
from evolution.mutation._diff import unified_diff
from evolution.mutation._gp import DEFAULT_WEIGHTS, GPMutation
from evolution.mutation._gp_sites import EDIT_KINDS
from evolution.mutation._operator import Operator

__all__ = [
    "DEFAULT_WEIGHTS",
    "EDIT_KINDS",
    "FAILURE_KINDS",
    "Child",
    "GPMutation",
    "Operator",
    "unified_diff",
]
