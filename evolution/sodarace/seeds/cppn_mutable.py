# CPPN-Mutable (ELM paper, appendix B): like CPPN-Fixed, but the query_cppn helper is part of
# the program text, so evolution may rewrite it too.


def query_cppn(wc, xgrid, ygrid, scale, connect_func, amp_func, phase_func):
    """Create an xgrid x ygrid lattice of joints, `scale` apart, and connect it."""
    joints = {}
    for x in range(xgrid):
        for y in range(ygrid):
            joints[(x, y)] = wc.add_joint(x * scale, y * scale)
    points = sorted(joints)
    for i, (x1, y1) in enumerate(points):
        for x2, y2 in points[i + 1:]:
            if connect_func(x1, y1, x2, y2):
                amplitude = amp_func(x1, y1, x2, y2)
                phase = phase_func(x1, y1, x2, y2)
                wc.add_muscle(joints[(x1, y1)], joints[(x2, y2)], False, amplitude, phase)
    return joints


def make_walker():
    wc = walker_creator()

    def connect(x1, y1, x2, y2):
        # join neighbours, including diagonal ones
        return (x1 - x2) ** 2 + (y1 - y2) ** 2 <= 2.5

    def amp(x1, y1, x2, y2):
        return max(abs(x1 - x2), abs(y1 - y2))

    def phase(x1, y1, x2, y2):
        return x1 / 4.0

    query_cppn(wc, 6, 3, 2.0, connect, amp, phase)

    return wc.get_walker()
