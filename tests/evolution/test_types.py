"""The domain vocabulary: what crosses a process or a database as JSON comes back equal."""

from __future__ import annotations

import json

from evolution.types import Candidate, Result


def through_json(data: dict) -> dict:
    return json.loads(json.dumps(data))


def test_a_candidate_comes_back_equal_from_json() -> None:
    child = Candidate(7, 3, "def make_walker():\n    pass\n", "import math", parent_id=2, operator="diff",
                      diff="@@ -1 +1 @@", message="Changed make_walker function.")  # fmt: skip
    no_program = Candidate(8, 3, None, parent_id=2, operator="diff", failure="no_diff", failure_message="empty")

    assert Candidate.from_dict(through_json(child.to_dict())) == child
    assert Candidate.from_dict(through_json(no_program.to_dict())) == no_program


def test_a_result_comes_back_equal_from_json_with_its_tuples() -> None:
    scored = Result(7, fitness=12.5, descriptor=(1.0, 2.0, 3.5), warnings=("a joint was moved",))
    failed = Result(8, failure="syntax", failure_message="line 2: invalid syntax")

    assert Result.from_dict(through_json(scored.to_dict())) == scored
    assert Result.from_dict(through_json(failed.to_dict())) == failed
