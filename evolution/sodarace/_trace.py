"""Replay traces: joint positions over time plus what is needed to draw them."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

_MAGIC = b"SRT1"


@dataclass(frozen=True, slots=True)
class Trace:
    """Joint positions over simulated time, compact enough to store per genome.

    Attributes:
        fps: Frames per simulated second.
        settle_frames: Leading frames recorded while the walker settled (not measured).
        frames: ``(T, J, 2)`` float32 world positions.
        muscles: ``(M, 4)`` rows ``a, b, amplitude, phase`` (for colouring active muscles).
        terrain: ``Terrain.to_dict()`` of the terrain as laid out for this walker.
    """

    fps: float
    settle_frames: int
    frames: np.ndarray
    muscles: tuple[tuple[int, int, float, float], ...]
    terrain: dict[str, Any]

    def to_bytes(self) -> bytes:
        """Serialise to ``SRT1`` + header length + JSON header + zlib(float32 frames).

        About 20-40 KB for a 24-joint walker over 11 s at 30 fps.
        """
        header = json.dumps(
            {
                "fps": self.fps,
                "settle_frames": self.settle_frames,
                "shape": list(self.frames.shape),
                "muscles": [list(m) for m in self.muscles],
                "terrain": self.terrain,
            },
            separators=(",", ":"),
        ).encode()
        body = zlib.compress(np.ascontiguousarray(self.frames, dtype="<f4").tobytes(), 6)
        return _MAGIC + struct.pack("<I", len(header)) + header + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Trace:
        """Inverse of ``to_bytes``.

        Raises:
            ValueError: If the data is not a trace.
        """
        if data[:4] != _MAGIC:
            raise ValueError("not a Sodarace trace (missing SRT1 header)")
        (n,) = struct.unpack("<I", data[4:8])
        header = json.loads(data[8 : 8 + n])
        frames = np.frombuffer(zlib.decompress(data[8 + n :]), dtype="<f4")
        return cls(
            fps=header["fps"],
            settle_frames=header["settle_frames"],
            frames=frames.reshape(header["shape"]).astype(np.float32),
            muscles=tuple(tuple(m) for m in header["muscles"]),
            terrain=header["terrain"],
        )

    def to_json_dict(self) -> dict[str, Any]:
        """A dict for browsers: frames as base64 little-endian float32."""
        return {
            "fps": self.fps,
            "settle_frames": self.settle_frames,
            "shape": list(self.frames.shape),
            "frames_b64": base64.b64encode(
                np.ascontiguousarray(self.frames, dtype="<f4").tobytes()
            ).decode(),
            "muscles": [list(m) for m in self.muscles],
            "terrain": self.terrain,
        }
