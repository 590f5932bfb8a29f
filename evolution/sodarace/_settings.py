"""Simulation settings: every physical constant in one frozen, documented place."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class SimSettings:
    """How a walker is simulated and scored.

    The defaults were chosen by simulating every seed and thousands of random valid walkers:
    none diverges, the seeds settle within ``settle_seconds``, and gaits show within a few
    periods. World units are program units; time is in seconds.

    Stability: each muscle's stiffness and damping are ``stiffness`` and ``damping`` times
    ``min(m_a / deg_a, m_b / deg_b)`` (a joint's mass shared among its muscles). By
    Gershgorin's theorem the fastest mode of any walker is then at most
    ``sqrt(2 * stiffness)`` rad/s, so the explicit step below stays stable for every walker
    the limits admit, however many muscles meet at a joint.

    Attributes:
        sim_seconds: Measured time, after settling (default 10 s: ten gait periods).
        settle_seconds: Time the walker rests on the ground, muscles held at rest length,
            before measuring starts (it is placed resting, so 1 s absorbs the sag).
        dt: Physics step (chipmunk, semi-implicit Euler).
        gravity: Downward acceleration, units/s^2.
        period: Period shared by every active muscle.
        max_strain: Largest relative change of an active muscle's rest length.
        amplitude_scale: ``strain = max_strain * tanh(amplitude / amplitude_scale)``; programs
            use amplitudes from about 0.1 to 30 (paper and OpenELM seeds), which this maps
            smoothly into ``(-max_strain, max_strain)`` with no cliff for evolution to fall off.
        joint_mass: Mass of each joint.
        muscle_density: Mass per unit of muscle length, split between its two joints.
        joint_radius: Collision radius of a joint (joints collide with terrain only).
        friction: Joint-terrain friction.
        elasticity: Joint-terrain restitution.
        stiffness: Spring stiffness per unit of shared mass, s^-2.
        damping: Spring damping per unit of shared mass, s^-1.
        air_damping: Fraction of velocity kept after one second (chipmunk space damping).
        solver_iterations: Contact solver iterations (contacts are joint-terrain only).
        max_speed: A joint faster than this (units/s) means the simulation diverged.
        trace_fps: Frames per simulated second in a recorded trace.
    """

    sim_seconds: float = 10.0
    settle_seconds: float = 1.0
    dt: float = 1.0 / 60.0
    gravity: float = 20.0
    period: float = 1.0
    max_strain: float = 0.4
    amplitude_scale: float = 5.0
    joint_mass: float = 1.0
    muscle_density: float = 0.05
    joint_radius: float = 0.25
    friction: float = 1.0
    elasticity: float = 0.0
    stiffness: float = 900.0
    damping: float = 12.0
    air_damping: float = 0.8
    solver_iterations: int = 2
    max_speed: float = 500.0
    trace_fps: float = 30.0

    def __post_init__(self) -> None:
        if not (self.sim_seconds >= 0 and self.settle_seconds >= 0):
            raise ValueError("sim_seconds and settle_seconds must be >= 0")
        if not 0 < self.dt <= 0.05:
            raise ValueError(f"dt must be in (0, 0.05] seconds, got {self.dt}")
        if not 0 <= self.max_strain < 1:
            raise ValueError(f"max_strain must be in [0, 1), got {self.max_strain}")
        if self.period <= 0 or self.amplitude_scale <= 0:
            raise ValueError("period and amplitude_scale must be > 0")

    @property
    def settle_steps(self) -> int:
        """Physics steps spent settling."""
        return round(self.settle_seconds / self.dt)

    @property
    def measure_steps(self) -> int:
        """Physics steps measured for fitness."""
        return round(self.sim_seconds / self.dt)

    @property
    def trace_every(self) -> int:
        """Record a trace frame every this many steps."""
        return max(1, round(1.0 / (self.trace_fps * self.dt)))

    def with_(self, **changes: float) -> SimSettings:
        """Return a copy with some fields changed (validated)."""
        return replace(self, **changes)


DEFAULT_SETTINGS = SimSettings()
