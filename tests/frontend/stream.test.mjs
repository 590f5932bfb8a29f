import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, openEventStream, runSocketUrl } from "../../frontend/stream.js";
import { FakeSocket, fakeTimers } from "./fakes.mjs";

function setup(extra = {}) {
  FakeSocket.all = [];
  const timers = fakeTimers();
  const events = [];
  const states = [];
  const stream = openEventStream({
    url: (lastId) => `ws://x/ws/runs/7/?last_id=${lastId}`,
    onEvent: (e) => events.push(e.id),
    onState: (s, d) => states.push(d?.delay !== undefined ? `${s}:${d.delay}` : s),
    WebSocket: FakeSocket,
    timers,
    backoff: { initial: 100, factor: 2, max: 1000, jitter: 0 },
    ...extra,
  });
  return { stream, timers, events, states, socket: () => FakeSocket.all.at(-1) };
}

test("backoff doubles from the initial delay up to the maximum", () => {
  const opts = { initial: 500, factor: 2, max: 4000, jitter: 0 };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, opts)), [500, 1000, 2000, 4000, 4000, 4000]);
});

test("jitter only ever shortens the delay", () => {
  assert.equal(backoffDelay(0, { initial: 1000, jitter: 0.5, random: () => 1 }), 500);
  assert.equal(backoffDelay(0, { initial: 1000, jitter: 0.5, random: () => 0 }), 1000);
});

test("the socket URL follows the page's scheme and carries the cursor", () => {
  assert.equal(runSocketUrl({ protocol: "https:", host: "lab:8000" }, 3, 41), "wss://lab:8000/ws/runs/3/?last_id=41");
  assert.equal(runSocketUrl({ protocol: "http:", host: "x" }, 3), "ws://x/ws/runs/3/?last_id=0");
});

test("events are delivered once each, in order, and the cursor follows them", () => {
  const { stream, events, socket } = setup();
  socket().open();
  socket().receive({ id: 1, kind: "status", payload: {} });
  socket().receive({ id: 2, kind: "batch", payload: {} });
  socket().receive({ id: 2, kind: "batch", payload: {} });
  socket().receive({ id: 1, kind: "status", payload: {} });
  assert.deepEqual(events, [1, 2]);
  assert.equal(stream.lastId(), 2);
});

test("a dropped connection reconnects with backoff and resumes after the last id", () => {
  const { events, timers, states, socket } = setup();
  socket().open();
  socket().receive({ id: 5, kind: "batch", payload: {} });
  socket().drop();
  assert.equal(timers.runNext(), 100);
  assert.equal(socket().url, "ws://x/ws/runs/7/?last_id=5");
  socket().drop();
  assert.equal(timers.runNext(), 200);
  socket().open();
  socket().receive({ id: 5, kind: "batch", payload: {} });
  socket().receive({ id: 6, kind: "batch", payload: {} });
  assert.deepEqual(events, [5, 6]);
  assert.ok(states.includes("waiting:100") && states.includes("waiting:200"));
});

test("a successful connection resets the backoff", () => {
  const { timers, socket } = setup();
  socket().drop();
  timers.runNext();
  socket().drop();
  timers.runNext();
  socket().open();
  socket().drop();
  assert.equal(timers.runNext(), 100);
});

test("an unauthenticated or unknown run stops reconnecting", () => {
  const { timers, states, socket } = setup();
  socket().drop(4401);
  assert.equal(timers.pending.length, 0);
  assert.equal(states.at(-1), "unauthenticated");
  const second = setup();
  second.socket().drop(4404);
  assert.equal(second.states.at(-1), "not-found");
});

test("closing the stream stops it for good", () => {
  const { stream, timers, socket } = setup();
  socket().open();
  stream.close();
  assert.equal(socket().closedWith, 1000);
  assert.equal(timers.pending.length, 0);
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(stream.state(), "closed");
});

test("closing while waiting to reconnect cancels the reconnect", () => {
  const { stream, timers, socket } = setup();
  socket().drop();
  stream.close();
  timers.runNext();
  assert.equal(FakeSocket.all.length, 1);
});

test("resetting the cursor asks the server to replay from there", () => {
  const { stream, socket, events } = setup();
  socket().open();
  socket().receive({ id: 9, kind: "batch", payload: {} });
  stream.resetTo(0);
  assert.deepEqual(socket().sent, [{ last_id: 0 }]);
  socket().receive({ id: 1, kind: "status", payload: {} });
  assert.deepEqual(events, [9, 1]);
});

test("messages that are not events are ignored", () => {
  const { events, socket } = setup();
  socket().open();
  socket().onmessage({ data: "not json" });
  socket().receive({ error: "send {\"last_id\": N}" });
  assert.deepEqual(events, []);
});
