"""WebSocket URL patterns, mounted by ``elmweb.asgi``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from elmweb.runs.consumers import RunConsumer
from elmweb.training.consumers import TrainingConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
    path("ws/models/<int:model_id>/", TrainingConsumer.as_asgi()),
]
