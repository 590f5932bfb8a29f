"""Models of the runs app (none yet: runs, genomes and events land here)."""

from __future__ import annotations
