"""WebSocket URL patterns, mounted by ``elmweb.asgi`` (none yet)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

websocket_urlpatterns: list[URLPattern | URLResolver] = []
