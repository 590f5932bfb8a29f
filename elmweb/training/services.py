"""What the training app does: datasets from stored genomes, creating and running training jobs.

Views and tasks call these; nothing here knows about HTTP. Training itself is
``evolution.lm.stage2`` (transformers' Trainer) for a stage-2 model and ``evolution.lm.stage3``
(PPO) for a stage-3 inventor; this module feeds stage 2 the database's genomes, reports the
loss (stage 2) or the reward per terrain (stage 3) and the progress into the job's row, and
honours cancellation between steps (stage 2) or PPO iterations (stage 3).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from elmweb.runs.models import Genome, Run
from elmweb.runs.services import Conflict
from elmweb.training.models import TrainedModel
from evolution.lm.dataset import ProgramRecord, select_programs, write_dataset

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0  # least seconds between progress writes during training
INVENTOR_DEFAULTS: dict[str, Any] = {
    "terrain_set": "walls-tunnel",  # the paper's first set
    "iterations": 50,  # most PPO iterations; the time limit usually ends training first
    "minutes": 5,  # training wall time: on two CPU cores the whole job takes about 10 minutes
    "batch_size": 12,  # programs per PPO iteration, four per terrain
    "samples": 32,  # N of best-of-N (the paper's 1,024 takes hours to sample on a CPU)
    "conditional": 12,  # programs the inventor writes per terrain for the evaluation
}
"""A stage-3 job's settings where none are given: small enough to finish on a laptop's CPU."""
KEEP_PROGRAMS = 3  # farthest-walking programs of each source and terrain kept for replays


# -- datasets ------------------------------------------------------------------------------------
def _genome_rows(runs: Sequence[Run]) -> Iterator[tuple[str, dict[str, Any]]]:
    rows = (
        Genome.objects.filter(run__in=runs, fitness__isnull=False, text__isnull=False)
        .exclude(cell="")
        .order_by("run_id", "gid")
        .values_list("run_id", "gid", "text", "cell", "fitness")
    )
    for run_id, gid, text, cell, fitness in rows.iterator(chunk_size=2000):
        yield f"run {run_id}", {"id": gid, "text": text, "cell": [int(c) for c in cell.split(",")], "fitness": fitness}


def dataset(run_ids: Sequence[int], *, threshold: float, heldout: float = 0.1) -> list[ProgramRecord]:
    """The stage-2 dataset of runs' stored genomes (see ``evolution.lm.dataset``).

    Raises:
        ValidationError: For unknown runs, runs on different archive grids, or a bad threshold.
    """
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        raise ValidationError({"runs": ["choose at least one run"]})
    runs = list(Run.objects.filter(pk__in=ids).only("id", "dims", "ranges"))
    missing = sorted(set(ids) - {r.pk for r in runs})
    if missing:
        raise ValidationError({"runs": [f"no run with id {', '.join(map(str, missing))}"]})
    if len({(tuple(r.dims), tuple(map(tuple, r.ranges))) for r in runs}) > 1:
        raise ValidationError({"runs": ["these runs use different archive grids (dims/ranges), so their niches differ; choose runs on one grid"]})
    try:
        return select_programs(_genome_rows(runs), threshold=threshold, heldout=heldout)
    except ValueError as exc:
        raise ValidationError({"threshold": [str(exc)]}) from exc


# -- jobs ----------------------------------------------------------------------------------------
def model_create(*, owner: AbstractBaseUser, runs: Sequence[int], **options: Any) -> TrainedModel:
    """Create a training job and queue it (after the transaction commits).

    Raises:
        ValidationError: If the dataset would hold no training program, the base model is
            missing, or an option is invalid.
    """
    from evolution.mutation import DEFAULT_DIFF_MODEL

    options = {k: v for k, v in options.items() if v not in (None, "")}
    base = Path(options.pop("base", DEFAULT_DIFF_MODEL))
    if not (base / "config.json").is_file():
        raise ValidationError({"base": [f"{base} is not a model folder (no config.json); build the embedded model "
                                        "with `make train-mutator`, or give another base"]})
    job = TrainedModel(owner=owner, base=str(base), **options)
    job.full_clean(exclude=["runs"])
    records = dataset(runs, threshold=job.threshold, heldout=job.heldout)
    train_set = [r for r in records if r.split == "train"]
    if not train_set:
        raise ValidationError({"runs": ["no program of these runs qualifies for training; let them run longer, "
                                        "lower the threshold, or hold out fewer niches"]})
    job.dataset_programs, job.dataset_heldout = len(train_set), len(records) - len(train_set)
    job.dataset_niches = len({r.cell for r in records})
    with transaction.atomic():
        job.save()
        job.runs.set(runs)
        transaction.on_commit(lambda: _enqueue(job.pk))
    log.info("model %d: queued (%d training programs from runs %s)", job.pk, job.dataset_programs, sorted(runs))
    return job


def inventor_create(*, owner: AbstractBaseUser, parent_id: int, **options: Any) -> TrainedModel:
    """Create a stage-3 job that starts from the finished stage-2 model ``parent_id`` and queue it.

    Settings not given are ``INVENTOR_DEFAULTS``; the job's runs are its parent's.

    Raises:
        TrainedModel.DoesNotExist: Unknown parent.
        Conflict: The parent has not finished training.
        ValidationError: The parent is not a stage-2 model or its folder is gone, or an option
            is invalid (e.g. fewer programs per iteration than terrains).
    """
    parent = TrainedModel.objects.get(pk=parent_id)
    if parent.stage != TrainedModel.Stage.LANGUAGE_MODEL:
        raise ValidationError({"__all__": [f"model {parent_id} is a stage-3 inventor; stage 3 starts from a "
                                           "stage-2 model: start it from that model's page"]})
    if parent.status != TrainedModel.Status.DONE:
        raise Conflict(f"model {parent_id} is {parent.status}; stage 3 starts from a stage-2 model that finished "
                       "training: wait until it is done (or train another)")
    if not (Path(parent.path) / "config.json").is_file():
        raise ValidationError({"__all__": [f"the folder of model {parent_id} ({parent.path}) is gone; train the "
                                           "stage-2 model again"]})
    given = {k: v for k, v in options.items() if v not in (None, "")}
    job = TrainedModel(owner=owner, stage=TrainedModel.Stage.INVENTOR, parent=parent, base=parent.path,
                       **{**INVENTOR_DEFAULTS, **given})
    job.full_clean(exclude=["runs"])
    if job.batch_size < len(job.terrains):
        raise ValidationError({"batch_size": [f"at least {len(job.terrains)}: every iteration writes programs for each "
                                              f"terrain of {job.terrain_set} ({', '.join(job.terrains)})"]})
    with transaction.atomic():
        job.save()
        job.runs.set(parent.runs.all())
        transaction.on_commit(lambda: _enqueue(job.pk))
    log.info("model %d: stage 3 from model %d on %s queued", job.pk, parent_id, job.terrain_set)
    return job


def _enqueue(model_id: int) -> None:
    from elmweb.training.tasks import train_model

    train_model.apply_async(args=(model_id,), queue="train")


def model_cancel(*, model_id: int, user: AbstractBaseUser) -> TrainedModel:
    """Ask a job to stop; a queued job is cancelled at once, a training one after its step.

    Raises:
        TrainedModel.DoesNotExist: Unknown id.
        PermissionDenied: Not the owner (or a superuser).
        Conflict: The job already ended.
    """
    with transaction.atomic():
        job = TrainedModel.objects.select_for_update().get(pk=model_id)
        if job.owner_id != user.pk and not user.is_superuser:
            raise PermissionDenied("only the model's owner may cancel its training")
        if job.status in TrainedModel.TERMINAL:
            raise Conflict(f"model {model_id} is already {job.status}")
        job.cancel_requested = True
        if job.status == TrainedModel.Status.QUEUED:
            job.status, job.finished_at = TrainedModel.Status.CANCELLED, timezone.now()
        job.save(update_fields=["cancel_requested", "status", "finished_at", "updated_at"])
    return job


def _update(model_id: int, **fields: Any) -> None:
    TrainedModel.objects.filter(pk=model_id).update(updated_at=timezone.now(), **fields)


def _report(model_id: int) -> Any:
    """A ``TrainerCallback`` that writes a job's loss and progress into its row and stops on
    cancellation (``.cancelled`` says whether it did). transformers is imported here, not at
    module level, so workers that never train do not load it."""
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def __init__(self, model_id: int) -> None:
            self.model_id = model_id
            self.loss: list[dict[str, float]] = []
            self.last = 0.0
            self.cancelled = False

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.loss.append({"step": state.global_step, "loss": float(logs["loss"])})
                _update(self.model_id, loss=self.loss)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.monotonic() - self.last < PROGRESS_EVERY_S:
                return
            self.last = time.monotonic()
            _update(self.model_id, progress=min(1.0, state.global_step / max(1, state.max_steps)))
            if TrainedModel.objects.filter(pk=self.model_id, cancel_requested=True).exists():
                log.info("model %d: cancelled at step %d", self.model_id, state.global_step)
                self.cancelled = True
                control.should_training_stop = True

    return _Report(model_id)


class _Heartbeat(threading.Thread):
    """Touches a job's row every ``TRAIN_HEARTBEAT_S`` while its task runs (whatever the phase),
    so the watchdog can tell a job whose worker died from a slow one."""

    def __init__(self, model_id: int) -> None:
        super().__init__(name=f"model-{model_id}-heartbeat", daemon=True)
        self.model_id = model_id
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(settings.TRAIN_HEARTBEAT_S):
            try:
                _update(self.model_id)
            except DatabaseError:
                log.warning("model %d: heartbeat failed; trying again", self.model_id, exc_info=True)
            finally:
                close_old_connections()

    def __enter__(self) -> _Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join()


def models_recover_stale() -> list[int]:
    """The watchdog's part for training jobs: fail the ones whose worker stopped.

    A job in ``training`` or ``evaluating`` whose row has not been touched for
    ``TRAIN_STALE_AFTER_S`` lost its worker (killed, restarted); its partial model is useless,
    so it is marked failed with a message saying to start it again.

    Returns:
        The ids of the jobs marked failed.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.TRAIN_STALE_AFTER_S)
    active = (TrainedModel.Status.TRAINING, TrainedModel.Status.EVALUATING)
    stale = list(TrainedModel.objects.filter(status__in=active, updated_at__lt=cutoff).values_list("pk", flat=True))
    failed = [pk for pk in stale if TrainedModel.objects.filter(pk=pk, status__in=active, updated_at__lt=cutoff).update(
        status=TrainedModel.Status.FAILED, finished_at=timezone.now(), updated_at=timezone.now(),
        error="the worker training this model stopped (killed or restarted); start the training again")]
    if failed:
        log.warning("watchdog: training jobs %s lost their worker; marked failed", failed)
    return failed


