# Radial (ELM paper, appendix B): joints on a circle around a centre joint. The rim is
# passive; each spoke is active, its amplitude and phase growing with its index.
import math


def make_circle(wc, cx, cy, radius, num_points):
    """Joints evenly spaced on a circle of the given radius around (cx, cy)."""
    joints = []
    for idx in range(num_points):
        angle = 2.0 * math.pi * idx / num_points
        joints.append(wc.add_joint(cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return joints


def make_walker():
    wc = walker_creator()

    num_points = 8
    radius = 5.0
    cx, cy = 5.0, 5.0
    rim = make_circle(wc, cx, cy, radius, num_points)
    center = wc.add_joint(cx, cy)

    for k in range(num_points):
        # passive rim
        wc.add_muscle(rim[k], rim[(k + 1) % num_points])
        # active spoke: amplitude and phase grow with the index
        wc.add_muscle(rim[k], center, False, k / num_points, k / num_points)

    return wc.get_walker()
