import { test } from "node:test";
import assert from "node:assert/strict";
import { extent, niceTicks } from "../../frontend/chart.js";

test("ticks are round numbers covering the range", () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0, 1, 4), [0, 0.5, 1]);
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(10, 0, 2), [0, 5, 10]);
  assert.deepEqual(niceTicks(3, 3), [3]);
  assert.deepEqual(niceTicks(NaN, 1), []);
});

test("ticks avoid floating point noise", () => {
  for (const t of niceTicks(0, 0.3, 3)) assert.equal(String(t).length <= 4, true);
});

test("the extent of curves starts at zero and is never empty", () => {
  assert.deepEqual(extent([[{ q: 2 }, { q: 5 }], [{ q: 7 }]], "q"), [0, 7]);
  assert.deepEqual(extent([[{ q: -2 }]], "q"), [-2, 0]);
  assert.deepEqual(extent([], "q"), [0, 1]);
  assert.deepEqual(extent([[{ q: 4 }]], "q", { zero: false }), [4, 5]);
});
