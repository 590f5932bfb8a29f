"""Length-prefixed JSON frames: the only format that crosses a sandbox boundary.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON (ASCII-escaped, so
lone surrogates in program text survive). JSON cannot carry code, and nothing is ever
unpickled.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 2**20


class FrameError(ConnectionError):
    """The other side closed the pipe, sent garbage, or did not answer in time."""


def encode(message: dict[str, Any]) -> bytes:
    """Return ``message`` as one frame."""
    body = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return _HEADER.pack(len(body)) + body


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Write ``message`` to ``fd`` as one frame, all of it.

    Raises:
        FrameError: If the pipe is closed.
    """
    data = memoryview(encode(message))
    try:
        while data:
            data = data[os.write(fd, data) :]
    except (BrokenPipeError, OSError) as exc:
        raise FrameError(f"cannot write to the other side: {exc}") from exc


def read_frame(
    fd: int, *, timeout_s: float | None = None, max_bytes: int = MAX_FRAME_BYTES
) -> dict[str, Any]:
    """Read one frame from ``fd``.

    Args:
        fd: A readable pipe.
        timeout_s: Give up after this long (``None``: wait for ever).
        max_bytes: Refuse a longer frame.

    Raises:
        FrameError: On end of file, a timeout, an oversized frame or malformed JSON.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
    if size > max_bytes:
        raise FrameError(f"frame of {size} bytes is over the {max_bytes}-byte limit")
    body = _read_exactly(fd, size, deadline)
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise FrameError(f"malformed frame: {exc}") from exc
    if not isinstance(message, dict):
        raise FrameError(f"a frame must hold a JSON object, got {type(message).__name__}")
    return message


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, have = [], 0
    while have < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            poller = select.poll()  # not select.select: a web process may hold fds >= 1024
            poller.register(fd, select.POLLIN)
            if remaining <= 0 or not poller.poll(remaining * 1000):
                raise FrameError("timed out waiting for the other side")
        chunk = os.read(fd, min(size - have, 2**20))
        if not chunk:
            raise FrameError("the other side closed the pipe")
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)
