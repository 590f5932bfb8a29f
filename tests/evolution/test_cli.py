"""The headless command line, ``python -m evolution``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evolution.cli import main
from evolution.mutation import FAILURE_KINDS, _factory
from evolution.sodarace import Trace
from tests.evolution.mutation.tiny_model import build_tiny_model


def test_simulate_prints_fitness_and_descriptors_for_a_seed(capsys):
    assert main(["simulate", "--seed", "square", "--terrain", "flat", "--seconds", "2"]) == 0
    out = capsys.readouterr().out
    assert "square on flat: fitness" in out and "height 10.000  width 10.000" in out


def test_simulate_as_json_reports_every_figure_and_writes_a_trace(capsys, tmp_path):
    trace = tmp_path / "square.srt"
    assert main(["simulate", "--seed", "wheel", "--seconds", "2", "--json", "--trace", str(trace)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["walker"] == "wheel" and report["fitness"] > 0
    assert {"height", "width", "mass", "displacement", "joints", "muscles"} <= set(report)
    assert Trace.from_bytes(trace.read_bytes()).frames.shape[1] == report["joints"]


def test_simulate_runs_a_program_file(capsys, tmp_path):
    program = tmp_path / "tri.py"
    program.write_text(
        "def make_walker():\n"
        "    wc = walker_creator()\n"
        "    a, b, c = wc.add_joint(0, 0), wc.add_joint(4, 0), wc.add_joint(2, 3)\n"
        "    wc.add_muscle(a, b); wc.add_muscle(b, c, 4.0, 0.5); wc.add_muscle(c, a, 4.0, 0.0)\n"
        "    return wc.get_walker()\n"
    )
    assert main(["simulate", "--program", str(program), "--seconds", "1"]) == 0
    assert "3 joints, 3 muscles (2 active)" in capsys.readouterr().out


def test_a_program_that_builds_no_walker_is_a_clear_error_not_a_traceback(capsys, tmp_path):
    program = tmp_path / "bad.py"
    program.write_text("def make_walker():\n    return None\n")
    assert main(["simulate", "--program", str(program)]) == 2
    assert "does not build a valid walker" in capsys.readouterr().out


def test_an_unknown_seed_names_the_valid_ones(capsys):
    assert main(["simulate", "--seed", "triangle"]) == 2
    assert "choose one of square" in capsys.readouterr().out


def test_seeds_lists_every_seed_with_its_fitness(capsys):
    assert main(["seeds", "--seconds", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["walker"] for r in rows] == ["square", "radial", "cppn_fixed", "cppn_mutable", "wheel", "galloper"]
    assert all(r["fitness"] >= 0 for r in rows)


def test_python_dash_m_evolution_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "evolution", "simulate", "--seed", "radial", "--seconds", "1"],
        capture_output=True, text=True, check=True,
    )
    assert "radial on flat: fitness" in out.stdout


# --- language-model mutation: run --mutation diff|rewrite, serve-model ------------------------

@pytest.fixture(scope="module")
def quick_model(tmp_path_factory):
    """A tiny random GPT-2 whose samples end after a few dozen tokens."""
    return build_tiny_model(tmp_path_factory.mktemp("cli-gpt2"), eos_bias=5.0)


def test_run_with_the_diff_operator_and_a_model_folder_completes_and_records_every_failure(quick_model, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--mutation", "diff", "--model", str(quick_model), "--evals", "40", "--batch", "8",
            "--seconds", "1", "--workers", "0", "--quiet", "--out", str(out)]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["mutation"] == "diff" and config["model"] == str(quick_model.resolve()) and config["api_url"] is None
    rows = [json.loads(line) for line in (out / "genomes.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and {r["operator"] for r in rows[1:]} == {"diff"}
    kinds = {r["failure"] for r in rows[1:] if r["failure"]}
    assert kinds and kinds & set(FAILURE_KINDS)  # a random model's diffs fail, and the kind says how
    assert all(r["message"] for r in rows[1:])  # the commit message of each diff
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["evaluations"] == 40 and sum(m["failures"].get("generation_error", 0) for m in metrics) == 0


def test_run_with_the_default_diff_model_missing_says_how_to_build_it_and_leaves_no_directory(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(_factory, "DEFAULT_DIFF_MODEL", tmp_path / "diff-sodarace")
    assert main(["run", "--mutation", "diff", "--evals", "10", "--out", str(tmp_path / "run")]) == 2
    assert "make train-mutator" in capsys.readouterr().out
    assert not (tmp_path / "run").exists()


def test_run_refuses_model_options_for_gp(tmp_path, capsys):
    assert main(["run", "--mutation", "gp", "--api-url", "http://127.0.0.1:1", "--out", str(tmp_path / "run")]) == 2
    assert "only apply to --mutation diff or rewrite" in capsys.readouterr().out


def test_serve_model_without_a_model_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["serve-model", "--model", str(tmp_path / "none"), "--port", "0"]) == 2
    assert "no model folder" in capsys.readouterr().out


def test_run_with_the_rewrite_operator_and_a_model_folder_completes(quick_model, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--mutation", "rewrite", "--model", str(quick_model), "--evals", "17", "--batch", "8",
            "--seconds", "1", "--workers", "0", "--quiet", "--out", str(out)]
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "genomes.jsonl").read_text().splitlines()]
    assert len(rows) == 17 and {r["operator"] for r in rows[1:]} == {"rewrite"}
