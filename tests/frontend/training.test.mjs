import { test } from "node:test";
import assert from "node:assert/strict";
import {
  applyModelMessage, archiveFromEvaluation, datasetUrl, failureRows, isTerminal, lastLoss, mergeLoss,
  modelSocketUrl, openModelStream,
} from "../../frontend/training.js";
import { FakeSocket, fakeTimers } from "./fakes.mjs";

function setup() {
  FakeSocket.all = [];
  const timers = fakeTimers();
  const states = [];
  let job = { status: "queued", progress: 0, loss: [] };
  const stream = openModelStream({
    url: () => "ws://x/ws/models/4/",
    onMessage: (message, { first }) => { job = applyModelMessage(job, message, { first }); },
    onState: (s, d) => states.push(d?.delay !== undefined ? `${s}:${d.delay}` : s),
    WebSocket: FakeSocket,
    timers,
    backoff: { initial: 100, factor: 2, max: 1000, jitter: 0 },
  });
  return { stream, timers, states, job: () => job, socket: () => FakeSocket.all.at(-1) };
}

const point = (step, loss) => ({ step, loss });

test("done, cancelled and failed are the terminal statuses", () => {
  assert.deepEqual(["queued", "training", "evaluating", "done", "cancelled", "failed"].map(isTerminal),
    [false, false, false, true, true, true]);
});

test("the model socket URL follows the page's scheme", () => {
  assert.equal(modelSocketUrl({ protocol: "https:", host: "lab:8000" }, 3), "wss://lab:8000/ws/models/3/");
  assert.equal(modelSocketUrl({ protocol: "http:", host: "x" }, 12), "ws://x/ws/models/12/");
});

test("later messages append their new loss points", () => {
  const before = [point(1, 3)];
  const after = mergeLoss(before, { loss: [point(2, 2.5), point(3, 2)] });
  assert.deepEqual(after, [point(1, 3), point(2, 2.5), point(3, 2)]);
  assert.deepEqual(before, [point(1, 3)], "the input is left alone");
});

test("the first message of a connection replaces the points, since the server starts from zero", () => {
  const had = [point(1, 3), point(2, 2.5)];
  assert.deepEqual(mergeLoss(had, { loss: [point(1, 3), point(2, 2.5), point(3, 2)] }, { first: true }),
    [point(1, 3), point(2, 2.5), point(3, 2)]);
});

test("a message without loss points keeps what we had", () => {
  const had = [point(1, 3)];
  assert.equal(mergeLoss(had, { status: "training" }), had);
  assert.deepEqual(mergeLoss(had, { loss: [] }, { first: true }), []);
});

test("points that are not numbers are dropped", () => {
  assert.deepEqual(mergeLoss([], { loss: [point(1, Number.NaN), { step: 2 }, null, point(3, 1)] }), [point(3, 1)]);
});

test("a message updates status, progress, error and evaluation and leaves the rest", () => {
  const job = applyModelMessage({ status: "queued", progress: 0, name: "m", loss: [] },
    { status: "training", progress: 0.25, error: "", loss: [point(1, 2)], evaluation: null });
  assert.deepEqual(job, { status: "training", progress: 0.25, error: "", name: "m", loss: [point(1, 2)], evaluation: null });
  assert.equal(lastLoss(job.loss), 2);
  assert.equal(lastLoss([]), null);
});

test("the stream keeps points across messages and replaces them after a reconnect", () => {
  const { timers, socket, job, states } = setup();
  socket().open();
  socket().receive({ status: "training", progress: 0.1, loss: [point(1, 3), point(2, 2.8)] });
  socket().receive({ status: "training", progress: 0.2, loss: [point(3, 2.5)] });
  assert.deepEqual(job().loss.map((p) => p.step), [1, 2, 3]);
  socket().drop();
  assert.equal(states.at(-1), "waiting:100");
  assert.equal(timers.runNext(), 100);
  socket().open();
  socket().receive({ status: "training", progress: 0.3, loss: [point(1, 3), point(2, 2.8), point(3, 2.5), point(4, 2.2)] });
  assert.deepEqual(job().loss.map((p) => p.step), [1, 2, 3, 4], "no point is doubled");
  socket().receive({ status: "training", progress: 0.4, loss: [point(5, 2)] });
  assert.deepEqual(job().loss.map((p) => p.step), [1, 2, 3, 4, 5]);
});

test("the stream backs off more after each failed try and resets once connected", () => {
  const { timers, socket, states } = setup();
  socket().drop();
  timers.runNext();
  socket().drop();
  timers.runNext();
  socket().drop();
  assert.deepEqual(states.filter((s) => s.startsWith("waiting")), ["waiting:100", "waiting:200", "waiting:400"]);
  timers.runNext();
  socket().open();
  socket().drop();
  assert.equal(states.at(-1), "waiting:100");
});

test("the stream stops once a message shows the job ended", () => {
  const { timers, socket, states, job, stream } = setup();
  socket().open();
  socket().receive({ status: "done", progress: 1, loss: [], evaluation: { niches: 3 } });
  assert.equal(job().status, "done");
  assert.equal(states.at(-1), "ended");
  assert.equal(stream.state(), "ended");
  socket().drop(1000);
  assert.equal(timers.pending.length, 0, "no reconnect after the end");
  assert.equal(FakeSocket.all.length, 1);
});

test("the stream gives up on close codes that retrying cannot fix", () => {
  const { timers, socket, states } = setup();
  socket().drop(4404);
  assert.equal(states.at(-1), "not-found");
  assert.equal(timers.pending.length, 0);
});

test("closing the stream cancels a pending reconnect", () => {
  const { timers, socket, states, stream } = setup();
  socket().drop();
  stream.close();
  assert.equal(states.at(-1), "closed");
  timers.runNext();
  assert.equal(FakeSocket.all.length, 1);
});

test("the dataset link carries the runs, threshold and held-out fraction", () => {
  assert.equal(datasetUrl([3, 5], 0.5, 0.1), "/api/models/dataset?runs=3,5&threshold=0.5&heldout=0.1");
});

test("failures are listed most frequent first", () => {
  assert.deepEqual(failureRows({ syntax: 2, timeout: 5, crash: 2 }), [["timeout", 5], ["crash", 2], ["syntax", 2]]);
  assert.deepEqual(failureRows(null), []);
});

test("the evaluation's archive becomes cells the map can draw", () => {
  const state = archiveFromEvaluation({
    dims: [2, 3, 1], ranges: [[0, 1], [0, 2], [0, 3]], names: ["h", "w", "m"],
    elites: [{ cell: [1, 2, 0], fitness: 4.5, descriptor: [0.7, 1.8, 0.2], genome_id: 9, text: "def f(): pass" }],
  });
  assert.deepEqual(state.dims, [2, 3, 1]);
  assert.equal(state.cells.size, 1);
  assert.deepEqual(state.cells.get("1,2,0"), { cell: [1, 2, 0], gid: 9, fitness: 4.5, descriptor: [0.7, 1.8, 0.2], text: "def f(): pass" });
  assert.equal(archiveFromEvaluation(null).cells.size, 0);
});
