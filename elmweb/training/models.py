"""A trained model: the job that makes it (dataset, training, evaluation) and what it produced.

One row per training job, of one of two stages (``stage``):

- Stage 2: a Celery task on the ``train`` queue builds the dataset from the chosen runs' stored
  genomes, trains (the loss is appended to ``loss`` as it is logged, which the WebSocket at
  ``/ws/models/<id>/`` streams), then samples programs from the model and places them in a
  fresh archive (``evaluation``). The model folder is an ordinary Hugging Face folder at
  ``path``, selectable as a run's mutation model.
- Stage 3: from a finished stage-2 model (``parent``), the same task trains a terrain-
  conditioned inventor with PPO on a terrain set (each iteration's reward per terrain is
  appended to ``rewards``, streamed the same way), then evaluates it on each terrain against
  the best of N programs of the stage-2 model and of its dataset (``evaluation``, as
  ``evolution.lm.stage3.evaluate_stage3`` returns it, with the farthest-walking programs kept
  for replays).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from elmweb.runs.models import Run
from evolution.lm.terrain_sets import TERRAIN_SETS

BULK = ("archive", "distances", "programs")
"""Parts of an evaluation left out of its summary (a stage-2 archive holds ~1,000 programs)."""


def _lean(value: object) -> object:
    if isinstance(value, dict):
        return {k: _lean(v) for k, v in value.items() if k not in BULK}
    return value


class TrainedModel(models.Model):
    """A stage-2 model or a stage-3 inventor, and the job that trains it."""

    class Stage(models.IntegerChoices):
        LANGUAGE_MODEL = 2, "stage 2: a language model of the runs' programs"
        INVENTOR = 3, "stage 3: a terrain-conditioned inventor"

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
    stage = models.PositiveSmallIntegerField(choices=Stage.choices, default=Stage.LANGUAGE_MODEL)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="inventors",
                               help_text="Stage 3: the stage-2 model it starts from.")
    name = models.CharField(max_length=200, blank=True)
    runs = models.ManyToManyField(Run, related_name="trained_models", help_text="Runs whose genomes make the dataset.")
    threshold = models.FloatField(default=0.5, help_text="Keep programs within this fraction of their niche's best.")
    heldout = models.FloatField(default=0.1, help_text="Fraction of niches held out of training.")
    init = models.CharField(max_length=16, choices=Init.choices, default=Init.PRETRAINED)
    base = models.CharField(max_length=500, help_text="Model folder of the tokenizer (and weights, if pretrained).")
    minutes = models.FloatField(default=10.0, help_text="Training wall-time budget.")
    max_steps = models.PositiveIntegerField(default=2000)
    samples = models.PositiveIntegerField(default=256, help_text="Programs sampled for the evaluation "
                                          "(stage 3: N, the programs of each best-of-N baseline).")
    terrain_set = models.CharField(max_length=32, blank=True, choices=[(name, name) for name in TERRAIN_SETS],
                                   help_text="Stage 3: the terrains it trains on.")
    iterations = models.PositiveIntegerField(default=50, help_text="Stage 3: most PPO iterations.")
    batch_size = models.PositiveIntegerField(default=12, help_text="Stage 3: programs per PPO iteration, "
                                             "spread evenly over the terrains.")
    conditional = models.PositiveIntegerField(default=12, help_text="Stage 3: programs the inventor writes per "
                                              "terrain for the evaluation.")
    max_new_tokens = models.PositiveIntegerField(default=768, help_text="Stage 3: longest program, in tokens.")
    sim_seconds = models.FloatField(null=True, blank=True, help_text="Stage 3: measured simulated seconds per "
                                    "walker (empty: the simulator's default).")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    dataset_programs = models.PositiveIntegerField(default=0)
    dataset_heldout = models.PositiveIntegerField(default=0)
    dataset_niches = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0, help_text="Of the current phase, 0..1.")
    loss = models.JSONField(default=list, blank=True, help_text="[{step, loss}] as logged.")
    rewards = models.JSONField(default=list, blank=True, help_text="Stage 3: per PPO iteration, "
                               "{iteration, seconds, kl, terrains: {name: {score, valid_rate, best}}}.")
    path = models.CharField(max_length=500, blank=True, help_text="The model folder, once saved.")
    evaluation = models.JSONField(null=True, blank=True, help_text="Sampled programs placed in a fresh archive.")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    @property
    def terrains(self) -> tuple[str, ...]:
        """Stage 3: the terrains of its set (empty for stage 2)."""
        return TERRAIN_SETS.get(self.terrain_set, ())

    @staticmethod
    def evaluation_summary(evaluation: dict | None) -> dict | None:
        """An evaluation's figures without its bulk (``BULK``: archive, distances, programs)."""
        return _lean(evaluation) if evaluation else None  # type: ignore[return-value]

    def __str__(self) -> str:
        return f"model {self.pk} {self.name or ''} ({self.status})".replace("  ", " ")
