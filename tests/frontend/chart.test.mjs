import { test } from "node:test";
import assert from "node:assert/strict";
import { axisTicks, extent, FRACTION_KEYS, niceDomain, niceTicks } from "../../frontend/chart.js";

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

test("a small coverage axis reads in tenths of a percent, not 0% at every tick", () => {
  const labels = (lo, hi, count) => axisTicks(lo, hi, count, { percent: true }).map((t) => t.label);
  assert.deepEqual(labels(0, 0.003, 3), ["0%", "0.1%", "0.2%", "0.3%"]);
  assert.deepEqual(labels(0, 0.0006, 3), ["0%", "0.02%", "0.04%", "0.06%"]);
  assert.deepEqual(labels(0, 1, 2), ["0%", "50%", "100%"]);
  assert.equal(FRACTION_KEYS.has("coverage") && FRACTION_KEYS.has("valid_rate"), true);
});

test("neighbouring tick labels never read the same", () => {
  for (const [lo, hi] of [[11000, 13000], [0, 2500], [0, 0.0003], [1e6, 1.2e6], [0, 35.9], [-2, 3]]) {
    const labels = axisTicks(lo, hi, 5).map((t) => t.label);
    assert.equal(new Set(labels).size, labels.length, `${lo}..${hi}: ${labels}`);
  }
  assert.deepEqual(axisTicks(11000, 13000, 4).map((t) => t.label), ["11k", "11.5k", "12k", "12.5k", "13k"]);
});

test("a y axis is widened to whole ticks so its top is labelled", () => {
  assert.deepEqual(niceDomain(0, 35.9, 3), [0, 40]);
  assert.deepEqual(niceDomain(0, 0.0029, 3), [0, 0.003]);
  assert.deepEqual(niceDomain(0, 10, 5), [0, 10]);
  assert.deepEqual(niceDomain(3, 3), [3, 3]);
});
