# Galloper (our design): a braced back on a front and a rear leg. Each leg has a hip muscle
# that swings its knee and a long muscle that lifts its foot half a period later; the rear
# leg runs half a period behind the front one, so the feet take turns pushing the body.


def make_leg(wc, hip_front, hip_back, x, phase):
    """A two-segment leg below the hips, with a swinging and a lifting muscle."""
    knee = wc.add_joint(x, 4.0)
    foot = wc.add_joint(x, 0.0)
    wc.add_muscle(hip_front, knee)
    wc.add_muscle(knee, foot)
    wc.add_muscle(hip_back, foot)
    wc.add_muscle(hip_back, knee, False, 20.0, phase)
    wc.add_muscle(hip_front, foot, False, 20.0, phase + 0.5)
    return foot


def make_walker():
    wc = walker_creator()

    # the back: a braced triangle over three hip joints
    rear = wc.add_joint(0.0, 8.0)
    middle = wc.add_joint(5.0, 8.0)
    front = wc.add_joint(10.0, 8.0)
    top = wc.add_joint(5.0, 11.0)
    for p, q in ((rear, middle), (middle, front), (rear, top), (middle, top), (front, top)):
        wc.add_muscle(p, q)

    make_leg(wc, front, middle, 9.0, 0.0)
    make_leg(wc, rear, middle, 1.0, 0.5)

    return wc.get_walker()
