"""``make_operator``: a mutation operator from its name and where its model lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evolution

OPERATORS = ("gp", "diff", "rewrite")
"""The operator names ``make_operator`` knows."""

DEFAULT_DIFF_MODEL = Path(evolution.__file__).parent / "models" / "diff-sodarace"
"""The embedded diff model (a Hugging Face GPT-2 folder), built by ``make train-mutator``."""


def make_operator(
    name: str,
    *,
    model: str | Path | None = None,
    api_url: str | None = None,
    api_model: str | None = None,
    api_mode: str | None = None,
) -> Any:
    """The mutation operator called ``name``.

    ``"gp"`` is ``GPMutation()``. ``"diff"`` and ``"rewrite"`` use an ``OpenAIBackend`` when
    ``api_url`` is given (its key comes from ``OPENAI_API_KEY``), else a ``TransformersBackend``
    on ``model`` (default: ``DEFAULT_DIFF_MODEL``), loaded here (once per process).

    Args:
        name: One of ``OPERATORS``.
        model: Hugging Face model folder for a local model.
        api_url: Base URL of an OpenAI-compatible server, e.g. ``http://127.0.0.1:8000``.
        api_model: Model name sent to that server.
        api_mode: ``"completions"`` (default) or ``"chat"``: how to talk to the server's model.

    Raises:
        ValueError, FileNotFoundError: As ``check_operator``.
    """
    from evolution.mutation._gp import GPMutation
    from evolution.mutation._llm import DiffMutation, RewriteMutation
    from evolution.mutation._openai import OpenAIBackend
    from evolution.mutation._transformers import TransformersBackend

    folder = check_operator(name, model=model, api_url=api_url, api_model=api_model, api_mode=api_mode)
    if name == "gp":
        return GPMutation()
    if api_url is not None:
        backend: Any = OpenAIBackend(api_url, model=api_model, mode=api_mode or "completions")
    else:
        backend = TransformersBackend(model if model is not None else folder)
    return DiffMutation(backend) if name == "diff" else RewriteMutation(backend)


def check_operator(
    name: str,
    *,
    model: str | Path | None = None,
    api_url: str | None = None,
    api_model: str | None = None,
    api_mode: str | None = None,
) -> Path | None:
    """Check what ``make_operator`` would be given, loading nothing (a web form uses this).

    Returns:
        The local model folder a language-model operator would load (``DEFAULT_DIFF_MODEL``
        when none is given), or ``None`` (GP, or a server).

    Raises:
        ValueError: For an unknown name, model options given to ``"gp"``, both ``model`` and
            ``api_url``, ``api_model``/``api_mode`` without ``api_url``, the diff operator
            with ``api_mode="chat"`` (the diff format needs a completions endpoint), or an
            ``api_url`` that is not an http(s) URL.
        FileNotFoundError: If the model folder lacks a model's files (the message says how to
            build the embedded one).
    """
    from evolution.mutation._transformers import check_model_folder

    if name not in OPERATORS:
        raise ValueError(f"unknown mutation {name!r}; choose one of {', '.join(OPERATORS)}")
    given = {"--model": model, "--api-url": api_url, "--api-model": api_model, "--api-mode": api_mode}
    if name == "gp":
        if any(value is not None for value in given.values()):
            options = ", ".join(option for option, value in given.items() if value is not None)
            raise ValueError(f"{options} only apply to --mutation diff or rewrite, not gp; drop them")
        return None
    if model is not None and api_url is not None:
        raise ValueError("give either --model (a local model folder) or --api-url (a server), not both")
    if api_url is None and (api_model is not None or api_mode is not None):
        raise ValueError("--api-model and --api-mode describe a server: give --api-url too")
    if name == "diff" and api_mode == "chat":
        raise ValueError(
            "the diff operator needs a completions endpoint (it continues the '<DFF>' prompt); "
            "use --api-mode completions, or --mutation rewrite for a chat model"
        )
    if api_url is not None:
        from evolution.mutation._openai import OpenAIBackend

        OpenAIBackend(api_url, model=api_model, mode=api_mode or "completions")  # checks the URL; contacts nothing
        return None
    if model is None:
        if not (DEFAULT_DIFF_MODEL / "config.json").is_file():
            raise FileNotFoundError(
                f"the embedded diff model is not built yet ({DEFAULT_DIFF_MODEL} has no config.json); "
                "build it with `make train-mutator`, or pass --model PATH (a Hugging Face model folder) "
                "or --api-url URL (an OpenAI-compatible server)"
            )
        model = DEFAULT_DIFF_MODEL
    return check_model_folder(model)
