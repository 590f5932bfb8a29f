import { test } from "node:test";
import assert from "node:assert/strict";
import {
  applyModelMessage, archiveFromEvaluation, datasetUrl, failureRows, isTerminal, lastLoss, mergeLoss, mergeRewards,
  modelResult, modelSocketUrl, openModelStream, replayUrl, rewardSeries, streamStateText, unconditionalBest, walkerChoices,
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
  assert.deepEqual(job, { status: "training", progress: 0.25, error: "", name: "m", loss: [point(1, 2)], rewards: [], evaluation: null });
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

// -- stage 3 -------------------------------------------------------------------------------------
const iteration = (n, scores) => ({
  iteration: n, seconds: n * 2, kl: 0.1 * n,
  terrains: Object.fromEntries(Object.entries(scores).map(([t, score]) => [t, { score, valid_rate: 0.5, best: score + 1 }])),
});

test("reward points of later messages are appended and the first message of a connection replaces them", () => {
  const had = [iteration(1, { tunnel: -5 })];
  assert.deepEqual(mergeRewards(had, { rewards: [iteration(2, { tunnel: -3 })] }).map((p) => p.iteration), [1, 2]);
  assert.deepEqual(mergeRewards(had, { rewards: [iteration(1, { tunnel: -5 })] }, { first: true }).map((p) => p.iteration), [1]);
  assert.equal(mergeRewards(had, { status: "training" }), had, "a message without rewards keeps what we had");
  assert.deepEqual(had.map((p) => p.iteration), [1], "the input is left alone");
});

test("reward points without an iteration number or terrains are dropped", () => {
  const fresh = [{ iteration: Number.NaN, terrains: {} }, { iteration: 2 }, null, iteration(3, { bumpy: 1 })];
  assert.deepEqual(mergeRewards([], { rewards: fresh }).map((p) => p.iteration), [3]);
});

test("a stage-3 message merges its rewards into the job and leaves the loss alone", () => {
  const job = applyModelMessage({ status: "training", loss: [], rewards: [iteration(1, { tunnel: -5 })] },
    { status: "training", progress: 0.5, loss: [], rewards: [iteration(2, { tunnel: 1 })] });
  assert.deepEqual(job.rewards.map((p) => p.iteration), [1, 2]);
  assert.deepEqual(job.loss, []);
  assert.equal(job.progress, 0.5);
});

test("the reward curves are one series per terrain in the terrains' order", () => {
  const rewards = [iteration(1, { "left-wall": -5, tunnel: 2 }), iteration(2, { "left-wall": 3, tunnel: 4 })];
  const series = rewardSeries(rewards, ["tunnel", "left-wall"]);
  assert.deepEqual(series.map((rows) => rows.map((r) => [r.iteration, r.score])), [[[1, 2], [2, 4]], [[1, -5], [2, 3]]]);
  assert.equal(series[0][0].valid_rate, 0.5);
});

test("a terrain an iteration has no score for leaves a gap in its curve, not a zero", () => {
  const series = rewardSeries([iteration(1, { tunnel: 2 }), iteration(2, { bumpy: 1 })], ["tunnel", "bumpy"]);
  assert.deepEqual(series.map((rows) => rows.map((r) => r.iteration)), [[1], [2]]);
  assert.deepEqual(rewardSeries(undefined, ["tunnel"]), [[]]);
});

test("the models list shows a stage-2 result as valid rate and niches and a stage-3 result as terrains beaten", () => {
  assert.equal(modelResult({ stage: 2, evaluation: { valid_rate: 0.625, niches: 40 } }), "63% valid · 40 niches");
  assert.equal(modelResult({ stage: 3, evaluation: { beats: 1, total: 3 } }), "beats best-of-N on 1 of 3 terrains");
  assert.equal(modelResult({ stage: 3, evaluation: null }), "");
});

const row = (stage2, dataset) => ({
  conditional: { n: 4, programs: [{ text: "a", distance: 9 }, { text: "b", distance: 4.5 }] },
  stage2: { n: 32, programs: stage2 },
  dataset: dataset === null ? null : { n: 30, programs: dataset },
});

test("the unconditional walker to replay is the farther of the stage-2 model's and the dataset's best", () => {
  assert.deepEqual(unconditionalBest(row([{ text: "s", distance: 5 }], [{ text: "d", distance: 7 }])),
    { source: "dataset", name: "the dataset", distance: 7, n: 30 });
  assert.equal(unconditionalBest(row([{ text: "s", distance: 7 }], [{ text: "d", distance: 7 }])).source, "stage2",
    "a tie goes to the stage-2 model");
  assert.equal(unconditionalBest(row([{ text: "s", distance: 2 }], null)).source, "stage2", "a job without a dataset");
});

test("there is no unconditional walker to replay when no baseline program walked", () => {
  assert.equal(unconditionalBest(row([], [])), null);
  assert.equal(unconditionalBest(undefined), null);
});

test("the inventor's walkers are offered farthest first by rank", () => {
  assert.deepEqual(walkerChoices(row([], [])), [{ rank: 0, distance: 9 }, { rank: 1, distance: 4.5 }]);
  assert.deepEqual(walkerChoices({ conditional: { n: 3 } }), []);
});

test("a replay URL names the terrain, the source and the rank", () => {
  assert.equal(replayUrl(7, "right-wall", "conditional", 2), "/api/models/7/replay?terrain=right-wall&source=conditional&rank=2");
  assert.equal(replayUrl(7, "tunnel", "dataset"), "/api/models/7/replay?terrain=tunnel&source=dataset&rank=0");
});

test("a job stream's state reads as words, a wait as the seconds until the next try", () => {
  assert.equal(streamStateText("open"), "live");
  assert.equal(streamStateText("ended"), "finished");
  assert.equal(streamStateText("waiting", { delay: 1500 }), "reconnecting in 2 s…");
  assert.equal(streamStateText("unauthenticated"), "log in again to follow this job");
  assert.equal(streamStateText("something new"), "something new");
});
