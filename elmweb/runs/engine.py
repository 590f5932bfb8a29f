"""The one door from the web layer into the engine (``evolution``).

Everything the runs app needs from the engine goes through here: building a ``RunConfig``
from a run row, the scheduler (fresh or restored from the run's saved state), the mutation
operator (``evolution.loop.make_operator``), evaluation (``evolution.evaluate``), seed checks
and replay traces. No evolution logic lives here: only wiring and per-process caches (an
operator may hold a language model; an evaluator holds worker processes), so a worker pays
for them once, not once per batch.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evolution.sodarace import DEFAULT_BINS, DEFAULT_RANGES, DEFAULT_SETTINGS, TERRAINS

if TYPE_CHECKING:
    from evolution.evaluate import EvalConfig, Evaluator
    from evolution.loop import RunConfig
    from evolution.qd import Scheduler
    from evolution.types import Candidate, Result

    from elmweb.runs.models import Run

log = logging.getLogger(__name__)

#: Queue of the stepping task for operators that mutate in the task itself (CPU-bound).
CPU_QUEUE = "sim"
#: Queue of the stepping task for language-model operators (the worker holding the model).
LLM_QUEUE = "llm"
#: Operators that need no language model.
CPU_OPERATORS = frozenset({"gp"})
#: Fields of ``RunConfig`` that choose the operator; operators are cached per value of these.
OPERATOR_FIELDS = ("mutation", "model", "api_url", "api_model", "api_mode")
#: Optional operator options: a run row stores "" where ``RunConfig`` expects ``None``.
OPTIONAL_FIELDS = ("model", "api_url", "api_model", "api_mode")


class SeedError(ValueError):
    """A seed program builds no walker, or its walker cannot be simulated."""


def default_dims() -> list[int]:
    """Bins per descriptor (height, width, mass): the engine's default."""
    return list(DEFAULT_BINS)


def default_ranges() -> list[list[float]]:
    """Range per descriptor: the engine's default."""
    return [list(r) for r in DEFAULT_RANGES]


def terrain_names() -> list[str]:
    """The terrains a run may race on."""
    return list(TERRAINS)


def cell_key(cell: Sequence[int]) -> str:
    """The text key of an archive cell: ``(3, 4, 5) -> "3,4,5"``."""
    return ",".join(str(int(c)) for c in cell)


def step_queue(mutation: str) -> str:
    """The Celery queue a run's steps go to: ``llm`` for language-model operators."""
    return CPU_QUEUE if mutation in CPU_OPERATORS else LLM_QUEUE


# -- configuration -----------------------------------------------------------------------
def run_config(run: Run) -> RunConfig:
    """The engine's ``RunConfig`` for a run row.

    Raises:
        ValueError: If the run sets a field this engine's ``RunConfig`` does not have.
    """
    return make_config(
        seed=run.seed_name,
        terrain=run.terrain,
        evals=run.evals,
        batch=run.batch_size,
        mutation=run.mutation,
        rng_seed=run.rng_seed,
        sim_seconds=run.sim_seconds,
        dims=run.dims,
        ranges=run.ranges,
        model=run.model,
        api_url=run.api_url,
        api_model=run.api_model,
        api_mode=run.api_mode,
    )


def make_config(**values: Any) -> RunConfig:
    """Build a ``RunConfig``, keeping optional operator fields only if the engine knows them.

    Raises:
        ValueError: If a non-empty value names a field ``RunConfig`` does not have.
    """
    from evolution.loop import RunConfig

    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(k for k, v in values.items() if k not in known and v not in ("", None))
    if unknown:
        raise ValueError(
            f"this engine's RunConfig has no {', '.join(unknown)}; leave them empty, or update "
            "the engine (evolution.loop.RunConfig) to support them"
        )
    kept = {k: v for k, v in values.items() if k in known}
    for name in OPTIONAL_FIELDS:
        if name in kept and kept[name] == "":
            kept[name] = None
    kept["dims"] = tuple(int(n) for n in kept["dims"])
    kept["ranges"] = tuple((float(lo), float(hi)) for lo, hi in kept["ranges"])
    return RunConfig(**kept)


def check_config(config: RunConfig) -> dict[str, str]:
    """Check a configuration without running it.

    Returns:
        ``{field: message}`` for each problem; empty when the configuration is usable.
    """
    from evolution.qd import GridArchive
    from evolution.sodarace import DESCRIPTOR_NAMES

    errors: dict[str, str] = {}
    if config.terrain not in TERRAINS:
        errors["terrain"] = f"unknown terrain {config.terrain!r}; choose one of {', '.join(TERRAINS)}"
    try:
        GridArchive(dims=config.dims, ranges=config.ranges, names=DESCRIPTOR_NAMES)
    except (ValueError, TypeError) as exc:
        errors["dims"] = f"{exc} ({', '.join(DESCRIPTOR_NAMES)})"
    try:
        DEFAULT_SETTINGS.with_(sim_seconds=config.sim_seconds)
    except ValueError as exc:
        errors["sim_seconds"] = str(exc)
    problem = mutation_problem(config)
    if problem:
        errors["mutation"] = problem
    return errors


def mutation_problem(config: RunConfig) -> str | None:
    """Why ``config``'s mutation operator cannot be used, or ``None``.

    Nothing is loaded: the options are checked, and a local model's folder is checked for a
    model's files (``check_operator``). Workers read the same path, so it must exist where
    they run (the embedded model is in the package on every machine).
    """
    from evolution.mutation import check_operator

    try:
        check_operator(
            config.mutation, model=config.model, api_url=config.api_url,
            api_model=config.api_model, api_mode=config.api_mode,
        )  # fmt: skip
    except (ValueError, OSError) as exc:
        return str(exc)
    return None


