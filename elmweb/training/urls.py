"""URLs of the training API, mounted at /api/ (all under /api/models) (see ``elmweb.training.api``)."""

from __future__ import annotations

from django.urls import path

from elmweb.training import api

urlpatterns = [
    path("models", api.models, name="api-models"),
    path("models/dataset", api.dataset_download, name="api-dataset"),
    path("models/<int:model_id>", api.model_detail, name="api-model"),
    path("models/<int:model_id>/evaluation", api.model_evaluation, name="api-model-evaluation"),
    path("models/<int:model_id>/cancel", api.model_cancel, name="api-model-cancel"),
    path("models/<int:model_id>/stage3", api.inventor_create, name="api-model-stage3"),
    path("models/<int:model_id>/replay", api.inventor_replay, name="api-model-replay"),
]
