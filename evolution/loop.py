"""Stage 1 headless: the MAP-Elites loop with files as the record, resumable at any batch.

A run directory holds:
    config.json     the run's configuration (written once)
    genomes.jsonl   one line per evaluated genome: program, parent, diff, outcome, scores
    metrics.jsonl   one line per batch (``BatchMetrics`` plus wall time and evals/s)
    state.json      the scheduler's state after the last completed batch (atomic rename)
    archive/        snapshots ``batch-<n>.json`` every ``snapshot_every`` batches and at the end

A batch is committed by writing its genome and metric lines, then ``state.json``. On resume,
lines of a batch that never reached ``state.json`` are dropped and that batch is asked again,
which reproduces it exactly (the RNG state is part of the saved state).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from evolution.evaluate import EvalConfig, Evaluator
from evolution.qd import BatchReport, GridArchive, Scheduler, UniformEmitter
from evolution.sodarace import DEFAULT_BINS, DEFAULT_RANGES, DEFAULT_SETTINGS, DESCRIPTOR_NAMES, seeds

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything that defines a stage-1 run.

    Attributes:
        seed: Seed program name (``evolution.sodarace.seeds``).
        terrain: Terrain name.
        evals: Evaluation budget (the seed counts as one).
        batch: Children per batch.
        mutation: Operator name (``"gp"``).
        rng_seed: Seed of the run's random generator.
        sim_seconds: Measured simulated seconds per evaluation.
        dims: Bins per descriptor dimension.
        ranges: Range per descriptor dimension.
        snapshot_every: Write an archive snapshot every this many batches.
        model: Model folder of a language-model mutation (``None``: the embedded diff model).
        api_url: Base URL of an OpenAI-compatible server to use instead of a local model.
        api_model: Model name sent to that server.
        api_mode: ``"completions"`` or ``"chat"`` for that server (``None``: completions).
            The API key is never part of the configuration: it comes from ``OPENAI_API_KEY``.
    """

    seed: str = "square"
    terrain: str = "flat"
    evals: int = 10_000
    batch: int = 64
    mutation: str = "gp"
    rng_seed: int = 0
    sim_seconds: float = DEFAULT_SETTINGS.sim_seconds
    dims: tuple[int, ...] = DEFAULT_BINS
    ranges: tuple[tuple[float, float], ...] = DEFAULT_RANGES
    snapshot_every: int = 20
    model: str | None = None
    api_url: str | None = None
    api_model: str | None = None
    api_mode: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["dims"] = tuple(data["dims"])
        data["ranges"] = tuple(tuple(r) for r in data["ranges"])
        return cls(**data)


def make_operator(config: RunConfig | str) -> Any:
    """The mutation operator of ``config`` (or the one called ``config``, with default options).

    A language model is loaded once per process, so calling this again is cheap.

    Raises:
        ValueError: For an unknown operator (the message lists the known ones) or options that
            do not fit it.
        FileNotFoundError: If its model folder does not exist.
    """
    from evolution.mutation import make_operator as build

    if isinstance(config, str):
        return build(config)
    return build(
        config.mutation, model=config.model, api_url=config.api_url,
        api_model=config.api_model, api_mode=config.api_mode,
    )


def new_scheduler(
    config: RunConfig, *, seed_text: str | None = None, preamble: str = "", operator: Any = None
) -> Scheduler:
    """A fresh scheduler for ``config``.

    Args:
        config: The run's configuration.
        seed_text: The seed program; default: the shipped seed named ``config.seed`` (with its
            preamble). The web lab passes the program stored with its run.
        preamble: Fixed code before ``seed_text`` (only with ``seed_text``).
        operator: The mutation operator; default: ``make_operator(config)``.
    """
    if seed_text is None:
        seed = seeds.get_seed(config.seed)
        seed_text, preamble = seed.text, seed.preamble
    archive = GridArchive(dims=config.dims, ranges=config.ranges, names=DESCRIPTOR_NAMES)
    return Scheduler(
        archive, UniformEmitter(), operator if operator is not None else make_operator(config),
        seed_text=seed_text, preamble=preamble, rng_seed=config.rng_seed,
    )


def genome_records(report: BatchReport, archive: GridArchive) -> Iterator[dict[str, Any]]:
    """One plain record per genome of a told batch."""
    for cand, res, outcome in zip(report.candidates, report.results, report.outcomes):
        record: dict[str, Any] = {
            "id": cand.id,
            "batch": cand.batch,
            "parent_id": cand.parent_id,
            "operator": cand.operator,
            "message": cand.message,
            "diff": cand.diff,
            "text": cand.text,
            "outcome": outcome.value,
            "failure": res.failure,
            "failure_message": res.failure_message,
            "fitness": res.fitness,
            "descriptor": list(res.descriptor) if res.descriptor else None,
            "cell": list(archive.cell_of(res.descriptor)) if res.descriptor else None,
            "warnings": list(res.warnings),
        }
        yield record


