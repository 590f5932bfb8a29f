"""Batched, deterministic Sodarace physics on pymunk (chipmunk).

Joints are point masses (pymunk bodies with a circle shape that collides with terrain only);
muscles are damped springs whose forces are computed for every walker at once in numpy and
written back with ``pymunk.batch``. Several walkers share one space, all at their own start
position: collision filters keep them from touching, so each walker only ever interacts with
static terrain and its result is bit-identical to its solo run in any batch and any slot.

Why the forces are not pymunk ``DampedSpring`` constraints: setting rest lengths from Python
every step costs more than the whole numpy update, and chipmunk's constraint solver couples
constraint order with iteration count. What makes the numpy path bit-reproducible:

- every per-muscle quantity is elementwise IEEE arithmetic (``+ - * / sqrt``: correctly
  rounded whatever the SIMD width or the array's length);
- the oscillation ``sin(wt + 2 pi phase)`` is expanded as ``A sin(wt) + B cos(wt)`` with the
  per-muscle ``A, B`` computed by ``math`` once and ``sin(wt), cos(wt)`` once per step, so no
  vectorised transcendental (whose SIMD tail may round differently) ever runs;
- forces are summed per joint by ``np.bincount`` in muscle order, which is the same order for
  a walker wherever it sits in the batch;
- centre-of-mass sums use ``math.fsum`` (exactly rounded).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pymunk
import pymunk.batch as pb

from evolution.sodarace._settings import SimSettings
from evolution.sodarace._terrain import LANE_SPACING, Terrain
from evolution.types import WalkerSpec

_TERRAIN_CATEGORY = 0b01
_JOINT_CATEGORY = 0b10
_JOINT_FILTER = pymunk.ShapeFilter(categories=_JOINT_CATEGORY, mask=_TERRAIN_CATEGORY)
_TERRAIN_FILTER = pymunk.ShapeFilter(categories=_TERRAIN_CATEGORY, mask=_JOINT_CATEGORY)
_READ = pb.BodyFields.POSITION | pb.BodyFields.VELOCITY


class SimulationDiverged(RuntimeError):
    """A walker's joints left the range of sane speeds: its result would be meaningless."""


@dataclass(slots=True)
class PlacedWalker:
    """A walker laid out in the world: masses, start positions and muscle coefficients.

    All arrays are computed from the spec and settings alone (never from the batch), with
    scalar ``math`` where a function other than ``+ - * / sqrt`` is involved.

    Attributes:
        positions: ``(J, 2)`` start positions in world units.
        masses: ``(J,)`` joint masses (joint mass plus half of each attached muscle's mass).
        a, b: ``(M,)`` joint indices of each muscle.
        rest: ``(M,)`` rest lengths.
        osc_sin, osc_cos: ``(M,)`` coefficients of ``sin(wt)`` and ``cos(wt)`` in the rest
            length's oscillation.
        stiffness, damping: ``(M,)`` spring coefficients.
        width: Extent of the joint surfaces in x (for terrain layout).
        lane_x: World x of the walker's lane origin.
    """

    positions: np.ndarray
    masses: np.ndarray
    a: np.ndarray
    b: np.ndarray
    rest: np.ndarray
    osc_sin: np.ndarray
    osc_cos: np.ndarray
    stiffness: np.ndarray
    damping: np.ndarray
    width: float
    lane_x: float
    total_mass: float = field(init=False)

    def __post_init__(self) -> None:
        self.total_mass = math.fsum(self.masses.tolist())


def muscle_lengths(spec: WalkerSpec) -> list[float]:
    """Rest length of every muscle, ``(M,)``."""
    return [
        math.sqrt((spec.joints[m.b][0] - spec.joints[m.a][0]) ** 2
                  + (spec.joints[m.b][1] - spec.joints[m.a][1]) ** 2)
        for m in spec.muscles
    ]


def joint_masses(spec: WalkerSpec, settings: SimSettings) -> list[float]:
    """Mass of every joint: ``joint_mass`` plus half the mass of each attached muscle."""
    masses = [settings.joint_mass] * len(spec.joints)
    for m, length in zip(spec.muscles, muscle_lengths(spec)):
        half = 0.5 * settings.muscle_density * length
        masses[m.a] += half
        masses[m.b] += half
    return masses


def lane_of(spec: WalkerSpec, terrain: Terrain) -> int:
    """The walker's lane: a hash of the walker itself, so batching never moves it."""
    if terrain.lanes == 1:
        return 0
    key = repr((spec.joints, [(m.a, m.b, m.amplitude, m.phase) for m in spec.muscles]))
    return zlib.crc32(key.encode()) % terrain.lanes


