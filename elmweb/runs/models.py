"""Models of the runs app: seeds, runs, every genome, its evaluation, the archive, events.

A run is a row with a status, stepped one batch at a time by a Celery task (see
``services.run_step``). Everything a batch produces (genomes, evaluations, archive cells, a
metric row, events) is written in one transaction keyed by ``(run, batch)``; the unique
constraints below make a retried batch fail instead of writing twice.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from elmweb.runs import engine


class Seed(models.Model):
    """A walker program runs start from, checked in the sandbox before it is saved.

    ``text`` is what mutation edits; ``preamble`` is fixed code run before it (the
    CPPN-Fixed seed's helper). ``fitness`` is the seed's own score on flat ground, recorded
    by the check, so the admin can preview it.
    """

    name = models.SlugField(max_length=64, unique=True, help_text="Identifier used by the API.")
    title = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    text = models.TextField(help_text="The program mutation edits; it defines make_walker().")
    preamble = models.TextField(blank=True, help_text="Fixed code run before the text.")
    enabled = models.BooleanField(default=True, help_text="Offered for new runs.")
    builtin = models.BooleanField(default=False, editable=False)
    fitness = models.FloatField(
        null=True, blank=True, editable=False, help_text="Distance on flat ground when checked."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Run the program in the sandbox and simulate its walker once.

        Raises:
            ValidationError: On ``text``, with the line and the reason, if it builds no
                walker or its walker cannot be simulated.
        """
        key = (self.text, self.preamble)
        if getattr(self, "_checked", None) == key:
            return
        try:
            self.fitness = engine.check_seed(text=self.text, preamble=self.preamble)
        except engine.SeedError as exc:
            raise ValidationError({"text": str(exc)}) from exc
        self._checked = key

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save after the sandbox check (skipped when ``clean`` already checked this text).

        Raises:
            ValidationError: If the program is broken; nothing is saved.
        """
        self.clean()
        super().save(*args, **kwargs)


class Run(models.Model):
    """One MAP-Elites run: its configuration, status, counters and the engine's state."""

    class Status(models.TextChoices):
        CREATED = "created"
        RUNNING = "running"
        PAUSING = "pausing"  # pause requested; the batch in flight finishes first
        PAUSED = "paused"
        FINISHED = "finished"
        FAILED = "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=200, blank=True)
    cloned_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones"
    )
    # Configuration (read by engine.run_config). The seed's program is copied, so editing
    # or deleting the seed later never changes a run.
    seed = models.ForeignKey(Seed, null=True, blank=True, on_delete=models.SET_NULL)
    seed_name = models.CharField(max_length=64)
    seed_text = models.TextField()
    seed_preamble = models.TextField(blank=True)
    terrain = models.CharField(max_length=32, default="flat")
    mutation = models.CharField(max_length=32, default="gp")
    model = models.CharField(max_length=300, blank=True, help_text="LLM operators: model path.")
    api_url = models.CharField(max_length=300, blank=True, help_text="LLM operators: server.")
    api_model = models.CharField(max_length=200, blank=True, help_text="LLM operators: name.")
    api_mode = models.CharField(
        max_length=16, blank=True, help_text="LLM operators: 'completions' or 'chat'."
    )
    batch_size = models.PositiveIntegerField(default=64)
    evals = models.PositiveIntegerField(default=10_000, help_text="Evaluation budget.")
    sim_seconds = models.FloatField(default=10.0)
    dims = models.JSONField(default=engine.default_dims)
    ranges = models.JSONField(default=engine.default_ranges)
    rng_seed = models.BigIntegerField(default=0)
    # Status
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATED)
    error = models.TextField(blank=True)
    # Counters, as of the last committed batch.
    batches = models.PositiveIntegerField(default=0)
    evaluations = models.PositiveIntegerField(default=0)
    valid = models.PositiveIntegerField(default=0)
    niches_filled = models.PositiveIntegerField(default=0)
    max_fitness = models.FloatField(default=0.0)
    qd_score = models.FloatField(default=0.0)
    # The scheduler's state after the last committed batch (Scheduler.to_dict()).
    state = models.JSONField(null=True, blank=True, editable=False)
    # Stepping: the token of the step holding the run, and its last sign of life.
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Replays owed: {batch: when its trace task was queued (ISO)} for trace tasks not done yet.
    # The watchdog queues a batch's task again when it is older than RUN_STALE_AFTER_S (a killed
    # worker's reserved messages are lost).
    trace_batches = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    ACTIVE = (Status.RUNNING, Status.PAUSING)
    CONTROLLABLE = (Status.CREATED, Status.RUNNING, Status.PAUSING, Status.PAUSED)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
            models.Index(fields=["owner", "-id"], name="run_owner"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.name or self.seed_name})"