class RunDirectory:
    """Reads and writes one run's files (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config_file = self.path / "config.json"
        self.genomes_file = self.path / "genomes.jsonl"
        self.metrics_file = self.path / "metrics.jsonl"
        self.state_file = self.path / "state.json"
        self.archive_dir = self.path / "archive"

    def create(self, config: RunConfig) -> None:
        """Start a new run here.

        Raises:
            FileExistsError: If the directory already holds a run (resume it instead).
        """
        if self.config_file.exists():
            raise FileExistsError(f"{self.path} already holds a run; continue it with 'run --resume {self.path}' or choose another --out")
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(asdict(config), indent=2))

    def config(self) -> RunConfig:
        """The run's configuration.

        Raises:
            FileNotFoundError: If this is not a run directory.
        """
        if not self.config_file.exists():
            raise FileNotFoundError(f"{self.path} is not a run directory (no config.json); start one with 'run --out {self.path}'")
        return RunConfig.from_dict(json.loads(self.config_file.read_text()))

    def load_state(self) -> dict[str, Any] | None:
        """The saved scheduler state, or ``None`` before the first batch."""
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else None

    def truncate_to(self, batches: int) -> None:
        """Drop genome and metric lines of batches ``>= batches`` (never committed)."""
        for path in (self.genomes_file, self.metrics_file):
            if path.exists():
                keep = [line for line in path.read_text().splitlines(keepends=True) if json.loads(line)["batch"] < batches]
                path.write_text("".join(keep))

    def commit(self, report: BatchReport, scheduler: Scheduler, extra: dict[str, Any]) -> None:
        """Append a told batch's lines, then save the state (the commit point)."""
        with self.genomes_file.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in genome_records(report, scheduler.archive))
        with self.metrics_file.open("a") as f:
            f.write(json.dumps(report.metrics.to_dict() | extra) + "\n")
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(scheduler.to_dict()))
        os.replace(tmp, self.state_file)

    def snapshot(self, scheduler: Scheduler) -> Path:
        """Write the archive as ``archive/batch-<n>.json``."""
        path = self.archive_dir / f"batch-{scheduler.batch:05d}.json"
        path.write_text(json.dumps(scheduler.archive.to_dict()))
        return path

    def metrics(self) -> list[dict[str, Any]]:
        """Every committed batch's metrics."""
        if not self.metrics_file.exists():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines()]


@dataclass
class Progress:
    """What a progress callback sees after each batch."""

    evaluations: int
    budget: int
    coverage: float
    qd_score: float
    max_fitness: float
    evals_per_s: float
    valid_rate: float
    extra: dict[str, Any] = field(default_factory=dict)


def run(
    directory: RunDirectory,
    *,
    workers: int = 2,
    on_batch: Callable[[Progress], None] | None = None,
) -> Scheduler:
    """Run (or continue) the run in ``directory`` until its budget is spent.

    ``KeyboardInterrupt`` between or during batches stops cleanly: the batch in flight is
    discarded and will be redone identically by a resume.

    Returns:
        The scheduler as of the last committed batch.
    """
    config = directory.config()
    state = directory.load_state()
    if state is None:
        scheduler = new_scheduler(config)
        directory.truncate_to(0)
    else:
        scheduler = Scheduler.from_dict(state, emitter=UniformEmitter(), operator=make_operator(config))
        directory.truncate_to(scheduler.batch)
        log.info("resuming %s at batch %d (%d evaluations done)", directory.path, scheduler.batch, scheduler.evaluations)
    eval_config = EvalConfig(terrain=config.terrain, settings=DEFAULT_SETTINGS.with_(sim_seconds=config.sim_seconds))
    with Evaluator(eval_config, workers=workers) as evaluator:
        try:
            while scheduler.evaluations < config.evals:
                started = time.perf_counter()
                candidates = scheduler.ask(min(config.batch, config.evals - scheduler.evaluations))
                asked = time.perf_counter()
                report = scheduler.tell(evaluator.evaluate(candidates))
                wall = time.perf_counter() - started
                extra = {"wall_s": wall, "ask_s": asked - started, "evals_per_s": len(candidates) / wall if wall > 0 else 0.0}
                directory.commit(report, scheduler, extra)
                if scheduler.batch % config.snapshot_every == 0:
                    directory.snapshot(scheduler)
                if on_batch is not None:
                    m = report.metrics
                    on_batch(Progress(m.evaluations, config.evals, m.coverage, m.qd_score, m.max_fitness, extra["evals_per_s"], m.valid_rate))
        except KeyboardInterrupt:
            log.warning("interrupted: stopped after batch %d; continue with 'run --resume %s'", scheduler.batch, directory.path)
            if scheduler.pending:
                state = directory.load_state()
                return Scheduler.from_dict(state, emitter=UniformEmitter(), operator=make_operator(config)) if state else new_scheduler(config)
            return scheduler
    directory.snapshot(scheduler)
    return scheduler
