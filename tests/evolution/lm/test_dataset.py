"""Stage 2's dataset: thresholds relative to each niche's best, dedup, held-out niches."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from evolution.cli import main
from evolution.lm.dataset import build_dataset, heldout_cell, read_dataset, write_dataset
from evolution.loop import RunConfig


def fake_run(path, genomes, *, dims=(12, 12, 12)):
    """A run directory with the given genome records (only the fields the dataset reads)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(asdict(RunConfig(dims=dims))))
    with (path / "genomes.jsonl").open("w") as f:
        for i, (text, cell, fitness) in enumerate(genomes):
            f.write(json.dumps({"id": i, "text": text, "cell": cell, "fitness": fitness}) + "\n")
    return path


def test_programs_are_kept_relative_to_the_best_of_their_own_niche(tmp_path):
    run = fake_run(tmp_path / "r", [
        ("a", [0, 0, 0], 10.0), ("b", [0, 0, 0], 6.0), ("c", [0, 0, 0], 4.0),  # niche best 10: keep >= 5
        ("d", [1, 0, 0], 1.0), ("e", [1, 0, 0], 0.4),  # niche best 1: keep >= 0.5
    ])
    kept = {r.text: r for r in build_dataset([run], threshold=0.5, heldout=0.0)}
    assert set(kept) == {"a", "b", "d"}
    assert kept["b"].best_in_cell == 10.0 and kept["d"].best_in_cell == 1.0
    assert {r.text for r in build_dataset([run], threshold=0.8, heldout=0.0)} == {"a", "d"}
    assert len(build_dataset([run], threshold=0.0, heldout=0.0)) == 5


def test_failed_genomes_are_never_kept(tmp_path):
    run = fake_run(tmp_path / "r", [("ok", [0, 0, 0], 1.0), ("broken", None, None), (None, None, None)])
    assert [r.text for r in build_dataset([run], threshold=0.0, heldout=0.0)] == ["ok"]


def test_duplicate_programs_across_runs_keep_only_the_fittest_copy(tmp_path):
    one = fake_run(tmp_path / "one", [("same\n", [0, 0, 0], 3.0)])
    two = fake_run(tmp_path / "two", [("same", [0, 0, 1], 5.0), ("other", [0, 0, 1], 4.0)])
    records = build_dataset([one, two], threshold=0.0, heldout=0.0)
    same = [r for r in records if r.text.strip() == "same"]
    assert len(same) == 1 and same[0].fitness == 5.0 and same[0].run == str(two)
    assert len(records) == 2


def test_whole_niches_are_held_out_and_the_split_is_stable(tmp_path):
    genomes = [(f"p{i}", [i % 12, i // 12 % 12, 0], 1.0) for i in range(144)]
    run = fake_run(tmp_path / "r", genomes)
    records = build_dataset([run], threshold=0.0, heldout=0.25)
    held_cells = {r.cell for r in records if r.split == "heldout"}
    train_cells = {r.cell for r in records if r.split == "train"}
    assert held_cells and train_cells and not held_cells & train_cells
    assert 0.1 < len(held_cells) / 144 < 0.4
    assert all(heldout_cell(c, 0.25) for c in held_cells)
    assert [r.split for r in build_dataset([run], threshold=0.0, heldout=0.25)] == [r.split for r in records]


def test_runs_on_different_grids_are_refused(tmp_path):
    one = fake_run(tmp_path / "one", [("a", [0, 0, 0], 1.0)])
    two = fake_run(tmp_path / "two", [("b", [0, 0], 1.0)], dims=(6, 6, 6))
    with pytest.raises(ValueError, match="different archive grids"):
        build_dataset([one, two])


def test_a_threshold_outside_zero_to_one_is_refused(tmp_path):
    run = fake_run(tmp_path / "r", [("a", [0, 0, 0], 1.0)])
    with pytest.raises(ValueError, match="threshold must be in"):
        build_dataset([run], threshold=1.5)


def test_a_written_dataset_reads_back_equal(tmp_path):
    run = fake_run(tmp_path / "r", [("a", [0, 1, 2], 1.0), ("b", [3, 4, 5], 2.0)])
    records = build_dataset([run], threshold=0.0, heldout=0.5)
    assert read_dataset(write_dataset(records, tmp_path / "d" / "set.jsonl")) == records


def test_dataset_command_writes_the_file_and_counts_it(tmp_path, capsys):
    run = fake_run(tmp_path / "r", [("a", [0, 0, 0], 10.0), ("b", [0, 0, 0], 1.0)])
    assert main(["dataset", "--run", str(run), "--threshold", "0.5", "--heldout", "0", "--out", str(tmp_path / "d.jsonl")]) == 0
    assert [r.text for r in read_dataset(tmp_path / "d.jsonl")] == ["a"]
    assert "1 programs from 1 niches" in capsys.readouterr().out


def test_dataset_command_on_a_folder_that_is_not_a_run_says_so(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text(json.dumps(asdict(RunConfig())))
    assert main(["dataset", "--run", str(tmp_path / "x"), "--out", str(tmp_path / "d.jsonl")]) == 2
    assert "not a run directory" in capsys.readouterr().out
