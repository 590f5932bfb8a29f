"""A minimal blocking WebSocket client (stdlib only) for tests and benchmarks.

It speaks just enough RFC 6455 to follow a run's event stream through a real server: the
handshake, unfragmented text frames from the server, pings, close, and masked text frames
to the server. Not for production use.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
from typing import Any

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


class WebSocketClosed(ConnectionError):
    """The server closed the connection (``code`` says why, e.g. 4401: not logged in)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"the server closed the WebSocket (code {code})")
        self.code = code


class WebSocket:
    """One connection: ``WebSocket(host, port, path, headers={...})``, then ``recv_json()``.

    Raises:
        ConnectionError: If the server refuses the upgrade (the message has its answer).
    """

    def __init__(self, host: str, port: int, path: str, *, headers: dict[str, str] | None = None,
                 timeout: float = 10.0) -> None:  # fmt: skip
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
            "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]  # fmt: skip
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"the server closed the connection during the handshake: {answer!r}")
            answer += chunk
        head, self._buffer = answer.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            self.sock.close()
            raise ConnectionError(f"the server refused the WebSocket: {head.decode(errors='replace')}")

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WebSocketClosed(None)
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def recv(self) -> str:
        """The next text message (answers pings; raises ``WebSocketClosed`` on close)."""
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            if opcode == OP_TEXT:
                return payload.decode()
            if opcode == OP_CLOSE:
                raise WebSocketClosed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
            if opcode == OP_PING:
                self._send(OP_PONG, payload)

    def recv_json(self) -> Any:
        """The next message, decoded from JSON."""
        return json.loads(self.recv())

    def send_json(self, data: Any) -> None:
        """Send one JSON text message."""
        self._send(OP_TEXT, json.dumps(data).encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        """Send a close frame and drop the connection."""
        with contextlib.suppress(OSError):  # already gone: nothing left to close politely
            self._send(OP_CLOSE, struct.pack("!H", 1000))
        self.sock.close()
