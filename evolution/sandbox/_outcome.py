"""Turn the fork server's plain-data reply into a ``WalkerSpec`` or a ``ProgramFailure``.

Whatever the child sent is untrusted: it is parsed as JSON (never unpickled), every field is
checked, and a walker is rebuilt through ``spec_from_dict``, which re-validates it completely.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from evolution.sandbox._child import EXIT_INTERNAL, EXIT_SETUP_FAILED
from evolution.sandbox._failure import FailureKind, ProgramFailure
from evolution.sandbox._limits import SandboxLimits
from evolution.sodarace._limits import InvalidWalker
from evolution.sodarace._walker import spec_from_dict
from evolution.types import WalkerSpec

_KINDS = frozenset(kind.value for kind in FailureKind)


@dataclass(frozen=True, slots=True)
class ProgramRun:
    """Everything one sandboxed run produced.

    Attributes:
        result: The validated walker, or why there is none.
        output: What the program printed (stdout and stderr, capped, UTF-8).
        output_bytes: How many bytes it printed in all (beyond the cap too).
        wall_s: Seconds from handing the program to its child to the answer, as the fork
            server measured.
    """

    result: WalkerSpec | ProgramFailure
    output: str = ""
    output_bytes: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the program produced a valid walker."""
        return isinstance(self.result, WalkerSpec)


def outcome(reply: dict[str, Any], *, limits: SandboxLimits) -> WalkerSpec | ProgramFailure:
    """Map the server's reply for one program to its result.

    Args:
        reply: The server's ``{"op": "done", ...}`` message.
        limits: The limits the program ran under (for the messages).
    """
    reason = reply.get("reason")
    if reason == "timeout":
        return _fail(
            FailureKind.TIMEOUT,
            f"the program was still running after {limits.timeout_s:g} s and was stopped",
            reply,
            detail={"limit_s": limits.timeout_s},
        )
    if reason == "output_too_large":
        return _fail(
            FailureKind.OUTPUT_TOO_LARGE,
            f"the program printed more than {_size(limits.max_output_bytes)} and was stopped",
            reply,
            detail={"stream": "output", "limit_bytes": limits.max_output_bytes},
        )
    if reason == "result_too_large":
        return _fail(
            FailureKind.OUTPUT_TOO_LARGE,
            f"the program's walker was more than {_size(limits.max_result_bytes)} of data",
            reply,
            detail={"stream": "result", "limit_bytes": limits.max_result_bytes},
        )
    raw = reply.get("result") or ""
    if raw:
        return _from_child(raw, reply, limits=limits)
    return _from_exit(reply, limits=limits)


def _from_child(raw: str, reply: dict[str, Any], *, limits: SandboxLimits) -> WalkerSpec | ProgramFailure:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or len(data) != 1:
        return _fail(FailureKind.CRASHED, "the program's process died while sending its walker", reply)
    if "ok" in data:
        try:
            return spec_from_dict(data["ok"], limits=limits.walker)
        except InvalidWalker as exc:
            return _fail(
                FailureKind.INVALID_WALKER,
                exc.message,
                reply,
                detail={"rule": exc.rule, "values": _plain_values(exc.values)},
            )
    failure = data.get("failure")
    if (
        not isinstance(failure, dict)
        or failure.get("kind") not in _KINDS
        or not isinstance(failure.get("message"), str)
    ):
        return _fail(
            FailureKind.CRASHED, "the program's process sent back something that is not a result", reply
        )
    line = failure.get("line")
    line = line if type(line) is int and line > 0 else None
    detail = failure.get("detail") if isinstance(failure.get("detail"), dict) else {}
    return _fail(FailureKind(failure["kind"]), failure["message"][:2000], reply, line=line, detail=detail)


def _from_exit(reply: dict[str, Any], *, limits: SandboxLimits) -> ProgramFailure:
    code, sig, cpu_s = reply.get("exit_code"), reply.get("signal"), float(reply.get("cpu_s") or 0.0)
    if sig == "SIGXCPU" or (sig == "SIGKILL" and cpu_s >= limits.cpu_s):
        return _fail(
            FailureKind.TIMEOUT,
            f"the program used more than {limits.cpu_s:g} s of CPU time and was stopped",
            reply,
            detail={"limit_cpu_s": limits.cpu_s},
        )
    if code == EXIT_SETUP_FAILED:
        return _fail(
            FailureKind.CRASHED,
            "the sandbox could not lock the program's process down, so it ran nothing",
            reply,
        )
    if code == EXIT_INTERNAL:
        return _fail(FailureKind.CRASHED, "the program's process failed before it could answer", reply)
    if sig:
        return _fail(
            FailureKind.CRASHED, f"the program's process was killed by {sig}", reply, detail={"signal": sig}
        )
    return _fail(
        FailureKind.CRASHED,
        f"the program's process exited with status {code} without returning a walker",
        reply,
        detail={"exit_code": code},
    )


def _fail(
    kind: FailureKind,
    message: str,
    reply: dict[str, Any],
    *,
    line: int | None = None,
    detail: dict[str, Any] | None = None,
) -> ProgramFailure:
    detail = dict(detail or {})
    if reply.get("output"):
        detail.setdefault("output", reply["output"])
    # a lone surrogate from the program's text would not survive a database or a web page
    message = message.encode("utf-8", "replace").decode("utf-8")
    return ProgramFailure(kind.value, message, line, detail)


def _plain_values(values: dict[str, Any]) -> dict[str, Any]:
    plain = {}
    for key, value in values.items():
        ok = (
            value is None
            or type(value) in (bool, int, str)
            or (type(value) is float and math.isfinite(value))
        )
        plain[str(key)] = value if ok else repr(value)[:200]
    return plain


def _size(n: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
