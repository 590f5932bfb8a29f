"""A trained model: the job that makes it (dataset, training, evaluation) and what it produced.

One row per stage-2 training job. A Celery task on the ``train`` queue builds the dataset from
the chosen runs' stored genomes, trains (the loss is appended to ``loss`` as it is logged, which
the WebSocket at ``/ws/models/<id>/`` streams), then samples programs from the model and places
them in a fresh archive (``evaluation``). The model folder is an ordinary Hugging Face folder at
``path``, selectable as a run's mutation model.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from elmweb.runs.models import Run


class TrainedModel(models.Model):
    """A stage-2 model and the job that trains it."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        TRAINING = "training"
        EVALUATING = "evaluating"
        DONE = "done"
        CANCELLED = "cancelled"
        FAILED = "failed"

    TERMINAL = (Status.DONE, Status.CANCELLED, Status.FAILED)

    class Init(models.TextChoices):
        PRETRAINED = "pretrained"
        SCRATCH = "scratch"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trained_models")
    name = models.CharField(max_length=200, blank=True)
    runs = models.ManyToManyField(Run, related_name="trained_models", help_text="Runs whose genomes make the dataset.")
    threshold = models.FloatField(default=0.5, help_text="Keep programs within this fraction of their niche's best.")
    heldout = models.FloatField(default=0.1, help_text="Fraction of niches held out of training.")
    init = models.CharField(max_length=16, choices=Init.choices, default=Init.PRETRAINED)
    base = models.CharField(max_length=500, help_text="Model folder of the tokenizer (and weights, if pretrained).")
    minutes = models.FloatField(default=10.0, help_text="Training wall-time budget.")
    max_steps = models.PositiveIntegerField(default=2000)
    samples = models.PositiveIntegerField(default=256, help_text="Programs sampled for the evaluation.")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    dataset_programs = models.PositiveIntegerField(default=0)
    dataset_heldout = models.PositiveIntegerField(default=0)
    dataset_niches = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0, help_text="Of the current phase, 0..1.")
    loss = models.JSONField(default=list, blank=True, help_text="[{step, loss}] as logged.")
    path = models.CharField(max_length=500, blank=True, help_text="The model folder, once saved.")
    evaluation = models.JSONField(null=True, blank=True, help_text="Sampled programs placed in a fresh archive.")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    @staticmethod
    def evaluation_summary(evaluation: dict | None) -> dict | None:
        """An evaluation's figures without its archive (which can hold ~1,000 programs)."""
        return {k: v for k, v in evaluation.items() if k != "archive"} if evaluation else None

    def __str__(self) -> str:
        return f"model {self.pk} {self.name or ''} ({self.status})".replace("  ", " ")
