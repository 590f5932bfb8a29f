"""Seed programs: the hand-written walkers evolution starts from.

Each seed is program text in the paper's API form (``walker_creator`` is provided by the
environment; ``make_walker()`` returns ``wc.get_walker()``). The files here are data, read as
text and never imported. ``Seed.text`` is what evolution edits; ``Seed.preamble`` is fixed
helper code run before it. The two CPPN seeds are one program (``_cppn.py``, the
``query_cppn`` helper, and ``cppn.py``, the ``make_walker`` that calls it): CPPN-Fixed keeps
the helper in its preamble, out of evolution's reach; CPPN-Mutable carries it in its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Seed:
    """A named seed program.

    Attributes:
        name: Identifier used on the command line and in the database.
        title: Human name.
        description: One sentence.
        text: The mutable program text.
        preamble: Fixed code run before ``text`` (not shown to the mutation operator).
    """

    name: str
    title: str
    description: str
    text: str
    preamble: str = ""

    @property
    def program(self) -> str:
        """The full text to run: preamble, then the mutable text."""
        return f"{self.preamble}\n\n{self.text}" if self.preamble else self.text


def _read(filename: str) -> str:
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")


_CATALOGUE = (
    ("square", "Square", "The paper's Square: a box with a centre joint and three active spokes."),
    ("radial", "Radial", "The paper's Radial: a rim of joints around a centre, spokes active."),
    ("cppn_fixed", "CPPN-Fixed", "A grid connected by functions of coordinates; helper fixed."),
    ("cppn_mutable", "CPPN-Mutable", "A grid connected by functions of coordinates; helper mutable."),
    ("wheel", "Wheel", "Our design: a rim whose spokes pulse in a travelling wave, so it rolls."),
    ("galloper", "Galloper", "Our design: a stiff back on two legs that swing out of phase."),
)


def _load() -> dict[str, Seed]:
    helper, body = _read("_cppn.py"), _read("cppn.py")
    texts = {
        "cppn_fixed": ("# CPPN-Fixed: query_cppn is supplied by the environment.\n\n" + body, helper),
        "cppn_mutable": (helper + "\n\n" + body, ""),
    }
    seeds = {}
    for name, title, description in _CATALOGUE:
        text, preamble = texts[name] if name in texts else (_read(f"{name}.py"), "")
        seeds[name] = Seed(name, title, description, text, preamble)
    return seeds


SEEDS: dict[str, Seed] = _load()


def get_seed(name: str) -> Seed:
    """Return the seed called ``name`` (``-`` and ``_`` are interchangeable, any case).

    Raises:
        ValueError: For an unknown name; the message lists the valid ones.
    """
    key = name.lower().replace("-", "_")
    try:
        return SEEDS[key]
    except KeyError:
        raise ValueError(f"unknown seed {name!r}; choose one of {', '.join(SEEDS)}") from None
