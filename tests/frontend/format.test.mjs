import { test } from "node:test";
import assert from "node:assert/strict";
import { formatCompact, formatDuration, formatFitness, formatInt, formatPercent, formatTicks } from "../../frontend/format.js";

test("integers are grouped by thousands", () => {
  assert.equal(formatInt(12345), "12,345");
  assert.equal(formatInt(0), "0");
});

test("missing numbers show a dash instead of NaN", () => {
  for (const fn of [formatInt, formatCompact, formatFitness, formatPercent]) {
    assert.equal(fn(null), "–");
    assert.equal(fn(undefined), "–");
    assert.equal(fn(NaN), "–");
  }
});

test("compact numbers use k, M and G suffixes", () => {
  assert.equal(formatCompact(1234), "1.2k");
  assert.equal(formatCompact(2500000), "2.5M");
  assert.equal(formatCompact(3e9), "3G");
  assert.equal(formatCompact(-1500), "-1.5k");
});

test("compact numbers keep three significant digits below a thousand", () => {
  assert.equal(formatCompact(12.5), "12.5");
  assert.equal(formatCompact(123.456), "123");
  assert.equal(formatCompact(0.012345), "0.0123");
  assert.equal(formatCompact(0), "0");
  assert.equal(formatCompact(5), "5");
});

test("fitness has two decimals and percentages one", () => {
  assert.equal(formatFitness(3.14159), "3.14");
  assert.equal(formatPercent(0.1234), "12.3%");
  assert.equal(formatPercent(1), "100.0%");
});

test("durations read as seconds, minutes and hours", () => {
  assert.equal(formatDuration(5), "5s");
  assert.equal(formatDuration(125), "2m 05s");
  assert.equal(formatDuration(3725), "1h 02m");
  assert.equal(formatDuration(-1), "–");
});

test("a small fraction keeps two significant digits as a percentage", () => {
  assert.equal(formatPercent(0.0002), "0.02%");
  assert.equal(formatPercent(0.00058), "0.058%");
  assert.equal(formatPercent(0.003), "0.3%");
  assert.equal(formatPercent(0), "0.0%");
});

test("tick labels have the decimals their spacing needs", () => {
  assert.deepEqual(formatTicks([0, 0.001, 0.002], { percent: true }), ["0%", "0.1%", "0.2%"]);
  assert.deepEqual(formatTicks([0, 0.5, 1], { percent: true }), ["0%", "50%", "100%"]);
  assert.deepEqual(formatTicks([0, 0.5, 1, 1.5]), ["0", "0.5", "1", "1.5"]);
  assert.deepEqual(formatTicks([12000, 12500, 13000]), ["12k", "12.5k", "13k"]);
  assert.deepEqual(formatTicks([0, 1e6, 2e6]), ["0", "1M", "2M"]);
  assert.deepEqual(formatTicks([-0.2, -1e-17, 0.2]), ["-0.2", "0", "0.2"]);
  assert.deepEqual(formatTicks([0.0025], { percent: true }), ["0.25%"]);
});
