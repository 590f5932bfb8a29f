"""Mutation operators: parent program texts in, child program texts out, in batches.

API index:
    Operator: the protocol every mutation implements, ``mutate(parents, *, rng) -> [Child]``.
    Child: one child program (its parent, diff, operator and message), or why there is none.
    FAILURE_KINDS: the values ``Child.failure`` may take.
    unified_diff: the parent -> child diff every ``Child`` records.
    GPMutation: the paper's genetic-programming control, random syntax-tree edits.
    EDIT_KINDS, DEFAULT_WEIGHTS: the GP edit kinds and how often each is chosen.
    DiffMutation: the paper's diff operator, a diff model writes a unified diff of each parent.
    RewriteMutation: the prompt-based alternative, a code model rewrites ``make_walker``.
    apply_diff, Applied: apply a model's unified diff tolerantly (fuzzy hunk matching).
    Backend, BackendError: what the language-model operators need from a model.
    TransformersBackend: a Hugging Face causal LM from a local folder, loaded once per process.
    OpenAIBackend: any OpenAI-compatible HTTP server (completions or chat).
    make_operator, OPERATORS, DEFAULT_DIFF_MODEL: an operator by name; the embedded model's folder.
    check_operator: check an operator's options and model folder without loading anything.
    serve, make_server: an OpenAI-compatible server for a local model (``serve-model``).
"""

from evolution.mutation._apply import Applied, apply_diff
from evolution.mutation._backends import Backend, BackendError
from evolution.mutation._child import FAILURE_KINDS, Child
from evolution.mutation._diff import unified_diff
from evolution.mutation._factory import DEFAULT_DIFF_MODEL, OPERATORS, check_operator, make_operator
from evolution.mutation._gp import DEFAULT_WEIGHTS, GPMutation
from evolution.mutation._gp_sites import EDIT_KINDS
from evolution.mutation._llm import DiffMutation, RewriteMutation
from evolution.mutation._openai import OpenAIBackend
from evolution.mutation._operator import Operator
from evolution.mutation._server import make_server, serve
from evolution.mutation._transformers import TransformersBackend

__all__ = [
    "DEFAULT_DIFF_MODEL",
    "DEFAULT_WEIGHTS",
    "EDIT_KINDS",
    "FAILURE_KINDS",
    "OPERATORS",
    "Applied",
    "Backend",
    "BackendError",
    "Child",
    "DiffMutation",
    "GPMutation",
    "OpenAIBackend",
    "Operator",
    "RewriteMutation",
    "TransformersBackend",
    "apply_diff",
    "make_operator",
    "check_operator",
    "make_server",
    "serve",
    "unified_diff",
]
