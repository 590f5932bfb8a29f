"""Celery entry point of the training app (queue ``train``): thin, it calls services."""

from __future__ import annotations

from celery import shared_task

from elmweb.training import services


@shared_task(acks_late=True)
def train_model(model_id: int) -> str:
    """Dataset, training and evaluation of trained model ``model_id`` (skipped unless queued)."""
    return services.model_train(model_id=model_id)