def model_train(*, model_id: int) -> str:
    """Run a queued job: training and evaluation of its stage. Failures are recorded on the row.

    Returns:
        The job's final status.
    """
    with transaction.atomic():
        job = TrainedModel.objects.select_for_update().get(pk=model_id)
        if job.status != TrainedModel.Status.QUEUED:
            log.info("model %d: %s, not training it", model_id, job.status)
            return job.status
        job.status, job.started_at, job.error = TrainedModel.Status.TRAINING, timezone.now(), ""
        job.save(update_fields=["status", "started_at", "error", "updated_at"])
    train = _train_inventor if job.stage == TrainedModel.Stage.INVENTOR else _train_language_model
    with _Heartbeat(model_id):
        try:
            return train(job)
        except Exception as exc:  # any failure of the job is recorded on its row, the worker goes on
            log.exception("model %d: training failed", model_id)
            _update(model_id, status=TrainedModel.Status.FAILED, error=f"{type(exc).__name__}: {exc}",
                    finished_at=timezone.now())
            return TrainedModel.Status.FAILED


def _train_language_model(job: TrainedModel) -> str:
    """Stage 2: dataset, training, then samples placed in a fresh archive."""
    from evolution.lm.stage2 import Stage2Config, evaluate_model, train_stage2

    model_id = job.pk
    folder = Path(settings.MODELS_DIR) / f"model-{model_id}"
    report = _report(model_id)
    records = dataset(list(job.runs.values_list("pk", flat=True)), threshold=job.threshold, heldout=job.heldout)
    data = write_dataset(records, folder / "dataset.jsonl")
    default = Stage2Config(out=folder / "model", dataset=data, base=Path(job.base))
    config = replace(default, init=job.init,
                     train=replace(default.train, time_limit_s=job.minutes * 60, max_steps=job.max_steps,
                                   logging_steps=max(1, min(default.train.logging_steps, job.max_steps // 20))))
    path = train_stage2(config, callbacks=[report])
    if report.cancelled:
        return _cancelled(model_id, path)
    _update(model_id, status=TrainedModel.Status.EVALUATING, path=str(path), progress=0.0)
    samples = job.samples

    def sampled(k: int) -> None:
        _update(model_id, progress=k / samples)

    evaluation = evaluate_model(path, samples, workers=settings.EVAL_WORKERS, on_batch=sampled)
    _update(model_id, status=TrainedModel.Status.DONE, evaluation=evaluation, progress=1.0, finished_at=timezone.now())
    log.info("model %d: done, %.0f%% valid samples, %d niches", model_id, 100 * evaluation["valid_rate"], evaluation["niches"])
    return TrainedModel.Status.DONE


def _train_inventor(job: TrainedModel) -> str:
    """Stage 3: PPO on the job's terrains from its stage-2 model, then the best-of-N evaluation."""
    from evolution.lm.stage3 import Stage3Config, evaluate_stage3, train_stage3

    model_id = job.pk
    config = Stage3Config(out=Path(settings.MODELS_DIR) / f"model-{model_id}" / "model", model=Path(job.base),
                          terrains=job.terrains, iterations=job.iterations, time_limit_s=job.minutes * 60,
                          batch_size=job.batch_size, max_new_tokens=job.max_new_tokens, sim_seconds=job.sim_seconds,
                          workers=settings.EVAL_WORKERS)
    report = _IterationReport(job)
    path = train_stage3(config, on_iteration=report)
    if report.cancelled:
        return _cancelled(model_id, path)
    _update(model_id, status=TrainedModel.Status.EVALUATING, path=str(path), progress=0.0)
    total = job.samples + job.conditional * len(job.terrains)
    sampled: dict[str, int] = {}

    def progress(what: str, done: int, _of: int) -> None:
        sampled[what] = done
        _update(model_id, progress=min(1.0, sum(sampled.values()) / total))

    evaluation = evaluate_stage3(path, samples=job.samples, conditional=job.conditional, workers=settings.EVAL_WORKERS,
                                 on_progress=progress, keep=KEEP_PROGRAMS)
    _update(model_id, status=TrainedModel.Status.DONE, evaluation=evaluation, progress=1.0, finished_at=timezone.now())
    log.info("model %d: done, the inventor beats best-of-%d on %d of %d terrains", model_id, job.samples,
             evaluation["beats"], evaluation["total"])
    return TrainedModel.Status.DONE


class _IterationReport:
    """``train_stage3``'s ``on_iteration``: appends each iteration's reward per terrain to the
    job's row with the progress, and stops training (returns True) once a cancel is requested."""

    def __init__(self, job: TrainedModel) -> None:
        self.model_id, self.iterations, self.seconds = job.pk, job.iterations, job.minutes * 60
        self.points: list[dict[str, Any]] = []
        self.cancelled = False

    def __call__(self, stats: dict[str, Any]) -> bool:
        self.points.append({
            "iteration": stats["iteration"], "seconds": round(stats["seconds"], 2), "kl": stats["kl"],
            "terrains": {name: {k: t[k] for k in ("score", "valid_rate", "best")} for name, t in stats["terrains"].items()},
        })
        progress = max(stats["iteration"] / self.iterations, stats["seconds"] / self.seconds)
        _update(self.model_id, rewards=self.points, progress=min(1.0, progress))
        if TrainedModel.objects.filter(pk=self.model_id, cancel_requested=True).exists():
            log.info("model %d: cancelled after PPO iteration %d", self.model_id, stats["iteration"])
            self.cancelled = True
        return self.cancelled


def _cancelled(model_id: int, path: Path) -> str:
    """End a job whose training stopped on a cancel; the model trained so far is kept."""
    _update(model_id, status=TrainedModel.Status.CANCELLED, path=str(path), finished_at=timezone.now())
    return TrainedModel.Status.CANCELLED