def place(spec: WalkerSpec, terrain: Terrain, settings: SimSettings) -> PlacedWalker:
    """Lay a walker out on a terrain: in its lane, anchored in x, resting on the ground."""
    r = settings.joint_radius
    xs = [x for x, _ in spec.joints]
    ys = [y for _, y in spec.joints]
    lo, hi = min(xs), max(xs)
    if terrain.anchor == "center":
        dx = -(lo + hi) / 2.0
    elif terrain.anchor == "left":
        dx = r - lo
    else:
        dx = -r - hi
    dy = max(terrain.ground_height(x + dx) + r - y for x, y in zip(xs, ys))
    lane_x = lane_of(spec, terrain) * LANE_SPACING
    positions = np.array([[(x + dx) + lane_x, y + dy] for x, y in zip(xs, ys)], dtype=np.float64)

    lengths = muscle_lengths(spec)
    masses = joint_masses(spec, settings)
    degree = [0] * len(spec.joints)
    for m in spec.muscles:
        degree[m.a] += 1
        degree[m.b] += 1
    share = [mass / max(d, 1) for mass, d in zip(masses, degree)]
    osc_sin, osc_cos, stiff, damp = [], [], [], []
    for m, length in zip(spec.muscles, lengths):
        strain = settings.max_strain * math.tanh(m.amplitude / settings.amplitude_scale)
        angle = 2.0 * math.pi * math.fmod(m.phase, 1.0)
        osc_sin.append(length * strain * math.cos(angle))
        osc_cos.append(length * strain * math.sin(angle))
        s = min(share[m.a], share[m.b])
        stiff.append(settings.stiffness * s)
        damp.append(settings.damping * s)

    def arr(values: list[float]) -> np.ndarray:
        return np.array(values, dtype=np.float64)

    return PlacedWalker(
        positions=positions,
        masses=arr(masses),
        a=np.array([m.a for m in spec.muscles], dtype=np.intp),
        b=np.array([m.b for m in spec.muscles], dtype=np.intp),
        rest=arr(lengths),
        osc_sin=arr(osc_sin),
        osc_cos=arr(osc_cos),
        stiffness=arr(stiff),
        damping=arr(damp),
        width=(hi - lo) + 2 * r,
        lane_x=lane_x,
    )


@dataclass(slots=True)
class WalkerOutcome:
    """What the world reports for one walker.

    Attributes:
        com_start: Centre-of-mass x when measuring started (after settling), lane-local.
        com_end: Centre-of-mass x at the end, lane-local.
        diverged: Why the walker was removed, or ``None``.
        frames: ``(T, J, 2)`` float32 lane-local positions if a trace was requested.
    """

    com_start: float = math.nan
    com_end: float = math.nan
    diverged: str | None = None
    frames: np.ndarray | None = None


