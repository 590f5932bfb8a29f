"""The elmweb Django project: settings, URLs, ASGI/WSGI entry points and the Celery app.

The Celery app is imported here so that ``shared_task`` binds to it whenever
Django starts (web process or worker).
"""

from __future__ import annotations

from elmweb.celery import app as celery_app

__all__ = ["celery_app"]