# -- operators and schedulers ---------------------------------------------------------------
_operators: dict[tuple[Any, ...], Any] = {}
_operators_lock = threading.Lock()


def build_operator(config: RunConfig) -> Any:
    """Whatever ``evolution.loop.make_operator`` builds for this configuration."""
    from evolution.loop import make_operator

    return make_operator(config)


def operator_for(config: RunConfig) -> Any:
    """The operator for ``config``, built once per process for each operator choice.

    Only the last operator is kept, so a worker never holds two language models.
    """
    key = tuple(getattr(config, name, None) for name in OPERATOR_FIELDS)
    with _operators_lock:
        if key not in _operators:
            _operators.clear()
            log.info("building the %r mutation operator", config.mutation)
            _operators[key] = build_operator(config)
        return _operators[key]


def new_scheduler(config: RunConfig, *, seed_text: str, preamble: str) -> Scheduler:
    """A fresh scheduler for a run whose seed is ``seed_text`` (any seed, not only shipped ones)."""
    from evolution.loop import new_scheduler as engine_scheduler

    return engine_scheduler(config, seed_text=seed_text, preamble=preamble, operator=operator_for(config))


def restore_scheduler(state: dict[str, Any], config: RunConfig, *, operator: bool = True) -> Scheduler:
    """The scheduler saved by ``Scheduler.to_dict`` (after a run's last committed batch, or
    between ask and tell); ``operator=False`` restores it without its mutation operator, to
    tell a pending batch where no model should be loaded."""
    from evolution.qd import Scheduler, UniformEmitter

    return Scheduler.from_dict(state, emitter=UniformEmitter(), operator=operator_for(config) if operator else None)


def candidate(data: dict[str, Any]) -> Candidate:
    """A candidate saved with ``Candidate.to_dict`` (a pending batch's)."""
    from evolution.types import Candidate

    return Candidate.from_dict(data)


def result(data: dict[str, Any]) -> Result:
    """A result saved with ``Result.to_dict`` (an evaluated chunk's)."""
    from evolution.types import Result

    return Result.from_dict(data)


def genome_records(report: Any, scheduler: Scheduler) -> list[dict[str, Any]]:
    """The engine's plain record of every genome of a told batch."""
    from evolution.loop import genome_records as records

    return list(records(report, scheduler.archive))


# -- evaluation -----------------------------------------------------------------------------
_evaluators: dict[Any, Evaluator] = {}
_evaluators_lock = threading.Lock()


def eval_config(config: RunConfig) -> EvalConfig:
    """How a run's candidates are evaluated."""
    from evolution.evaluate import EvalConfig

    settings = DEFAULT_SETTINGS.with_(sim_seconds=config.sim_seconds)
    return EvalConfig(terrain=config.terrain, settings=settings)


def evaluate(candidates: Sequence[Candidate], config: RunConfig, *, workers: int) -> list[Result]:
    """Evaluate a batch with this process's evaluator (``workers`` processes, 0: in-process)."""
    from evolution.evaluate import Evaluator

    how = eval_config(config)
    with _evaluators_lock:
        evaluator = _evaluators.get((how, workers))
        if evaluator is None:
            close_evaluators()
            evaluator = _evaluators[(how, workers)] = Evaluator(how, workers=workers)
    return evaluator.evaluate(candidates)


def close_evaluators() -> None:
    """Stop the evaluation processes this process started."""
    for evaluator in _evaluators.values():
        evaluator.close()
    _evaluators.clear()


def check_seed(*, text: str, preamble: str = "") -> float:
    """Run a seed program in the sandbox and race its walker once on flat ground.

    Returns:
        Its fitness.

    Raises:
        SeedError: With the failure kind, the line (of ``text``) and the reason.
    """
    from evolution.evaluate import EvalConfig, evaluate_candidates
    from evolution.types import Candidate

    if not text.strip():
        raise SeedError("the program is empty: write a make_walker() that returns wc.get_walker()")
    (result,) = evaluate_candidates([Candidate(0, 0, text, preamble)], EvalConfig())
    if not result.valid:
        raise SeedError(f"{result.failure}: {result.failure_message}")
    return float(result.fitness)


def trace_bytes(*, text: str, preamble: str, config: RunConfig) -> bytes | None:
    """Re-run one genome with a replay trace; ``None`` if it no longer builds a walker.

    Evaluation is deterministic, so the replay is the run the archive scored.

    Returns:
        ``Trace.to_bytes()`` (already compressed), or ``None``.
    """
    from evolution.sandbox import ProgramFailure, evaluate_program
    from evolution.sodarace import SimulationDiverged, simulate
    from evolution.types import Candidate

    how = eval_config(config)
    spec = evaluate_program(Candidate(0, 0, text, preamble).program)
    if isinstance(spec, ProgramFailure):
        log.warning("no trace: the program failed when re-run (%s)", spec)
        return None
    try:
        evaluation = simulate(spec, how.terrain, how.settings, trace=True)
    except SimulationDiverged as exc:
        log.warning("no trace: the simulation diverged when re-run (%s)", exc)
        return None
    return evaluation.trace.to_bytes()


def trace_json(data: bytes) -> dict[str, Any]:
    """A stored trace as a dict for browsers (frames as base64 float32)."""
    from evolution.sodarace import Trace

    return Trace.from_bytes(bytes(data)).to_json_dict()


def shipped_seeds() -> list[Any]:
    """The seeds shipped with the engine (``evolution.sodarace.seeds.SEEDS``)."""
    from evolution.sodarace import seeds

    return list(seeds.SEEDS.values())
