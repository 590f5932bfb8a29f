# CPPN seed (ELM paper, appendix B): query_cppn lays out a grid of joints and connects pairs
# of them by functions of their coordinates; make_walker below chooses those functions.


def query_cppn(wc, xgrid, ygrid, scale, connect_func, amp_func, phase_func):
    """Create an xgrid x ygrid lattice of joints, `scale` apart, and connect it.

    Each unordered pair of distinct grid points (x1, y1), (x2, y2) is offered to
    connect_func(x1, y1, x2, y2); accepted pairs get a muscle whose amplitude and phase are
    amp_func(...) and phase_func(...) of the same coordinates.
    """
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
