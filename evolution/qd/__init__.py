"""Quality-diversity core: archives, emitters, the ask/tell scheduler and metrics.

API index:
    GridArchive, Elite, Cell: a grid MAP-Elites archive (one elite per cell).
    Emitter, UniformEmitter: parent selection (the paper's: uniform over occupied cells).
    Scheduler, BatchReport, SchedulerOrderError: ``ask(n)`` / ``tell(results)``.
    BatchMetrics, batch_metrics: evaluations, valid rate, niches filled, max fitness,
        QD score and per-operator counts of each batch.

The scheduler never evaluates anything: ``evolution.loop`` (or a Celery task) evaluates what
``ask`` returns and hands the results to ``tell``.
"""

from evolution.qd._archive import Cell, Elite, GridArchive
from evolution.qd._emitters import Emitter, UniformEmitter
from evolution.qd._metrics import BatchMetrics, batch_metrics
from evolution.qd._scheduler import BatchReport, Scheduler, SchedulerOrderError

__all__ = [
    "BatchMetrics",
    "BatchReport",
    "Cell",
    "Elite",
    "Emitter",
    "GridArchive",
    "Scheduler",
    "SchedulerOrderError",
    "UniformEmitter",
    "batch_metrics",
]
