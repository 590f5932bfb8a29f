"""The WebSocket of a run, ``/ws/runs/<id>/``: replays missed events, then streams new ones.

Protocol: connect with ``?last_id=N`` (default 0) to receive every event of the run with an
id above N, in order, then each new one as it is committed. Each message is one event:
``{"id": 12, "kind": "batch", "payload": {...}, "at": "<iso time>"}`` (the kinds and their
payloads: ``RunEvent``). Sending ``{"last_id": N}`` later moves the cursor (the client's view
was reset) and replays from there. Only logged-in users may connect (close code 4401); an
unknown run closes with 4404.

The consumer holds no logic: it joins the run's group, and on each nudge (see
``elmweb.runs.events``) sends what the event table holds after the last id it sent (read once
per nudge for all of the run's clients in this process, ``events.recent``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from elmweb.runs import events, selectors
from elmweb.runs.models import Run

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_BAD_REQUEST = 4400


def _run_exists(run_id: int) -> bool:
    return Run.objects.filter(pk=run_id).exists()


class RunConsumer(AsyncJsonWebsocketConsumer):
    """Relays one run's events to one client."""

    run_id: int
    last_id: int
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not await database_sync_to_async(_run_exists)(self.run_id):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            self.last_id = max(0, int(query.get("last_id", ["0"])[0]))
        except ValueError:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.group = events.group_name(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await events.tailer.subscribe()
        events.recent.join(self.run_id)
        await self.send_missed()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await events.tailer.unsubscribe()
            events.recent.leave(self.run_id)
            self.group = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("last_id"), int):
            await self.send_json({"error": 'send {"last_id": <the last event id you saw>}'})
            return
        self.last_id = max(0, content["last_id"])
        await self.send_missed()

    async def run_event(self, message: dict[str, Any]) -> None:
        """A nudge from the group: the run has new events (read once for all its clients here)."""
        news = await events.recent.after(self.run_id, self.last_id, upto=message.get("upto"))
        if news is None:  # further behind than the cache reaches
            await self.send_missed()
            return
        for event in news:
            await self.send_json(event)
            self.last_id = event["id"]

    async def send_missed(self) -> None:
        """Send every event after ``last_id``, in order."""
        while True:
            batch = await database_sync_to_async(selectors.event_list)(
                run_id=self.run_id, after=self.last_id, limit=events.PAGE
            )
            for event in batch:
                await self.send_json(event)
                self.last_id = event["id"]
            if len(batch) < events.PAGE:
                return
