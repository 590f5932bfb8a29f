# Wheel (our design): a braced rim of joints around a hub. Every spoke is active and its phase
# steps around the rim, so the spokes pulse in a travelling wave (two per turn) that rolls
# the wheel to the right.
import math


def make_walker():
    wc = walker_creator()

    num_points = 10
    radius = 5.0
    hub = wc.add_joint(0.0, radius)
    rim = []
    for k in range(num_points):
        angle = 2.0 * math.pi * k / num_points
        rim.append(wc.add_joint(radius * math.cos(angle), radius + radius * math.sin(angle)))

    for k in range(num_points):
        # a passive rim, braced across every second joint so it keeps its shape
        wc.add_muscle(rim[k], rim[(k + 1) % num_points])
        wc.add_muscle(rim[k], rim[(k + 2) % num_points])
        # active spokes: a wave running around the rim, two periods per turn
        wc.add_muscle(rim[k], hub, False, 8.0, -2.0 * k / num_points)

    return wc.get_walker()
