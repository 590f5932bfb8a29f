"""The headless command line, ``python -m evolution``."""

from __future__ import annotations

import json
import subprocess
import sys

from evolution.cli import main
from evolution.sodarace import Trace


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
