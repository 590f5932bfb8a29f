import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FLAT_TERRAIN, comAt, decodeTrace, distanceAt, duration, extensions, frameAtTime, isActive, overheadTop, positionsAt,
} from "../../frontend/trace.js";

// Two joints over three frames, as the API sends a Trace (little-endian float32, base64).
function traceJson(frames, extra = {}) {
  const flat = new Float32Array(frames.flat(2));
  return {
    fps: 10,
    settle_frames: 1,
    shape: [frames.length, frames[0].length, 2],
    frames_b64: Buffer.from(flat.buffer).toString("base64"),
    muscles: [[0, 1, 0.5, 0.25]],
    terrain: { name: "flat", anchor: "center", segments: [[-2000, -1, 2000, -1, 1]] },
    ...extra,
  };
}
const FRAMES = [
  [[0, 0], [2, 0]],
  [[1, 0], [3, 0]],
  [[3, 2], [7, 2]],
];

test("a trace decodes to its frames, joints and muscles", () => {
  const trace = decodeTrace(traceJson(FRAMES));
  assert.equal(trace.frameCount, 3);
  assert.equal(trace.joints, 2);
  assert.deepEqual([...trace.positions.slice(8)], [3, 2, 7, 2]);
  assert.deepEqual([...trace.restLengths], [2]);
  assert.deepEqual(trace.bounds, { minX: 0, maxX: 7, minY: 0, maxY: 2 });
  assert.equal(duration(trace), 0.2);
});

test("a trace whose bytes do not match its shape is refused", () => {
  assert.throws(() => decodeTrace(traceJson(FRAMES, { shape: [4, 2, 2] })), /needs/);
  assert.throws(() => decodeTrace(traceJson(FRAMES, { shape: [3, 4, 1] })), /shape/);
});

test("positions between frames are interpolated linearly", () => {
  const trace = decodeTrace(traceJson(FRAMES));
  assert.deepEqual([...positionsAt(trace, 1.5)], [2, 1, 5, 1]);
  assert.deepEqual([...positionsAt(trace, 1)], [1, 0, 3, 0]);
});

test("times before the start or after the end show the first or last frame", () => {
  const trace = decodeTrace(traceJson(FRAMES));
  assert.deepEqual([...positionsAt(trace, -3)], [0, 0, 2, 0]);
  assert.deepEqual([...positionsAt(trace, 99)], [3, 2, 7, 2]);
  assert.equal(frameAtTime(trace, 0.05), 0.5);
  assert.equal(frameAtTime(trace, 5), 2);
});

test("the centre of mass and the distance are measured after settling", () => {
  const trace = decodeTrace(traceJson(FRAMES));
  assert.deepEqual(comAt(trace, 1.5), [3.5, 1]);
  assert.equal(distanceAt(trace, 0.5), 0);
  assert.equal(distanceAt(trace, 2), 3);
});

test("muscle extension compares a muscle's length with its first-frame length", () => {
  const trace = decodeTrace(traceJson(FRAMES));
  assert.deepEqual(extensions(trace, positionsAt(trace, 2)), [1]);
  assert.ok(isActive(trace, 0));
  assert.ok(!isActive(decodeTrace(traceJson(FRAMES, { muscles: [[0, 1, 0, 0]] })), 0));
});

// Terrains as evolution/sodarace/_terrain.py lays them out (Terrain.to_dict), trimmed.
const GROUND = [-2000, -1, 2000, -1, 1];
const TERRAINS = {
  flat: [GROUND],
  bumpy: [[-2000, -1, -300, -1, 1], [-9, -1, -8, -1, 1], [8, -1, 9, -0.79, 1], [9, -0.79, 10, 0.4, 1], [300, -0.6, 2000, -0.6, 1]],
  "left-wall": [GROUND, [-2, 0, -2, 200, 1]],
  "right-wall": [GROUND, [2, 0, 2, 200, 1]],
  tunnel: [GROUND, [-2, 0, -2, 200, 1], [15, 7, 2000, 7, 1]],
};

test("a tunnel's ceiling is the only overhead part of the five terrains", () => {
  const tops = Object.fromEntries(Object.entries(TERRAINS).map(([name, segments]) => [name, overheadTop({ name, segments })]));
  assert.deepEqual(tops, { flat: 0, bumpy: 0, "left-wall": 0, "right-wall": 0, tunnel: 8 });
});

test("every terrain's segments come through decoding as the engine laid them out", () => {
  for (const [name, segments] of Object.entries(TERRAINS)) {
    const trace = decodeTrace(traceJson(FRAMES, { terrain: { name, anchor: "left", segments } }));
    assert.equal(trace.terrain.name, name);
    assert.deepEqual(trace.terrain.segments, segments);
  }
});

test("a trace without a terrain is drawn on flat ground, not on nothing", () => {
  const trace = decodeTrace(traceJson(FRAMES, { terrain: undefined }));
  assert.equal(trace.terrain, FLAT_TERRAIN);
  assert.deepEqual(trace.terrain.segments, [GROUND]);
  assert.equal(overheadTop(undefined), 0);
});
