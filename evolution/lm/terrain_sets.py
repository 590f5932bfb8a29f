"""The paper's stage-3 training sets of terrains, importable without torch.

``evolution.lm.stage3`` (which loads torch) re-exports ``TERRAIN_SETS``; the web lab reads it
from here to offer the sets in its forms without loading torch in the web process.
"""

from __future__ import annotations

TERRAIN_SETS: dict[str, tuple[str, ...]] = {
    "walls-tunnel": ("left-wall", "right-wall", "tunnel"),
    "walls-bumpy": ("left-wall", "right-wall", "bumpy"),
}
"""The paper's training sets."""
