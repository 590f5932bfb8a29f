import { test } from "node:test";
import assert from "node:assert/strict";
import { applyEvent, binCentre, cellAtPoint, createArchiveState, filledCount, fitnessRange, flashIndices, mapGeometry, mapView, rampColor, revealsBestTrace } from "../../frontend/archive.js";

const run = { status: "running", evaluations: 9, last_event_id: 3, config: { dims: [2, 3, 2], ranges: [[0, 10], [0, 30], [0, 4]] } };
const archive = {
  dims: [2, 3, 2],
  ranges: [[0, 10], [0, 30], [0, 4]],
  cells: [
    { cell: [0, 0, 0], gid: 0, fitness: 1.0, batch: 0 },
    { cell: [0, 0, 1], gid: 4, fitness: 3.0, batch: 1 },
  ],
};
const metrics = [{ batch: 1, evaluations: 9, coverage: 2 / 12, qd_score: 4 }];

function batch(id, batchNo, cells, extra = {}) {
  return { id, kind: "batch", payload: { batch: batchNo, evaluations: 9 + 8 * batchNo, coverage: 0.5, qd_score: 9, max_fitness: 5, valid_rate: 1, evals_per_s: 10, cells, ...extra } };
}

test("a state built from the API holds every occupied cell and the best elite", () => {
  const state = createArchiveState({ run, archive, metrics });
  assert.equal(filledCount(state), 2);
  assert.equal(state.best.gid, 4);
  assert.equal(state.status, "running");
  assert.equal(state.lastEventId, 3);
});

test("a batch event adds new cells, improves others and says which", () => {
  const state = createArchiveState({ run, archive, metrics });
  const next = applyEvent(state, batch(4, 2, [
    { cell: [1, 2, 0], gid: 11, fitness: 2.0 },
    { cell: [0, 0, 0], gid: 12, fitness: 1.5 },
  ]));
  assert.equal(filledCount(next), 3);
  assert.deepEqual(next.changed.map((c) => [c.key, c.kind]), [["1,2,0", "new"], ["0,0,0", "improved"]]);
  assert.equal(next.cells.get("0,0,0").gid, 12);
  assert.equal(next.evaluations, 25);
  assert.equal(next.metrics.length, 2);
  assert.equal(next.metrics[1].cells, undefined);
  assert.equal(filledCount(state), 2, "the previous state is left unchanged");
});

test("events already applied are ignored when replayed after a reconnect", () => {
  const state = createArchiveState({ run, archive, metrics });
  const once = applyEvent(state, batch(4, 2, [{ cell: [1, 1, 1], gid: 11, fitness: 2 }]));
  assert.equal(applyEvent(once, batch(4, 2, [{ cell: [1, 1, 1], gid: 11, fitness: 2 }])), once);
  assert.equal(applyEvent(once, batch(2, 1, [])), once);
});

test("a metric row is kept once per batch", () => {
  const state = createArchiveState({ run, archive, metrics });
  const next = applyEvent(state, batch(4, 1, []));
  assert.equal(next.metrics.length, 1);
});

test("a status event changes the status and keeps the error of a failure", () => {
  const state = createArchiveState({ run, archive, metrics });
  const failed = applyEvent(state, { id: 4, kind: "status", payload: { status: "failed", error: "boom" } });
  assert.equal(failed.status, "failed");
  assert.equal(failed.error, "boom");
  const resumed = applyEvent(failed, { id: 5, kind: "status", payload: { status: "running" } });
  assert.equal(resumed.error, "");
});

test("the max-over-mass view shows the fittest elite of each height and width", () => {
  const state = createArchiveState({ run, archive, metrics });
  const view = mapView(state, "max");
  assert.equal(view.rows, 2);
  assert.equal(view.cols, 3);
  assert.equal(view.grid[0].gid, 4);
  assert.equal(view.grid.filter(Boolean).length, 1);
});

test("a mass bin view shows only that bin's elites", () => {
  const state = createArchiveState({ run, archive, metrics });
  assert.equal(mapView(state, 0).grid[0].gid, 0);
  assert.equal(mapView(state, "1").grid[0].gid, 4);
});

test("only changes visible in the current view flash", () => {
  let state = createArchiveState({ run, archive, metrics });
  state = applyEvent(state, batch(4, 2, [
    { cell: [0, 0, 0], gid: 12, fitness: 2.0 },
    { cell: [1, 1, 1], gid: 13, fitness: 2.0 },
  ]));
  assert.deepEqual(flashIndices(state, state.changed, "max"), [4], "cell 0,0,0 is hidden by 0,0,1");
  assert.deepEqual(flashIndices(state, state.changed, 0), [0]);
  assert.deepEqual(flashIndices(state, state.changed, 1), [4]);
});

test("the fitness range starts at zero and is never empty", () => {
  assert.deepEqual(fitnessRange(createArchiveState({})), [0, 1]);
  assert.deepEqual(fitnessRange(createArchiveState({ run, archive })), [0, 3]);
});

