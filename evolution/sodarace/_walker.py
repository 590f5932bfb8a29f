"""The walker API that evolved programs call: ``walker_creator``, ``add_joint``, ``add_muscle``.

Programs written for the paper and for OpenELM both run unchanged::

    wc = walker_creator()
    a = wc.add_joint(0, 0)
    b = wc.add_joint(10, 0)
    wc.add_muscle(a, b)                    # passive
    wc.add_muscle(a, b, False, 5.0, 0.25)  # active, paper form (False: not a distance joint)
    wc.add_muscle(a, b, 5.0, 0.25)         # active, OpenELM form
    return wc.get_walker()

Joints are handles, not coordinates: two joints at the same place stay two joints (OpenELM
looked joints up by value and silently merged them).
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from typing import Any, Iterator

from evolution.sodarace._limits import DEFAULT_LIMITS, InvalidWalker, WalkerLimits
from evolution.types import MuscleSpec, WalkerSpec


class Joint:
    """A handle to one joint of one ``walker_creator``.

    It also reads like the ``(x, y)`` pair OpenELM returned (``j[0]``, ``x, y = j``), but
    equality is identity, so coincident joints never alias.
    """

    __slots__ = ("_owner", "index", "x", "y")

    def __init__(self, owner: walker_creator, index: int, x: float, y: float) -> None:
        self._owner = owner
        self.index = index
        self.x = x
        self.y = y

    def __iter__(self) -> Iterator[float]:
        return iter((self.x, self.y))

    def __getitem__(self, i: int) -> float:
        return (self.x, self.y)[i]

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return f"Joint({self.index}, x={self.x:g}, y={self.y:g})"


def _number(value: Any, what: str, limit: float) -> float:
    """Return ``value`` as a finite float within ``[-limit, limit]``.

    Raises:
        InvalidWalker: ``not_a_number``, ``finite_numbers`` or the range rule for ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidWalker(
            "not_a_number",
            f"{what} must be a real number, got {type(value).__name__} {value!r}",
            value=repr(value)[:80],
        )
    result = float(value)
    if not math.isfinite(result):
        raise InvalidWalker(
            "finite_numbers", f"{what} must be finite, got {result!r}", value=repr(result)
        )
    if abs(result) > limit:
        raise InvalidWalker(
            f"{what}_range",
            f"|{what}| must be <= {limit:g}, got {result:g}",
            value=result,
            limit=limit,
        )
    return result


class walker_creator:  # noqa: N801 - the paper's name, which programs call.
    """Collects joints and muscles, then validates them into a ``WalkerSpec``.

    Args:
        limits: The rules to enforce; the default suits evolution.
    """

    def __init__(self, limits: WalkerLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._joints: list[tuple[float, float]] = []
        self._muscles: list[MuscleSpec] = []
        self._warnings: list[str] = []

    def add_joint(self, x: float, y: float) -> Joint:
        """Add a joint at ``(x, y)`` (program units, y up) and return its handle.

        Raises:
            InvalidWalker: For a non-finite or out-of-box coordinate, or too many joints.
        """
        lim = self._limits.coordinate_limit
        point = (_number(x, "coordinate", lim), _number(y, "coordinate", lim))
        if len(self._joints) >= self._limits.max_joints:
            raise InvalidWalker(
                "max_joints",
                f"a walker may have at most {self._limits.max_joints} joints",
                limit=self._limits.max_joints,
            )
        self._joints.append(point)
        return Joint(self, len(self._joints) - 1, *point)

    def add_muscle(self, j0: Joint, j1: Joint, *args: Any, **kwargs: Any) -> None:
        """Connect two joints with a muscle.

        Accepted forms: ``(j0, j1)`` passive; ``(j0, j1, is_distance, amplitude, phase)``
        (paper: ``is_distance=False`` makes it active, ``True`` passive);
        ``(j0, j1, amplitude, phase)`` or ``(j0, j1, amplitude)`` (OpenELM); and keywords
        ``amplitude=``, ``phase=``. Phase is in cycles. A muscle from a joint to itself is
        dropped with a warning (OpenELM's CPPN seeds make 21 of them).

        Raises:
            InvalidWalker: For a joint of another creator, bad numbers, too many muscles.
            TypeError: For an argument list matching none of the forms.
        """
        passive, amplitude, phase = _muscle_arguments(args, kwargs)
        a, b = self._own(j0), self._own(j1)
        lim = self._limits
        amplitude = _number(amplitude, "amplitude", lim.max_amplitude)
        phase = _number(phase, "phase", lim.max_phase)
        if a == b:
            self._warnings.append(f"muscle from joint {a} to itself was dropped")
            return
        if len(self._muscles) >= lim.max_muscles:
            raise InvalidWalker(
                "max_muscles",
                f"a walker may have at most {lim.max_muscles} muscles",
                limit=lim.max_muscles,
            )
        self._muscles.append(MuscleSpec(a, b, 0.0 if passive else amplitude, phase))

    def get_walker(self) -> WalkerSpec:
        """Validate and return the immutable walker.

        Raises:
            InvalidWalker: ``no_joints``, ``max_muscles_per_joint`` or ``min_muscle_length``.
        """
        return _validated(self._joints, self._muscles, self._warnings, self._limits)

    def _own(self, joint: Any) -> int:
        if not isinstance(joint, Joint):
            raise InvalidWalker(
                "not_a_joint",
                f"muscle ends must be joints returned by add_joint, got "
                f"{type(joint).__name__}",
                value=repr(joint)[:80],
            )
        if joint._owner is not self:
            raise InvalidWalker(
                "foreign_joint",
                f"{joint!r} belongs to another walker_creator; connect joints of one walker",
            )
        return joint.index


def _muscle_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any, Any]:
    """Normalise the paper's and OpenELM's ``add_muscle`` signatures.

    Returns:
        ``(passive, amplitude, phase)``.

    Raises:
        TypeError: If the arguments match no accepted form.
    """
    unknown = set(kwargs) - {"amplitude", "phase"}
    if unknown or len(args) > 3:
        raise TypeError(
            "add_muscle takes (j0, j1), (j0, j1, amplitude, phase) or "
            f"(j0, j1, is_distance, amplitude, phase); got {len(args) + 2} positional "
            f"arguments and keywords {sorted(kwargs)}"
        )
    if len(args) == 3:  # the paper's form: a leading is-distance flag
        flag, amplitude, phase = args
        if not isinstance(flag, (bool, int, float)) or flag not in (0, 1):
            raise TypeError(f"add_muscle's third argument of five must be True or False, got {flag!r}")
        return bool(flag), amplitude, phase
    amplitude = args[0] if len(args) >= 1 else kwargs.get("amplitude", 0.0)
    phase = args[1] if len(args) == 2 else kwargs.get("phase", 0.0)
    if len(args) >= 1 and "amplitude" in kwargs or len(args) == 2 and "phase" in kwargs:
        raise TypeError("add_muscle got amplitude or phase both by position and by keyword")
    return False, amplitude, phase


