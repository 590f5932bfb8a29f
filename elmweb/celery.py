"""The Celery application for elmweb.

Configuration comes from Django settings under the ``CELERY_`` namespace
(broker, queues ``llm``/``sim``/``train``, acks late, prefetch 1); tasks are
discovered in the installed apps' ``tasks`` modules. Start a worker with::

    celery -A elmweb worker -Q celery,llm,sim,train
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "elmweb.settings")

app = Celery("elmweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