class World:
    """One pymunk space holding several walkers on one terrain layout.

    Args:
        walkers: Placed walkers; all must share the same terrain layout.
        terrain: The terrain.
        settings: Simulation settings.
        trace: For each walker, whether to record its frames.
    """

    def __init__(
        self,
        walkers: list[PlacedWalker],
        terrain: Terrain,
        settings: SimSettings,
        *,
        trace: list[bool] | None = None,
    ) -> None:
        self.settings = settings
        self.walkers = walkers
        self.trace = trace or [False] * len(walkers)
        self.outcomes = [WalkerOutcome() for _ in walkers]
        self._frames: list[list[np.ndarray]] = [[] for _ in walkers]
        self.space = space = pymunk.Space()
        space.gravity = (0.0, -settings.gravity)
        space.damping = settings.air_damping
        space.iterations = settings.solver_iterations
        width = walkers[0].width if walkers else 0.0
        for seg in terrain.world_layout(width):
            shape = pymunk.Segment(space.static_body, seg.a, seg.b, seg.radius)
            shape.friction = settings.friction
            shape.elasticity = settings.elasticity
            shape.filter = _TERRAIN_FILTER
            space.add(shape)
        self._bodies: list[list[pymunk.Body]] = []
        for w in walkers:
            bodies = []
            for (x, y), mass in zip(w.positions.tolist(), w.masses.tolist()):
                body = pymunk.Body(mass, math.inf)
                body.position = (x, y)
                circle = pymunk.Circle(body, settings.joint_radius)
                circle.friction = settings.friction
                circle.elasticity = settings.elasticity
                circle.filter = _JOINT_FILTER
                space.add(body, circle)
                bodies.append(body)
            self._bodies.append(bodies)
        self._live = list(range(len(walkers)))
        self._read = pb.Buffer()
        self._pack()

    def _pack(self) -> None:
        """Concatenate live walkers' arrays in the order the space stores their bodies."""
        ids = pb.Buffer()
        pb.get_space_bodies(self.space, pb.BodyFields.BODY_ID, ids)
        row_of = {bid: row for row, bid in enumerate(memoryview(ids.int_buf()).cast("P"))}
        self._rows: list[np.ndarray] = []
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("a", "b", "rest", "osc_sin", "osc_cos", "stiffness", "damping")}
        for w in self._live:
            rows = np.array([row_of[b.id] for b in self._bodies[w]], dtype=np.intp)
            self._rows.append(rows)
            pw = self.walkers[w]
            parts["a"].append(rows[pw.a])
            parts["b"].append(rows[pw.b])
            for key in ("rest", "osc_sin", "osc_cos", "stiffness", "damping"):
                parts[key].append(getattr(pw, key))
        cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
        self._a = cat["a"].astype(np.intp)
        self._b = cat["b"].astype(np.intp)
        self._rest, self._osc_sin, self._osc_cos = cat["rest"], cat["osc_sin"], cat["osc_cos"]
        self._k, self._c = cat["stiffness"], cat["damping"]
        self._n = len(row_of)
        self._scatter = np.concatenate((2 * self._a, 2 * self._a + 1, 2 * self._b, 2 * self._b + 1))
        self._force = np.zeros(2 * self._n, dtype=np.float64)
        self._write = pb.Buffer()
        self._write.set_float_buf(self._force)

    def _state(self) -> np.ndarray:
        """``(4, N)`` contiguous rows ``x, y, vx, vy`` of every body, in space order."""
        self._read.clear()
        pb.get_space_bodies(self.space, _READ, self._read)
        return np.frombuffer(self._read.float_buf(), dtype=np.float64).reshape(-1, 4).T.copy()

    def _apply_muscles(self, cols: np.ndarray, sin_t: float, cos_t: float) -> None:
        # chipmunk moves bodies (x += v dt) BEFORE it applies forces to velocities, so forces
        # from the current positions would make plain forward Euler, which no damping keeps
        # stable at this step size. Evaluating springs at the positions chipmunk is about to
        # move to makes the pair semi-implicit (symplectic) Euler instead.
        # Everything below is on contiguous 1-D arrays: numpy's 1-D fancy indexing is ~10x
        # faster than row gathers on (N, 2) arrays at these sizes.
        a, b, dt = self._a, self._b, self.settings.dt
        vx, vy = cols[2], cols[3]  # (N,)
        x = cols[0] + vx * dt
        y = cols[1] + vy * dt
        dx = x[b] - x[a]  # (M,)
        dy = y[b] - y[a]
        length = np.sqrt(dx * dx + dy * dy)
        ux = dx / length
        uy = dy / length
        rest = self._rest + self._osc_sin * sin_t + self._osc_cos * cos_t
        closing = (vx[b] - vx[a]) * ux + (vy[b] - vy[a]) * uy
        tension = self._k * (length - rest) + self._c * closing
        pull = np.concatenate((tension * ux, tension * uy))  # (2M,)
        # One scatter-add writes the interleaved (fx, fy) force of every body: +pull on the
        # first joint of each muscle, -pull on the second, summed in muscle order.
        np.copyto(self._force, np.bincount(self._scatter, np.concatenate((pull, -pull)), 2 * self._n))
        pb.set_space_bodies(self.space, pb.BodyFields.FORCE, self._write)

    def _com_x(self, state: np.ndarray, w: int, rows: np.ndarray) -> float:
        pw = self.walkers[w]
        return math.fsum((pw.masses * state[0, rows]).tolist()) / pw.total_mass - pw.lane_x

    def _check(self, state: np.ndarray, step: int) -> bool:
        """Remove walkers that diverged; return True if any was removed."""
        limit = self.settings.max_speed
        removed = False
        for w, rows in zip(list(self._live), self._rows):
            speeds = state[2:4, rows]
            if not np.all(np.abs(speeds) <= limit):
                self.outcomes[w].diverged = (
                    f"a joint exceeded {limit:g} units/s at t={step * self.settings.dt:.2f} s"
                )
                for body in self._bodies[w]:
                    self.space.remove(body, *body.shapes)
                self._live.remove(w)
                removed = True
        if removed:
            self._pack()
        return removed

    def run(self) -> list[WalkerOutcome]:
        """Settle, then measure; return one outcome per walker (in input order)."""
        s = self.settings
        omega_dt = 2.0 * math.pi * s.dt / s.period
        settle, total = s.settle_steps, s.settle_steps + s.measure_steps
        every = s.trace_every
        tracing = any(self.trace)
        limit = s.max_speed
        step_space = self.space.step
        for step in range(total + 1):
            state = self._state()
            if not np.abs(state[2:4]).max(initial=0.0) <= limit and self._check(state, step):
                state = self._state()  # NaN fails the comparison too
            if step == settle:
                for w, rows in zip(self._live, self._rows):
                    self.outcomes[w].com_start = self._com_x(state, w, rows)
            if tracing and step % every == 0:
                self._record(state)
            if step == total:
                break
            if step < settle:
                self._apply_muscles(state, 0.0, 0.0)  # held at rest length
            else:
                phase = (step - settle) * omega_dt
                self._apply_muscles(state, math.sin(phase), math.cos(phase))
            step_space(s.dt)
        for w, rows in zip(self._live, self._rows):
            self.outcomes[w].com_end = self._com_x(state, w, rows)
        for w, frames in enumerate(self._frames):
            if frames:
                self.outcomes[w].frames = np.stack(frames)
        return self.outcomes

    def _record(self, state: np.ndarray) -> None:
        for w, rows in zip(self._live, self._rows):
            if self.trace[w]:
                local = state[0:2, rows].T - (self.walkers[w].lane_x, 0.0)
                self._frames[w].append(local.astype(np.float32))
