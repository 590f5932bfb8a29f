"""The run WebSocket: authentication, replay after the client's last id, then live events.

Through the in-memory channel layer and the event tailer, or (``make test-scaled``) Redis.
"""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client

from elmweb.asgi import application
from elmweb.runs import services
from elmweb.runs.consumers import RunConsumer
from elmweb.runs.events import tailer
from elmweb.runs.models import RunEvent
from tests.elmweb.conftest import make_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def communicator(run_id: int, user: Any, query: str = "") -> WebsocketCommunicator:
    """A client of the consumer alone, with ``user`` in its scope."""
    path = f"/ws/runs/{run_id}/" + (f"?{query}" if query else "")
    comm = WebsocketCommunicator(RunConsumer.as_asgi(), path)
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": {"run_id": run_id}}
    return comm


async def receive_all(comm: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    return [await comm.receive_json_from(timeout=5) for _ in range(count)]


def test_it_replays_every_event_of_the_run_in_order(user) -> None:
    run = make_run(user)
    services.run_start(run=run, user=user)

    async def scenario() -> list[dict[str, Any]]:
        comm = communicator(run.pk, user)
        connected, _ = await comm.connect()
        assert connected
        events = await receive_all(comm, 2)
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        return events

    events = async_to_sync(scenario)()

    assert [e["payload"]["status"] for e in events] == ["created", "running"]
    assert events[0]["id"] < events[1]["id"] and events[0]["kind"] == "status"


def test_it_replays_only_what_came_after_the_last_id_the_client_saw(user) -> None:
    run = make_run(user)
    services.run_start(run=run, user=user)
    first = RunEvent.objects.filter(run=run).first()

    async def scenario() -> list[dict[str, Any]]:
        comm = communicator(run.pk, user, query=f"last_id={first.id}")
        await comm.connect()
        events = await receive_all(comm, 1)
        assert await comm.receive_nothing(timeout=0.3)
        await comm.send_json_to({"last_id": 0})  # the client lost its view: all again
        events += await receive_all(comm, 2)
        await comm.disconnect()
        return events

    events = async_to_sync(scenario)()

    assert [e["payload"]["status"] for e in events] == ["running", "created", "running"]


def test_it_streams_events_committed_after_the_client_connected(user) -> None:
    run = make_run(user)

    async def scenario() -> list[dict[str, Any]]:
        comm = communicator(run.pk, user)
        await comm.connect()
        await receive_all(comm, 1)  # created
        await database_sync_to_async(services.run_start)(run=run, user=user)
        await database_sync_to_async(services.run_pause)(run=run, user=user)
        events = await receive_all(comm, 2)
        await comm.disconnect()
        return events

    events = async_to_sync(scenario)()

    assert [e["payload"]["status"] for e in events] == ["running", "paused"]
    assert tailer.subscribers == 0


def test_it_answers_a_malformed_message_with_the_expected_form(user) -> None:
    run = make_run(user)

    async def scenario() -> dict[str, Any]:
        comm = communicator(run.pk, user)
        await comm.connect()
        await receive_all(comm, 1)
        await comm.send_json_to({"last": "x"})
        answer = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return answer

    assert "last_id" in async_to_sync(scenario)()["error"]


def test_an_anonymous_client_is_refused(user) -> None:
    from django.contrib.auth.models import AnonymousUser

    run = make_run(user)

    async def scenario() -> tuple[bool, int]:
        comm = communicator(run.pk, AnonymousUser())
        return await comm.connect()

    assert async_to_sync(scenario)() == (False, 4401)


def test_an_unknown_run_is_refused(user) -> None:
    async def scenario() -> tuple[bool, int]:
        return await communicator(12345, user).connect()

    assert async_to_sync(scenario)() == (False, 4404)


def test_the_full_asgi_stack_authenticates_with_the_session_cookie(user) -> None:
    run = make_run(user)
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    async def scenario(headers: list[tuple[bytes, bytes]]) -> Any:
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        connected, code = await comm.connect()
        if not connected:
            return code
        event = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return event

    origin = (b"origin", b"http://localhost")
    with_cookie = async_to_sync(scenario)([origin, (b"cookie", cookie.encode())])
    assert with_cookie["payload"] == {"status": "created"}
    assert async_to_sync(scenario)([origin]) == 4401


def test_no_event_of_a_run_becomes_visible_before_an_earlier_one_so_no_client_skips_it(user) -> None:
    """A consumer sends what lies after the last id it sent, so a run's event ids must become
    visible in id order. A trace event written while a step of the same run commits its batch
    must not commit after that batch's (higher) event: here the trace task holds its event
    uncommitted while the step runs (on PostgreSQL it did not wait: `make bench-scale` saw a
    client miss a trace event; SQLite serializes every writer anyway)."""
    run = services.run_start(run=make_run(user, evals=17), user=user)
    assert services.run_step(run_id=run.pk, batch=0, chunk_s=0) == "committed"  # the seed, an elite
    inserted, proceed, stepped = threading.Event(), threading.Event(), threading.Event()
    trace_ids: list[int] = []
    real_event = services._event

    def held_event(run_id: int, kind: str, payload: dict[str, Any]) -> RunEvent:
        event = real_event(run_id, kind, payload)
        if kind == "trace":
            trace_ids.append(event.id)
            inserted.set()
            proceed.wait(timeout=30)  # the transaction stays open
        return event

    def in_thread(work: Any) -> threading.Thread:
        def target() -> None:
            try:
                work()
            finally:
                connection.close()

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    with mock.patch.object(services, "_event", held_event):
        traces = in_thread(lambda: services.run_record_traces(run_id=run.pk, batch=0))
        assert inserted.wait(timeout=30)
        step = in_thread(lambda: (services.run_step(run_id=run.pk, batch=1, chunk_s=0), stepped.set()))
        stepped.wait(timeout=3)  # done at once if it does not wait for the trace task
        visible = list(RunEvent.objects.filter(run=run).values_list("id", flat=True))
        proceed.set()
        traces.join(timeout=30)
        step.join(timeout=60)

    later = [i for i in visible if i > trace_ids[0]]
    assert trace_ids[0] in visible or not later, (
        f"events {later} were visible while the earlier trace event {trace_ids[0]} was not"
    )
    batch_event = RunEvent.objects.filter(run=run, kind="batch", payload__batch=1).get()
    assert batch_event.id > trace_ids[0]


def test_the_clients_of_a_run_share_one_read_of_the_event_table_per_nudge(user) -> None:
    from elmweb.runs import selectors

    run = make_run(user)
    reads = mock.Mock(wraps=selectors.event_list)

    async def scenario() -> list[list[dict[str, Any]]]:
        clients = [communicator(run.pk, user) for _ in range(5)]
        for comm in clients:
            await comm.connect()
            await receive_all(comm, 1)  # created
        with mock.patch.object(selectors, "event_list", reads):
            await database_sync_to_async(services.run_start)(run=run, user=user)
            received = [await receive_all(comm, 1) for comm in clients]
        for comm in clients:
            await comm.disconnect()
        return received

    received = async_to_sync(scenario)()

    assert all(events[0]["payload"]["status"] == "running" for events in received)
    assert reads.call_count == 1, "one read of the table for the five clients"


def test_recent_events_answer_from_the_cache_and_send_a_client_behind_it_to_the_table(user) -> None:
    from elmweb.runs import selectors
    from elmweb.runs.events import RecentEvents

    run = make_run(user)
    services.run_start(run=run, user=user)
    services.run_pause(run=run, user=user)
    ids = list(RunEvent.objects.filter(run=run).values_list("id", flat=True))  # created, running, paused
    recent = RecentEvents(keep=2)

    async def scenario() -> tuple[Any, ...]:
        first = await recent.after(run.pk, ids[0], upto=ids[2])
        again = await recent.after(run.pk, ids[1], upto=ids[2])  # read already: from the cache
        await database_sync_to_async(services.run_resume)(run=run, user=user)
        newest = await database_sync_to_async(lambda: RunEvent.objects.filter(run=run).last().id)()
        later = await recent.after(run.pk, ids[2], upto=newest)
        behind = await recent.after(run.pk, ids[0], upto=newest)  # the cache keeps two events
        return first, again, later, behind

    with mock.patch.object(selectors, "event_list", wraps=selectors.event_list) as reads:
        first, again, later, behind = async_to_sync(scenario)()

    assert [e["id"] for e in first] == ids[1:] and [e["id"] for e in again] == ids[2:]
    assert [e["payload"]["status"] for e in later] == ["running"]
    assert behind is None
    assert reads.call_count == 2
