"""What runs inside a forked child: lock down, run ``make_walker()``, send back plain data.

The reply is one JSON object on the result pipe (``{"ok": ...}`` or ``{"failure": ...}``,
see ``_program``); then the child closes its pipes and ``_exit``s.
"""

from __future__ import annotations

import io
import json
import os
import sys
from types import CodeType
from typing import Any, NoReturn

from evolution.sandbox._failure import FailureKind
from evolution.sandbox._lockdown import RESULT_FD, Lockdown
from evolution.sandbox._program import failure, run_compiled, text_of

EXIT_SETUP_FAILED = 120
"""The child could not apply an active layer, so it ran nothing."""
EXIT_INTERNAL = 121
"""The child failed before it could reply (a bug in the sandbox, not the program)."""
_MEMORY_REPLY = json.dumps(failure(FailureKind.MEMORY, "the program ran out of memory")).encode()


def child_main(
    *,
    lockdown: Lockdown,
    code: CodeType,
    request: dict[str, Any],
    out_fd: int,
    result_fd: int,
    baseline_vm: int,
) -> NoReturn:
    """Lock down, run ``code``, write the reply and exit. Never returns."""
    limits = request["limits"]
    try:
        lockdown.apply(out_fd=out_fd, result_fd=result_fd, limits=limits, baseline_vm=baseline_vm)
        sys.stdout = sys.stderr = _Output(1)
    except BaseException:  # noqa: BLE001 - any failure here means: do not run the program
        os._exit(EXIT_SETUP_FAILED)
    try:
        try:
            reply = json.dumps(
                run_compiled(code, seed=int(request["seed"]), limits=limits),
                ensure_ascii=True,
                allow_nan=False,
            ).encode()
        except (TypeError, ValueError) as exc:
            message = f"the walker holds data that is not plain numbers: {text_of(exc)}"
            reply = json.dumps(
                failure(FailureKind.INVALID_WALKER, message, detail={"rule": "malformed"})
            ).encode()
        except MemoryError:
            reply = _MEMORY_REPLY
        _write_all(RESULT_FD, reply)
        os.closerange(1, RESULT_FD + 1)  # end of output and result: the server can answer now
    except BaseException as exc:  # noqa: BLE001 - the parent reports the missing reply as a crash
        try:
            _write_all(2, f"\nsandbox: no answer: {text_of(repr(exc), 500)}\n".encode())
        finally:
            os._exit(EXIT_INTERNAL)
    os._exit(0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Output(io.TextIOBase):
    """The program's ``sys.stdout``/``sys.stderr``: unbuffered, chunked writes to fd 1.

    Chunked so that ``print("x" * 10**8)`` never holds a second 100 MB copy: the server
    stops reading (and kills the program) as soon as the output passes its limit.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        for start in range(0, len(s), 1 << 16):
            _write_all(self._fd, s[start : start + (1 << 16)].encode("utf-8", "backslashreplace"))
        return len(s)
