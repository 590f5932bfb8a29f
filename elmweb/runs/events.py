"""Getting new ``RunEvent`` rows to the WebSocket consumers of their run.

Events are rows; a consumer always reads what it sends from the table, so a channel-layer
message is only a nudge ("run 7 has new events"). Who nudges depends on the channel layer:

* embedded default (in-memory layer, which cannot cross processes): the ASGI process tails
  the table itself: one ``EventTailer`` task per process, one indexed query per
  ``EVENTS_POLL_S`` whatever the number of clients, nudging the groups of runs with news;
* Redis (``REDIS_URL``): whoever writes an event (a worker, the web process) nudges the
  run's group after the commit (``notify``), through channels_redis.

On a nudge, the consumers of one run in one process share one read of the table
(``RecentEvents``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError

from elmweb.runs import selectors

try:  # channels_redis raises redis-py's errors, which are not the builtin ConnectionError
    from redis.exceptions import RedisError
except ImportError:  # the embedded default needs no redis package
    RedisError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

NUDGE = {"type": "run.event"}
PAGE = 500  # events read per query (a consumer catching up reads pages of this size too)


def group_name(run_id: int) -> str:
    """The channel-layer group of a run's consumers."""
    return f"run-{run_id}"


def nudge(upto: int) -> dict[str, Any]:
    """The group message saying a run's events now reach id ``upto``."""
    return {**NUDGE, "upto": upto}


def notify(*, run_id: int, event_id: int) -> None:
    """Nudge a run's consumers after its event ``event_id`` was committed (Redis layer only).

    A nudge that Redis refuses (restarting, unreachable) is logged and dropped, never raised: it
    runs as a commit hook, and raising would skip the hooks after it (queueing the run's next step
    and its traces). Clients get the event with the next nudge, or when they reconnect.
    """
    if settings.EVENTS_TAIL_TABLE:
        return  # the ASGI process tails the table
    try:
        async_to_sync(get_channel_layer().group_send)(group_name(run_id), nudge(event_id))
    except (OSError, ConnectionError, RedisError):
        log.warning("run %d: could not nudge its WebSocket clients", run_id, exc_info=True)


def _latest_event_id() -> int:
    from elmweb.runs.models import RunEvent

    return RunEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _runs_with_events_after(event_id: int) -> tuple[int, dict[int, int]]:
    """The newest event id, and the newest event id of each run with events after ``event_id``."""
    from elmweb.runs.models import RunEvent

    rows = RunEvent.objects.filter(id__gt=event_id).order_by("id").values_list("id", "run_id")[:10_000]
    newest = {run: i for i, run in rows}
    return max(newest.values(), default=event_id), newest


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
            for run_id, upto in runs.items():
                await layer.group_send(group_name(run_id), nudge(upto))


class RecentEvents:
    """The newest events of each run this ASGI process streams, read once for all its clients.

    A nudge reaches every client of a run at the same moment; each would read the event table
    for itself (one query per client per event). Instead the first client to take the nudge
    reads what came after the newest event cached, under the run's lock, and the others find it
    cached. A client further behind than the cache (one that reconnected late) reads the table
    itself, as on connect.
    """

    def __init__(self, *, keep: int = 1000) -> None:
        self.keep = keep
        self._runs: dict[int, _Recent] = {}
        self._clients: dict[int, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def join(self, run_id: int) -> None:
        """Count a client of ``run_id`` in."""
        self._clients[run_id] = self._clients.get(run_id, 0) + 1

    def leave(self, run_id: int) -> None:
        """Count a client out; the run's cache goes with its last client."""
        left = self._clients.get(run_id, 1) - 1
        if left > 0:
            self._clients[run_id] = left
        else:
            self._clients.pop(run_id, None)
            self._runs.pop(run_id, None)

    async def after(self, run_id: int, after: int, *, upto: int | None) -> list[dict[str, Any]] | None:
        """The run's events with ids above ``after``, up to at least ``upto`` (the id a nudge
        announced; ``None``: read the table whatever the cache holds); ``None`` if the cache
        does not reach back to ``after``."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): locks of the old one cannot be used
            self._loop, self._runs = loop, {}
        recent = self._runs.get(run_id)
        if recent is None:
            recent = self._runs[run_id] = _Recent(floor=after, top=after)
        async with recent.lock:
            if upto is None or recent.top < upto:
                while True:
                    page = await database_sync_to_async(selectors.event_list)(
                        run_id=run_id, after=recent.top, limit=PAGE
                    )
                    recent.add(page, keep=self.keep)
                    if len(page) < PAGE:
                        break
        if after < recent.floor:
            return None
        return [event for event in recent.events if event["id"] > after]


@dataclass
class _Recent:
    """One run's cached events: every event with an id in (``floor``, ``top``], in order."""

    floor: int
    top: int
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add(self, page: list[dict[str, Any]], *, keep: int) -> None:
        if not page:
            return
        self.events += page
        self.top = page[-1]["id"]
        if len(self.events) > keep:
            self.floor = self.events[-keep - 1]["id"]
            del self.events[: len(self.events) - keep]


tailer = EventTailer()
recent = RecentEvents()
