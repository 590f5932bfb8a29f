"""Terrains: flat, left-wall, right-wall, bumpy, tunnel (the paper's four plus flat).

Each terrain is geometry in world units around the walker's start. The walker is placed by an
anchor (see ``Terrain.anchor``) and lowered until its lowest joint rests on the ground.

Lanes: to batch many walkers in one physics space cheaply, a walker races in one of
``LANES`` lanes, ``LANE_SPACING`` units apart, chosen by a hash of the walker itself, so it is
in the same lane whether it runs alone or in any batch. Walkers that overlap in one spot cost
the collision broad phase O(n^2) pairs (mutated children look like their parents); lanes keep
them apart. Terrains whose geometry is cheap to repeat (flat, walls) have lanes, and the
space always holds the SAME static geometry for every lane whichever lanes are occupied, so a
walker's contacts are found in the same order in every batch. Bumpy ground (600 segments)
and the tunnel (its entrance depends on the walker's width) use a single lane.

World units are program units (a seed is about 10 units wide); y points up; the ground's top
surface is the line ``y = ground_height(x)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Anchor = Literal["center", "left", "right"]

# Half-length of the terrain in x: far beyond anything a walker covers in 60 simulated seconds.
EXTENT = 2000.0
LANES = 256
LANE_SPACING = 2 * EXTENT
# Every static segment is this thick (its radius), so a joint pressed hard into the ground can
# never pass through a zero-width line; segments are offset so their SURFACE is where stated.
THICKNESS = 1.0
# Gap between a wall's face and the walker's nearest joint surface at the start.
WALL_GAP = 1.0
WALL_HEIGHT = 200.0
# Tunnel: a ceiling this high above the ground, starting this far past the walker's right edge.
TUNNEL_HEIGHT = 6.0
TUNNEL_ENTRANCE = 2.0
# Bumps: a fixed sum of sines, zero in a flat start zone of this half-width.
BUMP_FLAT_ZONE = 8.0
BUMP_AMPLITUDE = 0.6
BUMP_SPACING = 1.0
BUMP_EXTENT = 300.0  # bumps stop here; level ground beyond (keeps the space small)


@dataclass(frozen=True, slots=True)
class Segment:
    """A static line segment with rounded ends, in world units."""

    a: tuple[float, float]
    b: tuple[float, float]
    radius: float = 0.0

    def shifted(self, dx: float) -> Segment:
        """The same segment moved ``dx`` along x."""
        return Segment((self.a[0] + dx, self.a[1]), (self.b[0] + dx, self.b[1]), self.radius)


@dataclass(frozen=True, slots=True)
class Terrain:
    """A named piece of world geometry.

    Attributes:
        name: One of ``TERRAINS``.
        anchor: Where the walker's start sits at ``x = 0``: ``"center"`` puts the middle of its
            joints there; ``"left"`` its leftmost joint surface (a wall waits at
            ``-WALL_GAP``); ``"right"`` its rightmost joint surface.
        ground: The ground, whose surface is ``ground_height``.
        features: Walls, in lane-local coordinates.
        description: One line for people.
        lanes: How many lanes walkers may be spread over (1: all at the origin).
        tunnel_height: Height of a ceiling that starts ``TUNNEL_ENTRANCE`` past the walker's
            right edge, or ``None`` for no ceiling.
    """

    name: str
    anchor: Anchor
    ground: tuple[Segment, ...]
    features: tuple[Segment, ...]
    description: str
    lanes: int = 1
    tunnel_height: float | None = None

    def layout(self, walker_width: float) -> tuple[Segment, ...]:
        """Static segments around one walker ``walker_width`` wide, lane-local coordinates."""
        segments = self.ground + self.features
        if self.tunnel_height is None:
            return segments
        start = walker_width + TUNNEL_ENTRANCE
        top = self.tunnel_height + THICKNESS
        return segments + (Segment((start + THICKNESS, top), (EXTENT, top), THICKNESS),)

    def world_layout(self, walker_width: float) -> tuple[Segment, ...]:
        """Every static segment of a space, all lanes included, in world coordinates."""
        if self.lanes == 1:
            return self.layout(walker_width)
        far = (self.lanes - 1) * LANE_SPACING
        ground = tuple(Segment(s.a, (s.b[0] + far, s.b[1]), s.radius) for s in self.ground)
        walls = tuple(
            s.shifted(lane * LANE_SPACING) for lane in range(self.lanes) for s in self.features
        )
        return ground + walls

    def layout_key(self, walker_width: float) -> float | None:
        """Walkers whose keys are equal get identical geometry and may share a space."""
        return None if self.tunnel_height is None else walker_width

    def ground_height(self, x: float) -> float:
        """Height of the ground's surface at lane-local ``x`` (ceilings and walls excluded)."""
        if self.name == "bumpy":
            return _bump_height(x)
        return 0.0

    def to_dict(self, walker_width: float = 0.0) -> dict[str, object]:
        """Plain data for replays: name, anchor and the segments laid out for the walker."""
        return {
            "name": self.name,
            "anchor": self.anchor,
            "segments": [[*s.a, *s.b, s.radius] for s in self.layout(walker_width)],
        }


