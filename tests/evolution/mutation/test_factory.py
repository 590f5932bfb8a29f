"""``make_operator`` and ``check_operator``: operators by name, their backends, the run
configuration's options, and the checks made before anything is loaded."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest import mock

import pytest

import evolution
from evolution import loop
from evolution.loop import RunConfig
from evolution.mutation import (
    DEFAULT_DIFF_MODEL,
    DiffMutation,
    GPMutation,
    OpenAIBackend,
    RewriteMutation,
    TransformersBackend,
    check_operator,
    make_operator,
)
from evolution.mutation import _factory


def test_gp_needs_no_model_and_refuses_model_options():
    assert isinstance(make_operator("gp"), GPMutation)
    with pytest.raises(ValueError, match="--model, --api-url only apply to --mutation diff or rewrite"):
        make_operator("gp", model="m", api_url="http://x")


def test_an_unknown_operator_names_the_known_ones():
    with pytest.raises(ValueError, match="choose one of gp, diff, rewrite"):
        make_operator("crossover")


def test_an_api_url_gives_an_http_backend_without_contacting_it():
    diff = make_operator("diff", api_url="http://127.0.0.1:9/v1", api_model="codegen-2b-diff")
    assert isinstance(diff, DiffMutation) and isinstance(diff.backend, OpenAIBackend)
    assert (diff.backend.url, diff.backend.model, diff.backend.mode) == ("http://127.0.0.1:9", "codegen-2b-diff", "completions")
    rewrite = make_operator("rewrite", api_url="http://127.0.0.1:9", api_mode="chat")
    assert isinstance(rewrite, RewriteMutation) and rewrite.mode == "chat"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(model="m", api_url="http://x"), "not both"),
        (dict(api_model="m"), "give --api-url too"),
        (dict(api_url="http://x", api_mode="chat"), "needs a completions endpoint"),
    ],
)
def test_options_that_do_not_fit_together_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_operator("diff", **kwargs)


def test_a_local_model_folder_gives_a_transformers_backend(tiny_model):
    operator = make_operator("rewrite", model=tiny_model)
    assert isinstance(operator, RewriteMutation) and isinstance(operator.backend, TransformersBackend)


def test_the_default_model_lives_in_the_package_and_says_how_to_build_it_when_missing(monkeypatch, tmp_path):
    assert DEFAULT_DIFF_MODEL == Path(evolution.__file__).parent / "models" / "diff-sodarace"
    monkeypatch.setattr(_factory, "DEFAULT_DIFF_MODEL", tmp_path / "diff-sodarace")
    with pytest.raises(FileNotFoundError, match="make train-mutator"):
        make_operator("diff")


def test_the_run_configuration_carries_the_model_options_but_never_a_key(tiny_model):
    config = RunConfig(mutation="diff", model=str(tiny_model))
    operator = loop.make_operator(config)
    assert isinstance(operator, DiffMutation) and operator.backend.path == tiny_model
    assert {"model", "api_url", "api_model", "api_mode"} <= {f.name for f in dataclasses.fields(RunConfig)}
    assert not any("key" in f.name for f in dataclasses.fields(RunConfig))
    assert isinstance(loop.make_operator("gp"), GPMutation)


def test_a_config_written_before_the_model_options_existed_still_loads():
    old = dataclasses.asdict(RunConfig())
    for name in ("model", "api_url", "api_model", "api_mode"):
        del old[name]
    config = RunConfig.from_dict(old)
    assert (config.model, config.api_url, config.api_model, config.api_mode) == (None, None, None, None)


def test_checking_a_local_model_loads_nothing_and_returns_its_folder(tiny_model):
    with mock.patch("evolution.mutation._transformers.load_model", side_effect=AssertionError("loaded")):
        assert check_operator("diff", model=tiny_model) == Path(tiny_model).resolve()
    assert check_operator("gp") is None
    assert check_operator("rewrite", api_url="http://127.0.0.1:9") is None


@pytest.mark.parametrize(
    ("missing", "message"),
    [("config.json", "no model folder"), ("model.safetensors", "has no weights"), ("tokenizer.json", "has no tokenizer")],
)
def test_a_model_folder_missing_a_file_is_refused_before_loading_saying_what_is_missing(
    tiny_model, tmp_path, missing, message
):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_model, folder)
    for name in [missing, "vocab.json"] if missing == "tokenizer.json" else [missing]:
        (folder / name).unlink(missing_ok=True)

    with pytest.raises(FileNotFoundError, match=message):
        check_operator("diff", model=folder)


def test_a_bad_server_url_is_refused_by_the_check():
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        check_operator("diff", api_url="ftp://example")
