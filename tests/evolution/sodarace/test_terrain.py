"""Terrain geometry."""

from __future__ import annotations

from evolution.sodarace import TERRAINS, get_terrain
from evolution.sodarace._terrain import BUMP_FLAT_ZONE, LANES, TUNNEL_HEIGHT


def test_there_are_the_papers_four_terrains_plus_flat():
    assert set(TERRAINS) == {"flat", "left-wall", "right-wall", "bumpy", "tunnel"}
    assert all(t.description for t in TERRAINS.values())


def test_laned_terrains_hold_the_same_geometry_for_every_lane_whoever_races():
    flat, wall = get_terrain("flat"), get_terrain("left-wall")
    assert flat.world_layout(3.0) == flat.world_layout(40.0)
    assert len(flat.world_layout(3.0)) == 1  # one ground under every lane
    assert len(wall.world_layout(3.0)) == 1 + LANES


def test_the_tunnel_ceiling_starts_past_the_walkers_right_edge():
    tunnel = get_terrain("tunnel")
    narrow, wide = tunnel.layout(4.0), tunnel.layout(20.0)
    ceiling = [s for s in wide if s.a[1] > TUNNEL_HEIGHT]
    assert len(ceiling) == 1 and ceiling[0].a[0] - ceiling[0].radius > 20.0
    assert narrow != wide and tunnel.layout_key(4.0) != tunnel.layout_key(20.0)


def test_bumpy_ground_is_flat_at_the_start_and_bumpy_beyond():
    bumpy = get_terrain("bumpy")
    assert bumpy.ground_height(0.0) == bumpy.ground_height(BUMP_FLAT_ZONE - 0.1) == 0.0
    heights = [bumpy.ground_height(BUMP_FLAT_ZONE + 4 + x / 10) for x in range(100)]
    assert max(heights) - min(heights) > 0.5
