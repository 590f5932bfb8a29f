"""Stage 2's training set: the good programs MAP-Elites found, from every stored genome.

A genome is kept when it built a scored walker whose fitness is at least ``threshold`` times
the best fitness found in its niche (the paper used 0.5 and 0.8), over all the runs given.
Programs are deduplicated by text (the fittest copy is kept). Whole niches are held out, so
an evaluation on the held-out split asks about shapes the model never saw.

``python -m evolution dataset --run DIR [--run DIR ...] --threshold 0.5 --out FILE.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProgramRecord:
    """One program of the dataset.

    Attributes:
        text: The program (defines ``make_walker()``).
        cell: Its niche: the archive cell of its descriptors.
        fitness: Its fitness.
        best_in_cell: The best fitness found in that niche (over the runs given).
        run: The run directory it came from.
        genome_id: Its id in that run.
        split: ``"train"`` or ``"heldout"``.
    """

    text: str
    cell: tuple[int, ...]
    fitness: float
    best_in_cell: float
    run: str
    genome_id: int
    split: str = "train"

    def to_dict(self) -> dict:
        return asdict(self) | {"cell": list(self.cell)}

    @classmethod
    def from_dict(cls, d: dict) -> ProgramRecord:
        return cls(**(d | {"cell": tuple(d["cell"])}))


def _genomes(run_dir: Path) -> Iterable[dict]:
    path = Path(run_dir) / "genomes.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory with genomes (no genomes.jsonl); pass the folder given to 'run --out'")
    with path.open() as f:
        for line in f:
            yield json.loads(line)


def _grid(run_dir: Path) -> tuple:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json); pass the folder given to 'run --out'")
    config = json.loads(path.read_text())
    return (tuple(config.get("dims", ())), tuple(map(tuple, config.get("ranges", ()))))


def _check(threshold: float, heldout: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (a fraction of the niche's best fitness), got {threshold}")
    if not 0.0 <= heldout < 1.0:
        raise ValueError(f"heldout must be in [0, 1), got {heldout}")


def heldout_cell(cell: Sequence[int], fraction: float, *, seed: int = 0) -> bool:
    """Whether a niche belongs to the held-out split (a stable hash of the cell and seed)."""
    digest = hashlib.sha256(f"{seed}:{','.join(map(str, cell))}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def build_dataset(
    run_dirs: Sequence[Path], *, threshold: float = 0.5, heldout: float = 0.1, seed: int = 0
) -> list[ProgramRecord]:
    """The programs of ``run_dirs`` within ``threshold`` of their niche's best, deduplicated.

    Raises:
        ValueError: If ``threshold`` is outside [0, 1], ``heldout`` outside [0, 1), no runs are
            given, or the runs use different archive grids (their niches would not match).
        FileNotFoundError: If a folder is not a run directory.
    """
    _check(threshold, heldout)
    if not run_dirs:
        raise ValueError("give at least one run directory")
    grids = {str(d): _grid(d) for d in run_dirs}
    if len(set(grids.values())) > 1:
        raise ValueError(f"the runs use different archive grids (dims/ranges), so their niches differ: {grids}; "
                         "export them separately")
    rows = ((str(d), g) for d in run_dirs for g in _genomes(d))
    return select_programs(rows, threshold=threshold, heldout=heldout, seed=seed)


def select_programs(
    genomes: Iterable[tuple[str, dict]], *, threshold: float = 0.5, heldout: float = 0.0, seed: int = 0
) -> list[ProgramRecord]:
    """The selection behind ``build_dataset``, for genomes from anywhere (files, a database).

    Args:
        genomes: ``(source, record)`` pairs; a record has ``id``, ``text``, ``cell`` and
            ``fitness`` (``cell``/``fitness`` ``None`` for failed genomes, which are skipped).
            All records must come from archives with the same grid.
        threshold: Keep programs with fitness >= ``threshold`` x their niche's best.
        heldout: Fraction of niches held out (``heldout_cell``).
        seed: Seed of the held-out split.
    """
    _check(threshold, heldout)
    best: dict[tuple[int, ...], float] = {}
    candidates: dict[str, ProgramRecord] = {}  # by normalised text: the fittest copy
    for source, g in genomes:
        if g.get("cell") is None or g.get("fitness") is None or g.get("text") is None:
            continue  # failed: no walker, no niche
        cell, fitness = tuple(g["cell"]), float(g["fitness"])
        best[cell] = max(best.get(cell, fitness), fitness)
        key = g["text"].strip()
        if key not in candidates or fitness > candidates[key].fitness:
            candidates[key] = ProgramRecord(g["text"], cell, fitness, 0.0, source, int(g["id"]))
    records = []
    for r in candidates.values():
        top = best[r.cell]
        if r.fitness >= threshold * top:
            split = "heldout" if heldout and heldout_cell(r.cell, heldout, seed=seed) else "train"
            records.append(ProgramRecord(r.text, r.cell, r.fitness, top, r.run, r.genome_id, split))
    records.sort(key=lambda r: (r.cell, -r.fitness))
    log.info("%d programs kept of %d distinct valid ones (threshold %.2f), %d niches, %d held out",
             len(records), len(candidates), threshold, len({r.cell for r in records}),
             sum(r.split == "heldout" for r in records))
    return records


def write_dataset(records: Iterable[ProgramRecord], path: Path) -> Path:
    """Write records as JSON lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.writelines(json.dumps(r.to_dict()) + "\n" for r in records)
    return path


def read_dataset(path: Path) -> list[ProgramRecord]:
    """Read a dataset written by ``write_dataset``."""
    with Path(path).open() as f:
        return [ProgramRecord.from_dict(json.loads(line)) for line in f if line.strip()]


__all__ = ["ProgramRecord", "build_dataset", "heldout_cell", "read_dataset", "select_programs", "write_dataset"]