class Genome(models.Model):
    """One program a run evaluated: the seed, a child, or a failed mutation.

    ``gid`` is the engine's genome id (0 is the seed), unique within the run.
    """

    class Outcome(models.TextChoices):
        NEW_CELL = "new_cell"
        IMPROVED = "improved"
        NOT_KEPT = "not_kept"
        FAILED = "failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="genomes")
    gid = models.PositiveBigIntegerField()
    batch = models.PositiveIntegerField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    parent_gid = models.PositiveBigIntegerField(null=True, blank=True)
    text = models.TextField(null=True, blank=True, help_text="None: mutation made no program.")
    diff = models.TextField(blank=True)
    operator = models.CharField(max_length=32)
    message = models.CharField(max_length=300, blank=True, help_text="Commit message / edit.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    failure = models.CharField(max_length=32, blank=True)
    failure_message = models.TextField(blank=True)
    fitness = models.FloatField(null=True, blank=True)
    cell = models.CharField(max_length=64, blank=True, help_text="Archive cell, e.g. '3,4,5'.")
    warnings = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "gid"]
        constraints = [models.UniqueConstraint(fields=["run", "gid"], name="genome_run_gid")]
        indexes = [
            models.Index(fields=["run", "outcome", "gid"], name="genome_run_outcome"),
            models.Index(fields=["run", "cell", "gid"], name="genome_run_cell"),
            models.Index(fields=["run", "operator", "gid"], name="genome_run_operator"),
            models.Index(fields=["run", "batch"], name="genome_run_batch"),
        ]

    def __str__(self) -> str:
        return f"genome {self.gid} of run {self.run_id}"


class Evaluation(models.Model):
    """The scores of a genome that produced a walker, and its replay if it was ever an elite."""

    genome = models.OneToOneField(
        Genome, primary_key=True, on_delete=models.CASCADE, related_name="evaluation"
    )
    fitness = models.FloatField()
    height = models.FloatField()
    width = models.FloatField()
    mass = models.FloatField()
    cell = models.JSONField(help_text="Archive cell coordinates.")
    terrain = models.CharField(max_length=32)
    sim_seconds = models.FloatField()
    settle_seconds = models.FloatField()
    # Trace.to_bytes(): a small header and zlib-compressed float32 frames.
    trace = models.BinaryField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"evaluation of {self.genome}"


class ArchiveCell(models.Model):
    """The current elite of one cell of a run's archive (its history is in the genomes)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="cells")
    cell = models.CharField(max_length=64)
    coords = models.JSONField()
    genome = models.ForeignKey(Genome, on_delete=models.CASCADE, related_name="+")
    fitness = models.FloatField()
    batch = models.PositiveIntegerField(help_text="Batch that put this elite here.")

    class Meta:
        ordering = ["run", "cell"]
        constraints = [models.UniqueConstraint(fields=["run", "cell"], name="cell_run_cell")]

    def __str__(self) -> str:
        return f"cell {self.cell} of run {self.run_id}"


class RunMetric(models.Model):
    """One row per committed batch (the engine's ``BatchMetrics`` plus timing)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    batch = models.PositiveIntegerField()
    evaluations = models.PositiveIntegerField()
    batch_size = models.PositiveIntegerField()
    valid = models.PositiveIntegerField()
    valid_rate = models.FloatField()
    niches_filled = models.PositiveIntegerField()
    coverage = models.FloatField()
    max_fitness = models.FloatField()
    qd_score = models.FloatField()
    wall_s = models.FloatField()
    evals_per_s = models.FloatField()
    outcomes = models.JSONField(default=dict)
    failures = models.JSONField(default=dict)
    operators = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "batch"]
        constraints = [models.UniqueConstraint(fields=["run", "batch"], name="metric_run_batch")]

    def __str__(self) -> str:
        return f"metrics of batch {self.batch} of run {self.run_id}"


class PendingBatch(models.Model):
    """A batch whose children are written and not all evaluated yet (runs that evaluate apart).

    A step on the ``llm`` queue asks the scheduler for a batch (the language model writes the
    children), saves the scheduler's state with the asked candidates here, and queues one
    ``evaluate_chunk`` task per ``chunk_size`` candidates on ``sim``. Each chunk adds its
    results; the one that completes the set tells the scheduler and stores the batch like any
    step, in one transaction that also deletes this row. A step that finds this row (a
    re-enqueued step after a lost message or a killed worker) queues only the missing chunks.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="pending_batches")
    batch = models.PositiveIntegerField()
    # The lease token of the step that holds the run now; the completing chunk commits with it.
    token = models.CharField(max_length=32)
    # Scheduler.to_dict() between ask and tell, less its "pending": the asked candidates, kept
    # apart (Candidate.to_dict() each) so that a chunk reads them without the archive.
    state = models.JSONField()
    candidates = models.JSONField(default=list)
    size = models.PositiveIntegerField()
    chunk_size = models.PositiveIntegerField()
    # Result.to_dict() lists by chunk index (as a string: JSON object keys).
    results = models.JSONField(default=dict)
    # When the step began writing the children: the batch's wall time runs from here to its store.
    started_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "batch"], name="pending_run_batch")]

    def __str__(self) -> str:
        return f"pending batch {self.batch} of run {self.run_id}"

    @property
    def chunks(self) -> int:
        """How many ``evaluate_chunk`` tasks the batch takes."""
        return -(-self.size // self.chunk_size)

    def missing(self) -> list[int]:
        """The chunks with no results yet."""
        return [i for i in range(self.chunks) if str(i) not in self.results]


class RunEvent(models.Model):
    """Something that happened to a run; ids increase, so clients resume after the last seen.

    Kinds: ``status`` (payload: status, error), ``batch`` (payload: the batch's metrics
    and the archive cells it changed), ``trace`` (payload: batch, and ``gids``: the
    genomes whose replay traces were just stored) and ``evaluating`` (runs that evaluate
    apart: the batch's children are written and queued for evaluation; payload: batch,
    ``children``, ``chunks``).
    """

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="event_run_id")]

    def __str__(self) -> str:
        return f"event {self.id} ({self.kind}) of run {self.run_id}"
