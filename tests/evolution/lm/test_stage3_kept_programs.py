"""Stage 3's evaluation keeps the farthest-walking programs of each source when asked (for replays)."""

from __future__ import annotations

import pytest

from evolution.lm.dataset import ProgramRecord, write_dataset
from evolution.lm.stage3 import Stage3Config, evaluate_stage3, train_stage3
from evolution.sodarace import DEFAULT_SETTINGS, build_walker, seeds, simulate
from tests.evolution.lm.test_stage3 import one_torch_thread as one_torch_thread  # autouse: one torch thread

SHORT = DEFAULT_SETTINGS.with_(sim_seconds=1.0)


@pytest.fixture
def inventor(tiny_model, tmp_path):
    config = Stage3Config(out=tmp_path / "inventor", model=tiny_model, terrains=("tunnel",), iterations=1,
                          time_limit_s=None, batch_size=2, minibatch_size=2, max_new_tokens=8, sim_seconds=1.0, workers=0)
    return train_stage3(config)


def test_each_source_keeps_its_farthest_distinct_walkers_first(inventor, tmp_path):
    texts = [seeds.get_seed(name).program for name in seeds.SEEDS][:3]
    records = [ProgramRecord(t, (i, 0, 0), 1.0, 1.0, "r", i) for i, t in enumerate(texts + texts[:1])]  # one twice
    dataset = write_dataset(records, tmp_path / "d.jsonl")
    evaluation = evaluate_stage3(inventor, samples=4, conditional=2, dataset=dataset, workers=0, keep=2)
    row = evaluation["terrains"]["tunnel"]
    walked = sorted(((simulate(build_walker(t), "tunnel", SHORT).fitness, t) for t in texts), reverse=True)
    kept = row["dataset"]["programs"]
    assert [p["text"] for p in kept] == [t for _, t in walked[:2]]
    assert [p["distance"] for p in kept] == pytest.approx([d for d, _ in walked[:2]])
    assert row["conditional"]["programs"] == [] and row["stage2"]["programs"] == []  # a random tiny model writes no walker


def test_no_programs_are_kept_unless_asked(inventor, tmp_path):
    square = seeds.get_seed("square").program
    dataset = write_dataset([ProgramRecord(square, (0, 0, 0), 1.0, 1.0, "r", 1)], tmp_path / "d.jsonl")
    row = evaluate_stage3(inventor, samples=1, conditional=1, dataset=dataset, workers=0)["terrains"]["tunnel"]
    assert all("programs" not in row[source] for source in ("conditional", "stage2", "dataset"))