def _bump_height(x: float) -> float:
    """A deterministic bumpy profile: flat near the start, rolling bumps further out."""
    x = max(-BUMP_EXTENT, min(BUMP_EXTENT, x))
    d = abs(x) - BUMP_FLAT_ZONE
    if d <= 0.0:
        return 0.0
    ramp = min(1.0, d / 4.0)
    wave = 0.6 * math.sin(1.3 * x) + 0.4 * math.sin(0.47 * x + 1.0) + 0.25 * math.sin(3.1 * x)
    return BUMP_AMPLITUDE * ramp * (wave + 1.25)


def _flat_ground() -> tuple[Segment, ...]:
    return (Segment((-EXTENT, -THICKNESS), (EXTENT, -THICKNESS), THICKNESS),)


def _bumpy_ground() -> tuple[Segment, ...]:
    n = int(2 * BUMP_EXTENT / BUMP_SPACING)
    xs = [-BUMP_EXTENT + i * BUMP_SPACING for i in range(n + 1)]
    t = THICKNESS

    def seg(x0: float, x1: float, h0: float, h1: float) -> Segment:
        return Segment((x0, h0 - t), (x1, h1 - t), t)

    bumps = tuple(seg(x0, x1, _bump_height(x0), _bump_height(x1)) for x0, x1 in zip(xs, xs[1:]))
    h_left, h_right = _bump_height(xs[0]), _bump_height(xs[-1])
    return (seg(-EXTENT, xs[0], h_left, h_left), *bumps, seg(xs[-1], EXTENT, h_right, h_right))


def _wall(x: float) -> Segment:
    """A wall whose face is at ``x``, on the side facing the start (x = 0)."""
    cx = x - THICKNESS if x < 0 else x + THICKNESS
    return Segment((cx, 0.0), (cx, WALL_HEIGHT), THICKNESS)


TERRAINS: dict[str, Terrain] = {
    t.name: t
    for t in (
        Terrain("flat", "center", _flat_ground(), (), "Level ground in both directions.", LANES),
        Terrain(
            "left-wall",
            "left",
            _flat_ground(),
            (_wall(-WALL_GAP),),
            "A wall just left of the start: only travel to the right counts.",
            LANES,
        ),
        Terrain(
            "right-wall",
            "right",
            _flat_ground(),
            (_wall(WALL_GAP),),
            "A wall just right of the start: only travel to the left counts.",
            LANES,
        ),
        Terrain(
            "bumpy",
            "center",
            _bumpy_ground(),
            (),
            "Rolling bumps up to ~1.4 units high beyond a flat start zone of +-8 units.",
        ),
        Terrain(
            "tunnel",
            "left",
            _flat_ground(),
            (_wall(-WALL_GAP),),
            f"A wall just left of the start and a ceiling {TUNNEL_HEIGHT:g} units high from "
            f"{TUNNEL_ENTRANCE:g} units past the walker's right edge: tall walkers must squeeze.",
            tunnel_height=TUNNEL_HEIGHT,
        ),
    )
}


def get_terrain(name: str) -> Terrain:
    """Return the terrain called ``name``.

    Raises:
        ValueError: If there is no such terrain (the message lists the valid names).
    """
    try:
        return TERRAINS[name]
    except KeyError:
        raise ValueError(f"unknown terrain {name!r}; choose one of {', '.join(TERRAINS)}") from None