test("bin centres are in descriptor units", () => {
  const state = createArchiveState({ run, archive });
  assert.equal(binCentre(state, 0, 0), 2.5);
  assert.equal(binCentre(state, 1, 2), 25);
});

test("the colour ramp runs from dark purple to yellow and clamps", () => {
  assert.equal(rampColor(0), "rgb(68 1 84)");
  assert.equal(rampColor(1), "rgb(253 231 37)");
  assert.equal(rampColor(2), rampColor(1));
  assert.equal(rampColor(NaN), rampColor(0));
});

test("the map puts height bin 0 at the bottom and width bin 0 on the left", () => {
  const g = mapGeometry(2, 4, 400, 100);
  assert.equal(g.cell, 50);
  assert.equal(g.x(0), 100);
  assert.equal(g.y(0), 50);
  assert.equal(g.y(1), 0);
});

test("a point finds the cell under it, and nothing outside the map", () => {
  assert.equal(cellAtPoint(2, 4, 400, 100, 101, 99), 0);
  assert.equal(cellAtPoint(2, 4, 400, 100, 299, 1), 7);
  assert.equal(cellAtPoint(2, 4, 400, 100, 50, 50), -1);
});

test("an older event replayed over a newer archive never puts back a worse elite", () => {
  const state = createArchiveState({ run: { ...run, last_event_id: 0 }, archive, metrics });
  const next = applyEvent(state, batch(1, 1, [{ cell: [0, 0, 1], gid: 2, fitness: 2.5 }, { cell: [0, 0, 0], gid: 0, fitness: 1.0 }]));
  assert.equal(next.cells.get("0,0,1").gid, 4);
  assert.deepEqual(next.changed, []);
});

test("a map view carries the height and width ranges its axes are labelled with", () => {
  const view = mapView(createArchiveState({ run, archive }), "max");
  assert.deepEqual(view.ranges, [[0, 10], [0, 30]]);
  assert.deepEqual(mapView(createArchiveState({}), "max").ranges, [[0, 1], [0, 1]], "bins when no range is known");
});

test("a map with axes leaves their margin free and finds cells inside it", () => {
  const margin = { left: 40, right: 0, top: 0, bottom: 20 };
  const g = mapGeometry(2, 4, 440, 120, margin);
  assert.equal(g.cell, 50);
  assert.equal(g.x(0), 140, "centred in the 400 px left of the axis");
  assert.equal(g.y(0), 50);
  assert.equal(cellAtPoint(2, 4, 440, 120, 141, 99, margin), 0);
  assert.equal(cellAtPoint(2, 4, 440, 120, 141, 110, margin), -1, "the width axis is not a cell");
  assert.equal(cellAtPoint(2, 4, 440, 120, 101, 99), 0, "no margin: the old geometry");
});

test("the best elite's replay is looked for when a trace event names it or the run ends", () => {
  const state = createArchiveState({ run, archive, metrics }); // best: genome 4
  const trace = (gids) => ({ id: 9, kind: "trace", payload: { batch: 1, gids } });
  assert.equal(revealsBestTrace(state, trace([3, 4])), true);
  assert.equal(revealsBestTrace(state, trace([3])), false, "another genome's trace");
  const ended = applyEvent(state, { id: 9, kind: "status", payload: { status: "finished" } });
  assert.equal(revealsBestTrace(ended, { id: 9, kind: "status", payload: { status: "finished" } }), true);
  assert.equal(revealsBestTrace(state, { id: 9, kind: "status", payload: { status: "running" } }), false);
  assert.equal(revealsBestTrace(createArchiveState({}), trace([0])), false, "no elite yet");
});

test("a trace event moves the cursor and changes nothing else", () => {
  const state = createArchiveState({ run, archive, metrics });
  const next = applyEvent(state, { id: 9, kind: "trace", payload: { batch: 1, gids: [4] } });
  assert.equal(next.lastEventId, 9);
  assert.equal(next.cells, state.cells);
  assert.deepEqual(next.changed, []);
});

test("an evaluating event says which batch is being evaluated until that batch is stored", () => {
  const state = createArchiveState({ run, archive, metrics });
  assert.equal(state.evaluating, null);
  const written = applyEvent(state, { id: 4, kind: "evaluating", payload: { batch: 2, children: 8, chunks: 3 } });
  assert.deepEqual(written.evaluating, { batch: 2, children: 8, chunks: 3 });
  assert.equal(filledCount(written), 2, "nothing else changes");
  assert.equal(applyEvent(written, batch(5, 2, [])).evaluating, null);
  const pausing = applyEvent(written, { id: 5, kind: "status", payload: { status: "pausing" } });
  assert.deepEqual(pausing.evaluating, written.evaluating, "a pause waits for the batch in flight");
  assert.equal(applyEvent(written, { id: 5, kind: "status", payload: { status: "failed", error: "x" } }).evaluating, null);
});
