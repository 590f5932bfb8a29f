"""Getting new ``RunEvent`` rows to the WebSocket consumers of their run.

Events are rows; a consumer always reads what it sends from the table, so a channel-layer
message is only a nudge ("run 7 has new events"). Who nudges depends on the channel layer:

* embedded default (in-memory layer, which cannot cross processes): the ASGI process tails
  the table itself: one ``EventTailer`` task per process, one indexed query per
  ``EVENTS_POLL_S`` whatever the number of clients, nudging the groups of runs with news;
* Redis (``REDIS_URL``): whoever writes an event (a worker, the web process) nudges the
  run's group after the commit (``notify``), through channels_redis.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError

try:  # channels_redis raises redis-py's errors, which are not the builtin ConnectionError
    from redis.exceptions import RedisError
except ImportError:  # the embedded default needs no redis package
    RedisError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

NUDGE = {"type": "run.event"}


def group_name(run_id: int) -> str:
    """The channel-layer group of a run's consumers."""
    return f"run-{run_id}"


def notify(*, run_id: int) -> None:
    """Nudge a run's consumers after an event was committed (Redis layer only).

    A nudge that Redis refuses (restarting, unreachable) is logged and dropped, never raised: it
    runs as a commit hook, and raising would skip the hooks after it (queueing the run's next step
    and its traces). Clients get the event with the next nudge, or when they reconnect.
    """
    if settings.EVENTS_TAIL_TABLE:
        return  # the ASGI process tails the table
    try:
        async_to_sync(get_channel_layer().group_send)(group_name(run_id), NUDGE)
    except (OSError, ConnectionError, RedisError):
        log.warning("run %d: could not nudge its WebSocket clients", run_id, exc_info=True)


def _latest_event_id() -> int:
    from elmweb.runs.models import RunEvent

    return RunEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _runs_with_events_after(event_id: int) -> tuple[int, list[int]]:
    """The newest event id, and the runs with events after ``event_id``."""
    from elmweb.runs.models import RunEvent

    rows = list(RunEvent.objects.filter(id__gt=event_id).values_list("id", "run_id")[:10_000])
    if not rows:
        return event_id, []
    return max(i for i, _ in rows), sorted({run for _, run in rows})


class EventTailer:
    """Polls the event table for the consumers of this ASGI process (embedded default).

    Started by the first consumer that connects, stopped when the last one leaves.
    """

    def __init__(self) -> None:
        self.subscribers = 0
        self._task: asyncio.Task[None] | None = None

    async def subscribe(self) -> None:
        """Count a consumer in; start polling if this is the first one."""
        self.subscribers += 1
        if not settings.EVENTS_TAIL_TABLE:
            return
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            last = await database_sync_to_async(_latest_event_id)()
            self._task = loop.create_task(self._poll(last), name="run-event-tailer")

    async def unsubscribe(self) -> None:
        """Count a consumer out; stop polling when none is left."""
        self.subscribers = max(0, self.subscribers - 1)
        if self.subscribers == 0 and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _poll(self, last: int) -> None:
        layer = get_channel_layer()
        while True:
            await asyncio.sleep(settings.EVENTS_POLL_S)
            try:
                last, runs = await database_sync_to_async(_runs_with_events_after)(last)
            except DatabaseError:  # a failed poll must not end live updates; the next one retries
                log.exception("could not read new run events; retrying")
                continue
            for run_id in runs:
                await layer.group_send(group_name(run_id), NUDGE)


tailer = EventTailer()