def _validated(
    joints: list[tuple[float, float]],
    muscles: list[MuscleSpec],
    warnings: list[str],
    limits: WalkerLimits,
) -> WalkerSpec:
    if not joints:
        raise InvalidWalker("no_joints", "a walker needs at least one joint; call add_joint")
    kept = []
    for i, m in enumerate(muscles):
        (xa, ya), (xb, yb) = joints[m.a], joints[m.b]
        length = math.hypot(xb - xa, yb - ya)
        if length == 0.0:
            # Coincident joints: the same case as a self-muscle in programs written for
            # OpenELM, which merged joints at one point (its Galloper makes one of these).
            warnings = [*warnings, f"muscle {i} joins coincident joints {m.a} and {m.b}; dropped"]
            continue
        if length < limits.min_muscle_length:
            raise InvalidWalker(
                "min_muscle_length",
                f"muscle {i} (joints {m.a}-{m.b}) is {length:.3g} long; joints it connects must "
                f"be at least {limits.min_muscle_length:g} apart",
                muscle=i,
                length=length,
                limit=limits.min_muscle_length,
            )
        kept.append(m)
    muscles = kept
    degree = Counter(m.a for m in muscles) + Counter(m.b for m in muscles)
    if degree:
        joint, count = max(degree.items(), key=lambda item: (item[1], -item[0]))
        if count > limits.max_muscles_per_joint:
            raise InvalidWalker(
                "max_muscles_per_joint",
                f"joint {joint} has {count} muscles; at most {limits.max_muscles_per_joint}",
                joint=joint,
                count=count,
                limit=limits.max_muscles_per_joint,
            )
    return WalkerSpec(tuple(joints), tuple(muscles), tuple(warnings))


def spec_from_dict(data: Any, *, limits: WalkerLimits = DEFAULT_LIMITS) -> WalkerSpec:
    """Rebuild a ``WalkerSpec`` from ``WalkerSpec.to_dict`` output, validating everything.

    Untrusted data (e.g. from a sandboxed child process) goes through exactly the checks that
    a program calling the API goes through.

    Raises:
        InvalidWalker: ``malformed`` if the structure is wrong, or any walker rule.
    """
    try:
        raw_joints = list(data["joints"])
        raw_muscles = list(data["muscles"])
        warnings = tuple(str(w)[:500] for w in data.get("warnings", ()))[:64]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidWalker(
            "malformed", f"expected {{'joints': [[x, y], ...], 'muscles': [[a, b, amp, phase], ...]}}: {exc}"
        ) from exc
    if len(raw_joints) > limits.max_joints:
        raise InvalidWalker("max_joints", f"at most {limits.max_joints} joints", limit=limits.max_joints)
    if len(raw_muscles) > limits.max_muscles:
        raise InvalidWalker("max_muscles", f"at most {limits.max_muscles} muscles", limit=limits.max_muscles)
    wc = walker_creator(limits)
    try:
        handles = [wc.add_joint(*xy) for xy in raw_joints]
        for a, b, amplitude, phase in raw_muscles:
            if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, int) and isinstance(b, int)):
                raise InvalidWalker("malformed", f"muscle ends must be joint indices, got {a!r}, {b!r}")
            if not (0 <= a < len(handles) and 0 <= b < len(handles)):
                raise InvalidWalker("malformed", f"muscle joins joints {a} and {b}; only {len(handles)} exist")
            wc.add_muscle(handles[a], handles[b], amplitude=amplitude, phase=phase)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InvalidWalker):
            raise
        raise InvalidWalker("malformed", str(exc)) from exc
    wc._warnings.extend(warnings)
    return wc.get_walker()
