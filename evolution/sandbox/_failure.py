"""The typed failure of a program that did not produce a walker."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class FailureKind(str, Enum):
    """Why a program produced no walker. The values are stored in the database as they are."""

    SYNTAX = "syntax"
    """The text does not parse (or compile) as Python."""
    FORBIDDEN = "forbidden"
    """The source check refused a construct (an import, a dunder, ``eval``...)."""
    NO_MAKE_WALKER = "no_make_walker"
    """The program defines no callable ``make_walker``."""
    NOT_A_WALKER = "not_a_walker"
    """``make_walker()`` returned something other than a walker."""
    EXCEPTION = "exception"
    """The program raised (any ``BaseException``, ``SystemExit`` included)."""
    TIMEOUT = "timeout"
    """The program ran past its wall-clock or CPU-time limit and was killed."""
    MEMORY = "memory"
    """The program ran out of its address-space limit."""
    OUTPUT_TOO_LARGE = "output_too_large"
    """The program printed, or returned, more than its limit."""
    INVALID_WALKER = "invalid_walker"
    """The walker broke a rule of ``WalkerLimits`` (``detail["rule"]`` names it)."""
    CRASHED = "crashed"
    """The process died without an answer (a signal, ``os._exit``, a lost sandbox server)."""


@dataclass(frozen=True, slots=True)
class ProgramFailure:
    """Why running a program gave no walker: a value, never an exception.

    Attributes:
        kind: A ``FailureKind`` value (a plain ``str``, so it compares with ``"timeout"``).
        message: What went wrong, in words a user understands.
        line: The line of the program involved (syntax error, forbidden construct, the
            innermost program line of an exception), ``None`` when no line applies.
        detail: Plain JSON data: ``type`` of an exception, ``rule`` and ``values`` of an
            invalid walker, ``signal`` or ``exit_code`` of a crash, captured ``output``...
    """

    kind: str
    message: str
    line: int | None = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FailureKind(self.kind).value)

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.kind}: {self.message}{where}"
