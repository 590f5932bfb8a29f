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
