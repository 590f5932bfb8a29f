"""The headless stage-1 loop: files, resume equality, the run and report commands."""

from __future__ import annotations

import json

import pytest

from evolution.cli import main
from evolution.loop import RunConfig, RunDirectory, run

SMALL = dict(seed="square", evals=97, batch=24, sim_seconds=2.0, rng_seed=3, snapshot_every=2)


def genomes(directory: RunDirectory) -> list[dict]:
    return [json.loads(line) for line in directory.genomes_file.read_text().splitlines()]


def test_a_run_writes_every_genome_metrics_and_snapshots(tmp_path):
    d = RunDirectory(tmp_path / "run")
    d.create(RunConfig(**SMALL))
    scheduler = run(d, workers=0)
    rows = genomes(d)
    assert [r["id"] for r in rows] == list(range(97))
    assert rows[0]["operator"] == "seed" and rows[0]["outcome"] == "new_cell"
    child = next(r for r in rows[1:] if r["failure"] is None)
    assert child["parent_id"] is not None and child["diff"].startswith("---") and child["text"]
    assert {"fitness", "descriptor", "cell", "outcome", "failure_message"} <= set(child)
    metrics = d.metrics()
    assert [m["batch"] for m in metrics] == [0, 1, 2, 3, 4]  # the seed, then 4 batches of 24
    assert metrics[-1]["evaluations"] == 97 and metrics[-1]["niches_filled"] == len(scheduler.archive)
    assert sorted(p.name for p in d.archive_dir.iterdir()) == ["batch-00002.json", "batch-00004.json", "batch-00005.json"]


def test_a_run_stopped_after_some_batches_and_resumed_ends_with_the_same_archive(tmp_path):
    straight = RunDirectory(tmp_path / "straight")
    straight.create(RunConfig(**SMALL))
    run(straight, workers=0)

    halted = RunDirectory(tmp_path / "halted")
    halted.create(RunConfig(**SMALL))
    calls = 0

    def stop_after_three(progress):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    run(halted, workers=0, on_batch=stop_after_three)
    assert halted.load_state()["batch"] == 3
    run(halted, workers=0)
    assert json.loads(halted.state_file.read_text())["archive"] == json.loads(straight.state_file.read_text())["archive"]
    assert genomes(halted) == genomes(straight)


def test_lines_of_a_batch_that_never_committed_are_dropped_on_resume(tmp_path):
    d = RunDirectory(tmp_path / "run")
    d.create(RunConfig(**SMALL))
    run(d, workers=0)
    state = json.loads(d.state_file.read_text())
    d.state_file.unlink()  # as if the machine died before the first commit point
    with d.genomes_file.open("a") as f:
        f.write(json.dumps({"batch": 99}) + "\n")
    run(d, workers=0)
    assert json.loads(d.state_file.read_text())["archive"] == state["archive"]
    assert len(genomes(d)) == 97


def test_two_workers_give_the_same_run_as_one_process(tmp_path):
    a, b = RunDirectory(tmp_path / "a"), RunDirectory(tmp_path / "b")
    for d in (a, b):
        d.create(RunConfig(**(SMALL | {"evals": 49})))
    run(a, workers=0)
    run(b, workers=2)
    assert genomes(a) == genomes(b)


def test_the_run_and_report_commands_work_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["run", "--seed", "radial", "--evals", "49", "--batch", "24", "--seconds", "1",
                 "--workers", "0", "--out", str(out), "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "niches filled" in text and (out / "archive.png").stat().st_size > 5000
    assert (out / "curves.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 49 and summary["seed"] == "radial"


def test_starting_a_run_in_a_used_directory_is_refused_with_how_to_resume(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["run", "--evals", "1", "--workers", "0", "--seconds", "1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().out


def test_an_unknown_mutation_operator_is_refused_with_the_known_ones(tmp_path, capsys):
    with pytest.raises(ValueError, match="gp"):
        from evolution.loop import make_operator

        make_operator("llm-magic")


def test_a_failure_names_the_line_of_the_mutable_text_not_of_the_preamble():
    from evolution.evaluate import EvalConfig, evaluate_candidates
    from evolution.sodarace import seeds
    from evolution.types import Candidate

    seed = seeds.get_seed("cppn_fixed")
    text = "def make_walker():\n    wc = walker_creator()\n    raise ValueError('nope')\n"
    (result,) = evaluate_candidates([Candidate(1, 1, text, seed.preamble)], EvalConfig())
    assert result.failure == "exception"
    assert result.failure_message.startswith("line 3: ") and "nope" in result.failure_message
