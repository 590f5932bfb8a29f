"""The WebSocket of a training job, ``/ws/models/<id>/``: its status, progress and new points.

Messages: ``{"status", "progress", "error", "loss": [new {step, loss} points], "rewards": [new
{iteration, seconds, kl, terrains: {name: {score, valid_rate, best}}} points], "evaluation":
<summary or null>}`` (a stage-2 job logs loss, a stage-3 job rewards), one when something changed (checked every ``POLL_S``); the socket closes
(code 1000) after the message that shows the job ended. Logged-in users only (4401); an unknown
job closes with 4404. The row is the truth (the training task writes it), so the consumer just
reads it: one indexed query per poll per client, which is nothing next to training.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from elmweb.training.models import TrainedModel

POLL_S = 0.5
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def _snapshot(model_id: int) -> dict[str, Any] | None:
    row = (TrainedModel.objects.filter(pk=model_id)
           .values("status", "progress", "error", "loss", "rewards", "evaluation", "updated_at").first())
    if row:
        row["evaluation"] = TrainedModel.evaluation_summary(row["evaluation"])
    return row


class TrainingConsumer(AsyncJsonWebsocketConsumer):
    """Streams one training job's progress to one client."""

    task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.model_id = int(self.scope["url_route"]["kwargs"]["model_id"])
        if await database_sync_to_async(_snapshot)(self.model_id) is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        self.task = asyncio.get_running_loop().create_task(self._stream())

    async def disconnect(self, code: int) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _stream(self) -> None:
        sent = {"loss": 0, "rewards": 0}  # points of each series already sent
        seen = None
        while True:
            row = await database_sync_to_async(_snapshot)(self.model_id)
            if row is None:
                await self.close(code=CLOSE_NOT_FOUND)
                return
            if row["updated_at"] != seen:
                seen = row["updated_at"]
                fresh = {key: (row[key] or [])[done:] for key, done in sent.items()}
                await self.send_json({"status": row["status"], "progress": row["progress"], "error": row["error"],
                                      **fresh, "evaluation": row["evaluation"]})
                sent = {key: done + len(fresh[key]) for key, done in sent.items()}
                if row["status"] in TrainedModel.TERMINAL:
                    await self.close()
                    return
            await asyncio.sleep(POLL_S)
