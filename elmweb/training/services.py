"""What the training app does: datasets from stored genomes, creating and running training jobs.

Views and tasks call these; nothing here knows about HTTP. Training itself is
``evolution.lm.stage2`` (transformers' Trainer); this module feeds it the database's genomes,
reports the loss and progress into the job's row, and honours cancellation between steps.
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
    """Run a queued job: dataset, training, evaluation. Failures are recorded on the row.

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
    with _Heartbeat(model_id):
        return _train_job(job)


def _train_job(job: TrainedModel) -> str:
    from evolution.lm.stage2 import Stage2Config, evaluate_model, train_stage2

    model_id = job.pk
    folder = Path(settings.MODELS_DIR) / f"model-{model_id}"
    report = _report(model_id)
    try:
        records = dataset(list(job.runs.values_list("pk", flat=True)), threshold=job.threshold, heldout=job.heldout)
        data = write_dataset(records, folder / "dataset.jsonl")
        default = Stage2Config(out=folder / "model", dataset=data, base=Path(job.base))
        config = replace(default, init=job.init,
                         train=replace(default.train, time_limit_s=job.minutes * 60, max_steps=job.max_steps,
                                       logging_steps=max(1, min(default.train.logging_steps, job.max_steps // 20))))
        path = train_stage2(config, callbacks=[report])
        if report.cancelled:
            _update(model_id, status=TrainedModel.Status.CANCELLED, path=str(path), finished_at=timezone.now())
            return TrainedModel.Status.CANCELLED
        _update(model_id, status=TrainedModel.Status.EVALUATING, path=str(path), progress=0.0)
        samples = job.samples

        def sampled(k: int) -> None:
            _update(model_id, progress=k / samples)

        evaluation = evaluate_model(path, samples, workers=settings.EVAL_WORKERS, on_batch=sampled)
        _update(model_id, status=TrainedModel.Status.DONE, evaluation=evaluation, progress=1.0, finished_at=timezone.now())
        log.info("model %d: done, %.0f%% valid samples, %d niches", model_id, 100 * evaluation["valid_rate"], evaluation["niches"])
        return TrainedModel.Status.DONE
    except Exception as exc:  # any failure of the job is recorded on its row, the worker goes on
        log.exception("model %d: training failed", model_id)
        _update(model_id, status=TrainedModel.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now())
        return TrainedModel.Status.FAILED
