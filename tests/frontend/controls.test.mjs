import { test } from "node:test";
import assert from "node:assert/strict";
import { buttonStates, isLive, validActions } from "../../frontend/controls.js";

test("a created run starts or stops, a running one pauses or stops", () => {
  assert.deepEqual(validActions("created"), ["start", "stop"]);
  assert.deepEqual(validActions("running"), ["pause", "stop"]);
});

test("a paused or pausing run resumes, an ended one accepts nothing", () => {
  assert.deepEqual(validActions("paused"), ["resume", "stop"]);
  assert.deepEqual(validActions("pausing"), ["resume", "stop"]);
  assert.deepEqual(validActions("finished"), []);
  assert.deepEqual(validActions("nonsense"), []);
  assert.ok(isLive("running") && !isLive("failed"));
});

test("buttons are all disabled for someone who may not control the run", () => {
  assert.deepEqual(buttonStates("running"), { start: false, pause: true, resume: false, stop: true });
  assert.deepEqual(buttonStates("running", false), { start: false, pause: false, resume: false, stop: false });
});
