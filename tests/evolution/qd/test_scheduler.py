"""The ask/tell scheduler: order, seed first, uniform selection, state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evolution.qd import GridArchive, Scheduler, SchedulerOrderError, UniformEmitter
from evolution.types import Outcome, Result


class AppendOperator:
    """A stand-in operator: appends a random digit, so children are distinct and reproducible."""

    name = "append"

    def mutate(self, parents, *, rng):
        from evolution.mutation import Child, unified_diff

        out = []
        for p in parents:
            child = p + str(int(rng.integers(0, 10)))
            out.append(Child(parent=p, text=child, diff=unified_diff(p, child), operator=self.name, message="append"))
        return out


def fake_results(candidates):
    """Score a text by its length and digits: deterministic, spreads over cells."""
    results = []
    for c in candidates:
        digits = [int(ch) for ch in c.text if ch.isdigit()]
        results.append(Result(c.id, fitness=float(sum(digits)), descriptor=(len(c.text) % 10, (sum(digits) % 7) / 7)))
    return results


def make(seed_text="s", rng_seed=1) -> Scheduler:
    archive = GridArchive(dims=(10, 7), ranges=((0.0, 10.0), (0.0, 1.0)), names=("len", "digits"))
    return Scheduler(archive, UniformEmitter(), AppendOperator(), seed_text=seed_text, rng_seed=rng_seed)


def test_the_first_ask_is_the_seed_alone():
    s = make()
    (seed,) = s.ask(8)
    assert (seed.id, seed.batch, seed.text, seed.operator, seed.parent_id) == (0, 0, "s", "seed", None)


def test_asking_twice_without_telling_is_refused():
    s = make()
    s.ask(4)
    with pytest.raises(SchedulerOrderError, match="tell"):
        s.ask(4)


def test_telling_without_asking_is_refused():
    with pytest.raises(SchedulerOrderError, match="ask"):
        make().tell([Result(0)])


def test_results_must_match_the_asked_candidates_in_order():
    s = make()
    s.tell(fake_results(s.ask(1)))
    batch = s.ask(3)
    with pytest.raises(ValueError, match="one result per asked candidate"):
        s.tell(list(reversed(fake_results(batch))))


def test_children_name_their_parent_and_carry_the_diff():
    s = make()
    s.tell(fake_results(s.ask(1)))
    children = s.ask(5)
    assert [c.id for c in children] == [1, 2, 3, 4, 5]
    assert all(c.parent_id == 0 and c.batch == 1 and c.diff.startswith("---") for c in children)


def test_outcomes_and_metrics_describe_the_batch():
    s = make()
    report = s.tell(fake_results(s.ask(1)))
    assert report.outcomes == (Outcome.NEW_CELL,)
    batch = s.ask(20)
    results = fake_results(batch)
    results[0] = Result(results[0].id, failure="exception", failure_message="boom")
    report = s.tell(results)
    m = report.metrics
    assert m.batch == 1 and m.evaluations == 21 and m.batch_size == 20
    assert m.valid == 19 and m.valid_rate == pytest.approx(0.95)
    assert m.failures == {"exception": 1} and m.outcomes["failed"] == 1
    assert m.niches_filled == len(s.archive) and m.qd_score == s.archive.qd_score
    assert m.operators["append"]["children"] == 20 and m.operators["append"]["valid"] == 19


def test_parents_are_drawn_uniformly_over_occupied_cells():
    archive = GridArchive(dims=(4,), ranges=((0.0, 4.0),), names=("x",))
    for i in range(4):
        archive.add(i, 1.0 + i, (i + 0.5,), f"t{i}")
    picks = UniformEmitter().select(archive, 8000, rng=np.random.default_rng(0))
    counts = np.bincount([p.genome_id for p in picks], minlength=4)
    assert counts.min() > 1800 and counts.max() < 2200


def test_a_failed_seed_leaves_nothing_to_mutate_and_says_so():
    s = make()
    s.ask(1)
    s.tell([Result(0, failure="syntax", failure_message="bad")])
    with pytest.raises(RuntimeError, match="seed program failed"):
        s.ask(4)


def test_a_scheduler_saved_between_batches_resumes_identically():
    straight, resumed = make(), make()
    for _ in range(3):
        straight.tell(fake_results(straight.ask(6)))
        resumed.tell(fake_results(resumed.ask(6)))
    resumed = Scheduler.from_dict(json.loads(json.dumps(resumed.to_dict())), emitter=UniformEmitter(), operator=AppendOperator())
    for _ in range(3):
        straight.tell(fake_results(straight.ask(6)))
        resumed.tell(fake_results(resumed.ask(6)))
    assert list(resumed.archive.elites()) == list(straight.archive.elites())
    assert resumed.next_id == straight.next_id == 1 + 5 * 6  # the seed, then five batches


def test_a_batch_asked_before_saving_is_told_to_the_restored_scheduler():
    straight, resumed = make(), make()
    for _ in range(2):
        straight.tell(fake_results(straight.ask(6)))
        resumed.tell(fake_results(resumed.ask(6)))
    asked = resumed.ask(6)
    # told where no operator (no model) is loaded, as a `sim` worker does
    resumed = Scheduler.from_dict(json.loads(json.dumps(resumed.to_dict())), emitter=UniformEmitter(), operator=None)

    assert resumed.pending
    with pytest.raises(SchedulerOrderError, match="before tell"):
        resumed.ask(6)
    report = resumed.tell(fake_results(asked))
    expected = straight.tell(fake_results(straight.ask(6)))
    assert report.candidates == expected.candidates and report.outcomes == expected.outcomes
    assert resumed.to_dict() == straight.to_dict()


def test_a_scheduler_restored_without_an_operator_refuses_to_ask_and_says_why():
    s = make()
    s.tell(fake_results(s.ask(1)))
    told_only = Scheduler.from_dict(s.to_dict(), emitter=UniformEmitter(), operator=None)

    with pytest.raises(RuntimeError, match="without a mutation operator"):
        told_only.ask(4)
