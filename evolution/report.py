"""Pictures and a summary of a finished (or running) stage-1 run directory."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from evolution.loop import RunDirectory
from evolution.qd import GridArchive

log = logging.getLogger(__name__)


def latest_archive(directory: RunDirectory) -> GridArchive:
    """The archive as of the last committed batch.

    Raises:
        FileNotFoundError: If the run has not committed a batch yet.
    """
    state = directory.load_state()
    if state is None:
        raise FileNotFoundError(f"{directory.path} has no completed batch yet; run it first")
    return GridArchive.from_dict(state["archive"])


def fitness_grid(archive: GridArchive) -> np.ndarray:
    """Fitness per cell, NaN where empty; shape ``archive.dims``."""
    grid = np.full(archive.dims, np.nan)
    for e in archive.elites():
        grid[e.cell] = e.fitness
    return grid


def summary(directory: RunDirectory) -> dict[str, Any]:
    """Headline figures of a run."""
    archive = latest_archive(directory)
    metrics = directory.metrics()
    config = directory.config()
    best = max(archive.elites(), key=lambda e: e.fitness)
    valid = sum(m["valid"] for m in metrics)
    evaluations = metrics[-1]["evaluations"] if metrics else 0
    return {
        "seed": config.seed,
        "terrain": config.terrain,
        "mutation": config.mutation,
        "evaluations": evaluations,
        "budget": config.evals,
        "batches": len(metrics),
        "valid_rate": valid / evaluations if evaluations else 0.0,
        "niches_filled": len(archive),
        "coverage": archive.coverage,
        "qd_score": archive.qd_score,
        "max_fitness": archive.max_fitness,
        "best_genome": best.genome_id,
        "best_descriptor": dict(zip(archive.names, best.descriptor)),
        "evals_per_s": evaluations / sum(m["wall_s"] for m in metrics) if metrics else 0.0,
    }


def draw(directory: RunDirectory, out: Path | None = None) -> list[Path]:
    """Write ``archive.png`` (height x width, max over mass, plus one panel per mass bin) and
    ``curves.png`` (coverage, QD score, max fitness, valid rate over evaluations).

    Returns:
        The written files.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out or directory.path)
    archive = latest_archive(directory)
    grid = fitness_grid(archive)
    vmax = np.nanmax(grid) if np.isfinite(grid).any() else 1.0
    (h0, h1), (w0, w1) = archive.ranges[0], archive.ranges[1]
    extent = (w0, w1, h0, h1)
    panels = grid.shape[2] if grid.ndim == 3 else 1
    cols = 4
    rows = 1 + -(-panels // cols)
    fig = plt.figure(figsize=(3.2 * cols, 3.0 * rows), constrained_layout=True)
    gs = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(gs[0, :2])
    with warnings.catch_warnings():  # all-empty columns are expected: NaN means "no elite"
        warnings.simplefilter("ignore", RuntimeWarning)
        projected = np.nanmax(grid, axis=2) if grid.ndim == 3 else grid
    im = ax.imshow(projected, origin="lower", extent=extent, aspect="auto", vmin=0, vmax=vmax, cmap="viridis")
    ax.set(title=f"max over mass: {len(archive)} / {archive.cells} niches", xlabel=archive.names[1], ylabel=archive.names[0])
    fig.colorbar(im, ax=ax, label="fitness (distance)")
    if grid.ndim == 3:
        m0, m1 = archive.ranges[2]
        step = (m1 - m0) / panels
        for k in range(panels):
            sub = fig.add_subplot(gs[1 + k // cols, k % cols])
            sub.imshow(grid[:, :, k], origin="lower", extent=extent, aspect="auto", vmin=0, vmax=vmax, cmap="viridis")
            sub.set_title(f"{archive.names[2]} {m0 + k * step:g}-{m0 + (k + 1) * step:g}", fontsize=8)
            sub.tick_params(labelsize=6)
    archive_png = out / "archive.png"
    fig.savefig(archive_png, dpi=90)
    plt.close(fig)

    metrics = directory.metrics()
    x = [m["evaluations"] for m in metrics]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), constrained_layout=True)
    for ax, key, label in zip(
        axes.flat,
        ("coverage", "qd_score", "max_fitness", "valid_rate"),
        ("niches filled (fraction)", "QD score", "max fitness", "valid-child rate"),
    ):
        ax.plot(x, [m[key] for m in metrics])
        ax.set(xlabel="evaluations", ylabel=label)
        ax.grid(alpha=0.3)
    curves_png = out / "curves.png"
    fig.savefig(curves_png, dpi=90)
    plt.close(fig)
    (out / "summary.json").write_text(json.dumps(summary(directory), indent=2))
    return [archive_png, curves_png, out / "summary.json"]
