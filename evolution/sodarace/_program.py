"""Run a walker program's ``make_walker()`` in THIS process.

Only for trusted text (the shipped seeds, tests, and the sandbox's own child process after it
has locked itself down). Untrusted text from a language model goes through
``evolution.sandbox``, which calls this function inside an isolated child.
"""

from __future__ import annotations

import functools
from typing import Any

from evolution.sodarace._limits import DEFAULT_LIMITS, WalkerLimits
from evolution.sodarace._walker import walker_creator
from evolution.types import WalkerSpec

PROGRAM_FILENAME = "<walker>"


class NotAWalker(TypeError):
    """The program ran but did not produce a walker (no ``make_walker``, or a wrong return)."""


def build_walker(program: str, *, limits: WalkerLimits = DEFAULT_LIMITS) -> WalkerSpec:
    """Execute ``program`` and return what its ``make_walker()`` builds.

    The program sees ``walker_creator`` as a global (bound to ``limits``).

    Raises:
        SyntaxError: If the text does not parse.
        NotAWalker: If ``make_walker`` is missing, not callable, or returns something else.
        InvalidWalker: If the walker breaks a rule.
        Exception: Whatever the program itself raises.
    """

    creator = walker_creator if limits is DEFAULT_LIMITS else functools.partial(walker_creator, limits)
    namespace: dict[str, Any] = {"__name__": "walker_program", "walker_creator": creator}
    exec(compile(program, PROGRAM_FILENAME, "exec"), namespace)  # noqa: S102 - trusted text only
    make = namespace.get("make_walker")
    if not callable(make):
        raise NotAWalker("the program defines no make_walker() function; define one that returns wc.get_walker()")
    spec = make()
    if not isinstance(spec, WalkerSpec):
        raise NotAWalker(
            f"make_walker() returned {type(spec).__name__}, not a walker; end it with "
            "'return wc.get_walker()'"
        )
    return spec
