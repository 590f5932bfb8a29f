"""What one program may use inside the sandbox."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from evolution.sodarace._limits import DEFAULT_LIMITS, WalkerLimits

ALLOWED_IMPORTS: tuple[str, ...] = ("math", "random")
"""What a program may import by default: all the seeds need is ``math``.

``numpy`` is deliberately not here, for two reasons. Cost: a child cannot import anything
from disk, so numpy would have to be imported into the fork server, whose address space it
multiplies by five: every fork then costs about 1 ms more (the server otherwise holds only
the walker API, not the simulator). Surface: numpy's public attributes reach ``os``,
``subprocess`` and ``ctypes`` (``numpy.f2py``, ``numpy.ctypeslib``, ``numpy.testing``), which
makes the source check a thinner layer. Programs written for OpenELM (its CPPN uses
``np.sign``) run with ``SandboxPool(preload=("numpy",))`` and
``SandboxLimits(imports=("math", "random", "numpy"))``; ``numpy.random`` is then seeded per
program too.
"""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Resource limits and language rules for one program run.

    Attributes:
        timeout_s: Wall-clock seconds before the program's process group is killed.
        cpu_s: CPU seconds (``RLIMIT_CPU``); the soft limit sends SIGXCPU, one second more
            SIGKILL. Rounded up to whole seconds.
        memory_bytes: Address space the program may add to the fork server's baseline
            (``RLIMIT_AS`` = baseline + this), so the limit means the same whatever the
            server has imported.
        max_output_bytes: stdout and stderr together; more kills the program.
        max_result_bytes: The encoded walker sent back; more kills the program.
        max_source_bytes: Longer program text is refused before anything runs.
        imports: Modules a program may import (the source check's allow-list).
        check_source: Run the source check (layer 5). Only tests switch it off, to prove
            that each operating-system layer stops an attack on its own.
        walker: The rules the walker must respect.
    """

    timeout_s: float = 5.0
    cpu_s: float = 5.0
    memory_bytes: int = 256 * 2**20
    max_output_bytes: int = 64 * 2**10
    max_result_bytes: int = 2**20
    max_source_bytes: int = 256 * 2**10
    imports: tuple[str, ...] = ALLOWED_IMPORTS
    check_source: bool = True
    walker: WalkerLimits = field(default=DEFAULT_LIMITS)

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cpu_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"SandboxLimits.{name} must be a positive number of seconds, got {value!r}")
        for name in ("memory_bytes", "max_output_bytes", "max_result_bytes", "max_source_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")
        object.__setattr__(self, "imports", tuple(self.imports))

    def to_dict(self) -> dict[str, Any]:
        """Return the limits as plain JSON data (what the fork server receives)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["imports"] = list(self.imports)
        data["walker"] = dataclasses.asdict(self.walker)
        return data


DEFAULT_SANDBOX_LIMITS = SandboxLimits()
