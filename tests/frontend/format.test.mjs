import { test } from "node:test";
import assert from "node:assert/strict";
import { formatCompact, formatDuration, formatFitness, formatInt, formatPercent } from "../../frontend/format.js";

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
