"""The embedded diff model's tools end to end on tiny budgets: train-mutator, finetune-mutator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evolution.cli import main
from evolution.lm._train import TrainConfig
from evolution.lm.mutator import finetune_mutator
from evolution.loop import RunConfig, RunDirectory, run
from evolution.mutation import DEFAULT_DIFF_MODEL, make_operator
from evolution.sodarace import seeds


@pytest.fixture(scope="module")
def gp_run(tmp_path_factory) -> RunDirectory:
    """A short GP run from the Square seed (some children accepted, some not)."""
    directory = RunDirectory(tmp_path_factory.mktemp("gp-run") / "run")
    directory.create(RunConfig(seed="square", evals=65, batch=32, mutation="gp"))
    run(directory, workers=1)
    return directory


def accepted_changed_children(directory: RunDirectory) -> int:
    genomes = [json.loads(line) for line in directory.genomes_file.read_text().splitlines()]
    return sum(g["outcome"] in ("new_cell", "improved") and g["parent_id"] is not None and bool(g["diff"]) for g in genomes)


def test_finetuning_on_accepted_diffs_makes_a_model_a_run_can_select(tiny_model, gp_run, tmp_path):
    out = finetune_mutator(
        model=tiny_model,
        run_dirs=[gp_run.path],
        out=tmp_path / "tuned",
        train_config=TrainConfig(out=tmp_path / "ignored", max_steps=2, batch_size=2, warmup_steps=1, logging_steps=1),
        probe=4,
    )
    assert out == tmp_path / "tuned"
    record = json.loads((out / "training_log.json").read_text())
    assert record["accepted_examples"] == accepted_changed_children(gp_run) > 0
    assert record["finetuned_from"] == str(tiny_model)
    assert record["steps"] == 2 and len(record["loss"]) == 2
    assert record["probe"]["children"] == 4
    assert (out / "loss.png").stat().st_size > 0
    assert not (out / "_trainer").exists()
    card = (out / "README.md").read_text()
    assert f"Fine-tuned from `{tiny_model}`" in card and "## Measured" in card
    operator = make_operator("diff", model=out)
    (child,) = operator.mutate([seeds.get_seed("square").program], rng=np.random.default_rng(0))
    assert child.operator == "diff"


def test_finetuning_a_run_without_accepted_children_is_a_clear_error(tiny_model, tmp_path):
    directory = RunDirectory(tmp_path / "seed-only")
    directory.create(RunConfig(seed="square", evals=1, mutation="gp"))
    run(directory, workers=1)
    with pytest.raises(ValueError, match="no accepted children"):
        finetune_mutator(model=tiny_model, run_dirs=[directory.path], out=tmp_path / "tuned")
    assert not (tmp_path / "tuned").exists()


def test_finetune_mutator_command_writes_a_model_and_says_how_to_use_it(tiny_model, gp_run, tmp_path, capsys):
    out = tmp_path / "tuned"
    rc = main(["finetune-mutator", "--run", str(gp_run.path), "--model", str(tiny_model), "--out", str(out),
               "--steps", "1", "--probe", "2"])
    assert rc == 0
    assert json.loads((out / "training_log.json").read_text())["steps"] == 1
    assert f"run --mutation diff --model {out}" in capsys.readouterr().out


def test_finetune_mutator_command_refuses_a_folder_that_is_not_a_run(tiny_model, tmp_path, capsys):
    rc = main(["finetune-mutator", "--run", str(tmp_path), "--model", str(tiny_model), "--out", str(tmp_path / "m")])
    assert rc == 2
    assert "not a run directory" in capsys.readouterr().out
    assert not (tmp_path / "m").exists()


def test_train_mutator_command_builds_corpus_tokenizer_model_and_card_from_gp_runs(tmp_path, capsys):
    out, work = tmp_path / "model", tmp_path / "work"
    rc = main(["train-mutator", "--out", str(out), "--work", str(work), "--seeds", "square:40,radial:40",
               "--steps", "3", "--layers", "1", "--width", "16", "--probe", "4"])
    assert rc == 0
    assert (work / "runs" / "square" / "genomes.jsonl").is_file() and (work / "runs" / "radial" / "genomes.jsonl").is_file()
    train_lines = (work / "corpus-train.jsonl").read_text().splitlines()
    assert train_lines and (work / "corpus-heldout.jsonl").is_file()
    record = json.loads((out / "training_log.json").read_text())
    assert record["steps"] == 3
    assert record["corpus"]["examples"] == len(train_lines)
    assert record["probe"]["children"] == 4
    assert 0.0 <= record["probe"]["valid_rate"] <= record["probe"]["applied_rate"] <= 1.0
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "loss.png"} <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    assert "genetic-programming runs of the seeds square, radial;" in card
    assert "probe: 4 diffs" in capsys.readouterr().out
    assert make_operator("diff", model=out).name == "diff"

    more = tmp_path / "model-2"
    assert main(["train-mutator", "--out", str(more), "--work", str(work), "--seeds", "square:40,radial:40",
                 "--steps", "2", "--probe", "0", "--continue-from", str(out)]) == 0
    continued = json.loads((more / "training_log.json").read_text())
    assert continued["phases"] == [{k: record[k] for k in ("steps", "epochs", "wall_s", "final_loss")}]
    assert continued["steps"] == 2 and continued["parameters"] == record["parameters"]
    assert "Training phase 1: 3 steps" in (more / "README.md").read_text()

    # a copied corpus trains elsewhere without the runs: only the three corpus files travel
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in ("corpus-train.jsonl", "corpus-heldout.jsonl", "corpus.json"):
        (copied / name).write_bytes((work / name).read_bytes())
    again = tmp_path / "model-3"
    assert main(["train-mutator", "--out", str(again), "--work", str(copied), "--reuse-corpus", "--steps", "2",
                 "--batch", "3", "--lr", "0.002", "--layers", "1", "--width", "16", "--probe", "0"]) == 0
    reused = json.loads((again / "training_log.json").read_text())
    assert reused["corpus"] == record["corpus"] and not (copied / "runs").exists()
    assert reused["config"]["batch_size"] == 3 and reused["config"]["learning_rate"] == 0.002


def test_train_mutator_on_a_folder_without_a_prepared_corpus_says_how_to_make_one(tmp_path, capsys):
    rc = main(["train-mutator", "--out", str(tmp_path / "m"), "--work", str(tmp_path), "--reuse-corpus", "--probe", "0"])
    assert rc == 2
    assert "run train-mutator once without --reuse-corpus" in capsys.readouterr().out
    assert not (tmp_path / "m").exists()


def test_train_mutator_refuses_an_unknown_seed_before_doing_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-mutator", "--out", str(tmp_path / "m"), "--work", str(tmp_path / "w"), "--seeds", "nope:10"])
    assert exit_info.value.code == 2
    assert "write SEED:EVALS with a shipped seed" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_a_cppn_runs_corpus_carries_the_preamble_its_programs_need_and_the_probe_runs_them_after_it(tmp_path):
    from evolution.lm._corpus import build_corpus, read_corpus, write_corpus
    from evolution.lm.mutator import probe_mutator
    from evolution.sandbox import ProgramFailure, evaluate_program
    from evolution.types import Candidate

    directory = RunDirectory(tmp_path / "cppn")
    directory.create(RunConfig(seed="cppn_fixed", evals=40, batch=20, mutation="gp"))
    run(directory, workers=1)
    examples = build_corpus([directory.path])
    preamble = seeds.get_seed("cppn_fixed").preamble
    assert examples and preamble and all(e.preamble == preamble for e in examples)
    write_corpus(examples, tmp_path / "corpus.jsonl")
    assert read_corpus(tmp_path / "corpus.jsonl") == examples
    parent = examples[0].parent
    assert isinstance(evaluate_program(parent), ProgramFailure)  # query_cppn comes from the preamble
    assert not isinstance(evaluate_program(Candidate(0, 0, parent, preamble).program), ProgramFailure)

    # the embedded model's children of these parents are judged after the preamble, as in a run
    probe = probe_mutator(DEFAULT_DIFF_MODEL, examples, n=8, batch=8)
    assert probe["children"] == 8 and probe["batch"] == 8
    assert probe["failures"].get("exception", 0) <= 2, probe


def test_a_seed_listed_twice_gets_a_second_corpus_run_of_its_own(tmp_path):
    from evolution.lm.mutator import MutatorConfig, corpus_runs, run_seed_name

    config = MutatorConfig(out=tmp_path / "m", work=tmp_path, seeds=(("square", 20), ("square", 20)))
    dirs = corpus_runs(config, workers=1)
    assert [d.name for d in dirs] == ["square", "square-2"]
    rng = [json.loads((d / "config.json").read_text())["rng_seed"] for d in dirs]
    assert rng[0] != rng[1]
    assert [run_seed_name(d) for d in dirs] == ["square", "square"] and run_seed_name("cppn_fixed") == "cppn_fixed"
