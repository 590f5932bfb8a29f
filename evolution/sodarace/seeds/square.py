# Square (ELM paper, appendix B): four corner joints and a centre joint. The rim and one
# spoke are passive; the other three spokes are active, all at phase 0, with different
# amplitudes.


def make_square(wc, x0, y0, x1, y1):
    """Four joints at the corners of the box from (x0, y0) to (x1, y1)."""
    j0 = wc.add_joint(x0, y0)
    j1 = wc.add_joint(x0, y1)
    j2 = wc.add_joint(x1, y1)
    j3 = wc.add_joint(x1, y0)
    return j0, j1, j2, j3


def make_walker():
    wc = walker_creator()

    # the main body is a square
    sides = make_square(wc, 0, 0, 10, 10)
    center = wc.add_joint(5, 5)

    # the rim is made of passive muscles
    for k in range(len(sides) - 1):
        wc.add_muscle(sides[k], sides[k + 1])
    wc.add_muscle(sides[3], sides[0])

    # one spoke is passive
    wc.add_muscle(sides[3], center)

    # the other spokes are active
    wc.add_muscle(sides[0], center, False, 5.0, 0.0)
    wc.add_muscle(sides[1], center, False, 10.0, 0.0)
    wc.add_muscle(sides[2], center, False, 2.0, 0.0)

    return wc.get_walker()
