// Replay traces: decoding the API's JSON (GET /api/runs/<id>/genomes/<gid>/trace, which is
// the stored "SRT1" Trace as {fps, settle_frames, shape: [T, J, 2], frames_b64: base64 of
// little-endian float32, muscles: [[a, b, amplitude, phase]], terrain: {name, anchor,
// segments: [[x0, y0, x1, y1, radius]]}}) and sampling it at any time. No DOM.
//
// Terrain geometry (evolution/sodarace/_terrain.py, Terrain.to_dict) is laid out in the same
// lane-local world units as the frames: thick segments whose surface is where the engine put it.
// flat: one ground segment at y = -radius; bumpy: ~600 short ground segments following the
// bumps; left-wall / right-wall: the ground plus one vertical wall beside the start; tunnel: the
// ground, the left wall and a horizontal ceiling starting past the walker's right edge.

/** Flat ground as the engine lays it out, for a trace that names no terrain. */
export const FLAT_TERRAIN = Object.freeze({ name: "flat", anchor: "center", segments: [[-2000, -1, 2000, -1, 1]] });

/** Bytes of a base64 string (browsers and Node both have atob). */
export function base64Bytes(text) {
  const binary = globalThis.atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Decode the API's trace into typed arrays.
 * @returns {{fps: number, settleFrames: number, frameCount: number, joints: number,
 *   positions: Float32Array, muscles: number[][], restLengths: Float32Array, terrain: object,
 *   com: Float32Array, bounds: {minX, maxX, minY, maxY}}}
 *   positions[(t * joints + j) * 2 + {0: x, 1: y}]; com[t * 2 + {0, 1}] (unweighted mean).
 * @throws {Error} If the frames do not match the stated shape.
 */
export function decodeTrace(json) {
  const [frameCount, joints, two] = json.shape;
  if (two !== 2) throw new Error(`a trace's shape must be [T, J, 2], got ${JSON.stringify(json.shape)}`);
  const bytes = base64Bytes(json.frames_b64);
  const expected = frameCount * joints * 2 * 4;
  if (bytes.length !== expected) throw new Error(`the trace has ${bytes.length} bytes of frames; shape ${json.shape} needs ${expected}`);
  const view = new DataView(bytes.buffer);
  const positions = new Float32Array(frameCount * joints * 2);
  for (let i = 0; i < positions.length; i += 1) positions[i] = view.getFloat32(i * 4, true);
  const muscles = json.muscles ?? [];
  const restLengths = new Float32Array(muscles.length);
  muscles.forEach(([a, b], k) => {
    restLengths[k] = Math.hypot(positions[b * 2] - positions[a * 2], positions[b * 2 + 1] - positions[a * 2 + 1]);
  });
  const com = new Float32Array(frameCount * 2);
  const bounds = { minX: Infinity, maxX: -Infinity, minY: Infinity, maxY: -Infinity };
  for (let t = 0; t < frameCount; t += 1) {
    let sx = 0;
    let sy = 0;
    for (let j = 0; j < joints; j += 1) {
      const x = positions[(t * joints + j) * 2];
      const y = positions[(t * joints + j) * 2 + 1];
      sx += x;
      sy += y;
      bounds.minX = Math.min(bounds.minX, x);
      bounds.maxX = Math.max(bounds.maxX, x);
      bounds.minY = Math.min(bounds.minY, y);
      bounds.maxY = Math.max(bounds.maxY, y);
    }
    com[t * 2] = joints ? sx / joints : 0;
    com[t * 2 + 1] = joints ? sy / joints : 0;
  }
  return {
    fps: json.fps,
    settleFrames: json.settle_frames ?? 0,
    frameCount,
    joints,
    positions,
    muscles,
    restLengths,
    terrain: json.terrain ?? FLAT_TERRAIN,
    com,
    bounds,
  };
}

/**
 * The top of a terrain's overhead parts (a tunnel's ceiling): the highest point of the segments
 * that run more across than up and lie wholly above the ground line (y = 0); 0 when there are
 * none. Walls (vertical) and the ground (at or below 0, bumps included) are not overhead.
 */
export function overheadTop(terrain) {
  let top = 0;
  for (const [x0, y0, x1, y1, r = 0] of terrain?.segments ?? []) {
    if (Math.abs(x1 - x0) > Math.abs(y1 - y0) && Math.min(y0, y1) - r > 0) top = Math.max(top, y0 + r, y1 + r);
  }
  return top;
}

/** Seconds of replay (all frames, settling included). */
export const duration = (trace) => (trace.frameCount > 1 ? (trace.frameCount - 1) / trace.fps : 0);

/** The fractional frame index at `seconds`, clamped to the trace. */
export function frameAtTime(trace, seconds) {
  return Math.min(trace.frameCount - 1, Math.max(0, seconds * trace.fps));
}

/**
 * Joint positions at fractional frame `f` (linear interpolation between the two nearest
 * frames; clamped to the first and last). Writes into `out` when given.
 * @returns {Float32Array} length joints * 2: x0, y0, x1, y1, ...
 */
export function positionsAt(trace, f, out = new Float32Array(trace.joints * 2)) {
  const last = trace.frameCount - 1;
  const g = Math.min(last, Math.max(0, f));
  const i = Math.min(last, Math.floor(g));
  const k = Math.min(last, i + 1);
  const w = g - i;
  const n = trace.joints * 2;
  const p = trace.positions;
  for (let c = 0; c < n; c += 1) out[c] = p[i * n + c] * (1 - w) + p[k * n + c] * w;
  return out;
}

/** Centre of mass at fractional frame `f`: [x, y]. */
export function comAt(trace, f) {
  const last = trace.frameCount - 1;
  const g = Math.min(last, Math.max(0, f));
  const i = Math.floor(g);
  const k = Math.min(last, i + 1);
  const w = g - i;
  return [trace.com[i * 2] * (1 - w) + trace.com[k * 2] * w, trace.com[i * 2 + 1] * (1 - w) + trace.com[k * 2 + 1] * w];
}

/** Distance travelled along x since settling ended (0 while settling), at frame `f`. */
export function distanceAt(trace, f) {
  if (f <= trace.settleFrames) return 0;
  return comAt(trace, f)[0] - comAt(trace, trace.settleFrames)[0];
}

/**
 * Each muscle's extension at the given positions: length / rest length - 1 (positive:
 * stretched), rest length being its length in the first frame.
 */
export function extensions(trace, positions) {
  return trace.muscles.map(([a, b], k) => {
    const rest = trace.restLengths[k];
    if (!(rest > 0)) return 0;
    const len = Math.hypot(positions[b * 2] - positions[a * 2], positions[b * 2 + 1] - positions[a * 2 + 1]);
    return len / rest - 1;
  });
}

/** Whether muscle k oscillates (its amplitude is not zero). */
export const isActive = (trace, k) => Math.abs(trace.muscles[k][2] ?? 0) > 1e-9;
