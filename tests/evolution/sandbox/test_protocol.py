"""The pieces under the pool: frames, the source check, failures, and reading a child's answer
as the untrusted data it is."""

from __future__ import annotations

import ast
import json
import os

import pytest

from evolution.sandbox import ALLOWED_IMPORTS, FailureKind, ProgramFailure, SandboxLimits, source_problems
from evolution.sandbox._frames import FrameError, encode, read_frame, write_frame
from evolution.sandbox._outcome import outcome
from evolution.sodarace import seeds
from evolution.types import WalkerSpec


def problems(text: str, imports=ALLOWED_IMPORTS) -> list[str]:
    return [message for _, message in source_problems(ast.parse(text), imports=imports)]


def reply(result: object = "", **fields: object) -> dict:
    raw = result if isinstance(result, str) else json.dumps(result)
    return {
        "op": "done",
        "reason": "exited",
        "result": raw,
        "output": "",
        "exit_code": None,
        "signal": None,
        "cpu_s": None,
        **fields,
    }


@pytest.mark.parametrize("name", sorted(seeds.SEEDS))
def test_the_source_check_passes_every_seed(name):
    assert problems(seeds.get_seed(name).program) == []


def test_the_source_check_allows_math_random_and_dunder_method_definitions():
    text = "import math\nfrom random import uniform\nclass P:\n    def __init__(self):\n        self.x = math.pi\n"

    assert problems(text) == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("import os", "import of 'os'"),
        ("import math.foo", "import of 'math.foo'"),
        ("from . import x", "relative imports"),
        ("from random import _inst", "private name '_inst'"),
        ("x = ().__class__", "'.__class__'"),
        ("x = a._private", "'._private'"),
        ("x = g.gi_frame", "'.gi_frame'"),
        ("x = np.ctypeslib", "'.ctypeslib'"),
        ("x = __builtins__", "'__builtins__'"),
        ("import math as __builtins__", "'__builtins__'"),
        ("def f(__class__): pass", "'__class__'"),
        ("f(**{}, __x__=1)", "'__x__'"),
        ("try:\n    pass\nexcept E as __e__:\n    pass", "'__e__'"),
        ("x = 'a{0.__class__}b'.format(1)", "strings naming special attributes"),
        ("eval('1')", "'eval'"),
        ("f = exec", "'exec'"),
        ("open('x')", "'open'"),
        ("compile('', '', 'exec')", "'compile'"),
        ("globals()", "'globals'"),
        ("vars()", "'vars'"),
        ("getattr(x, 'y')", "'getattr'"),
        ("breakpoint()", "'breakpoint'"),
    ],
)
def test_the_source_check_refuses(text, words):
    found = problems(text)

    assert found and words in found[0], found


def test_numpy_passes_the_check_only_when_allowed():
    text = "import numpy as np\nx = np.sign(-2)\n"

    assert problems(text) and problems(text, imports=(*ALLOWED_IMPORTS, "numpy")) == []


def test_the_source_check_reports_every_problem_in_line_order():
    found = source_problems(ast.parse("import os\nx = 1\neval('2')\n"), imports=ALLOWED_IMPORTS)

    assert [line for line, _ in found] == [1, 3]


def test_frames_round_trip_through_a_pipe():
    read, write = os.pipe()
    message = {"text": "ünïcode \ud800 surrogate", "n": [1, 2.5, None]}
    write_frame(write, message)

    assert read_frame(read, timeout_s=1) == message
    os.close(read)
    os.close(write)


@pytest.mark.parametrize(
    ("data", "close", "words"),
    [
        (encode({"x": "y" * 100}), False, "over the"),
        (b"", False, "timed out"),
        (b"\x00\x00\x00\x09[1, 2, 3]", False, "JSON object"),
        (b"\x00\x00\x00\x05{nope", False, "malformed"),
        (b"\x00\x00", True, "closed"),
    ],
    ids=["oversized", "silent", "not_an_object", "not_json", "truncated"],
)
def test_a_frame_reader_refuses(data, close, words):
    read, write = os.pipe()
    os.write(write, data)
    if close:
        os.close(write)
    with pytest.raises(FrameError, match=words):
        read_frame(read, timeout_s=0.05, max_bytes=64)
    os.close(read)
    if not close:
        os.close(write)


def test_a_valid_answer_becomes_a_validated_walker():
    data = {"ok": {"joints": [[0, 0], [3, 0]], "muscles": [[0, 1, 2.0, 0.5]], "warnings": []}}

    spec = outcome(reply(data), limits=SandboxLimits())

    assert isinstance(spec, WalkerSpec) and spec.muscles[0].amplitude == 2.0


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("{not json", "crashed"),
        ("[" * 100_000 + "]" * 100_000, "crashed"),
        ({"ok": {"joints": "lots"}}, "invalid_walker"),
        ({"ok": {"joints": [["NaN", 0]], "muscles": []}}, "invalid_walker"),
        ('{"ok": {"joints": [[NaN, 0]], "muscles": []}}', "invalid_walker"),
        ({"ok": {"joints": [[0, 0]] * 500, "muscles": []}}, "invalid_walker"),
        ({"failure": {"kind": "root_shell", "message": "hi"}}, "crashed"),
        ({"failure": {"kind": "timeout"}}, "crashed"),
        (
            {"failure": {"kind": "exception", "message": "x", "line": "7", "detail": {"line": 3, "kind": 1}}},
            "exception",
        ),
        ({"ok": {}, "failure": {}}, "crashed"),
    ],
)
def test_a_forged_or_broken_answer_never_raises(answer, kind):
    result = outcome(reply(answer), limits=SandboxLimits())

    assert isinstance(result, ProgramFailure)
    assert result.kind == kind
    assert result.line is None


def test_exit_statuses_map_to_failures():
    limits = SandboxLimits(cpu_s=2.0)

    assert outcome(reply(signal="SIGXCPU", exit_code=-24), limits=limits).kind == "timeout"
    assert outcome(reply(signal="SIGKILL", exit_code=-9, cpu_s=2.5), limits=limits).kind == "timeout"
    assert outcome(reply(signal="SIGKILL", exit_code=-9, cpu_s=0.1), limits=limits).kind == "crashed"
    assert outcome(reply(exit_code=120), limits=limits).message.startswith("the sandbox could not lock")
    assert outcome(reply(reason="timeout"), limits=limits).kind == "timeout"


def test_a_failure_kind_must_be_known_and_compares_as_a_string():
    failure = ProgramFailure("timeout", "stopped")

    assert failure.kind == FailureKind.TIMEOUT == "timeout"
    assert str(ProgramFailure("syntax", "invalid Python", 3)) == "syntax: invalid Python (line 3)"
    with pytest.raises(ValueError):
        ProgramFailure("escaped", "nope")
