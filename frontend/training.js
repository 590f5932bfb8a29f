// Stage-2 training jobs in the browser (the Models pages): the job's WebSocket
// /ws/models/<id>/ (see elmweb/training/consumers.py) with reconnects and the merging of its
// loss messages, plus small helpers of the pages. No DOM: the WebSocket constructor and the
// timers are injectable (tests pass fakes).

import { openSocket } from "./stream.js";

/** Statuses after which a job never changes again (TrainedModel.TERMINAL). */
export const TERMINAL_STATUSES = Object.freeze(["done", "cancelled", "failed"]);

/** Whether a job in `status` has ended. */
export const isTerminal = (status) => TERMINAL_STATUSES.includes(status);

/** The socket URL of a training job, from a page location. */
export function modelSocketUrl(location, modelId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/models/${modelId}/`;
}

/**
 * The loss points after one socket message. The first message of each connection carries
 * every point the job has logged (the server counts from zero again after a reconnect), so
 * it replaces what we had; later messages carry only new points, which are appended.
 * Points that are not {step, loss} numbers are dropped; the input is not changed.
 */
export function mergeLoss(points, message, { first = false } = {}) {
  const fresh = (Array.isArray(message?.loss) ? message.loss : []).filter(
    (p) => p && Number.isFinite(p.step) && Number.isFinite(p.loss),
  );
  if (first) return fresh;
  return fresh.length ? [...points, ...fresh] : points;
}

/**
 * The page's view of a job after one socket message: status, progress, error and evaluation
 * summary taken from the message when present, loss merged by `mergeLoss`.
 */
export function applyModelMessage(job, message, { first = false } = {}) {
  const next = { ...job, loss: mergeLoss(job.loss ?? [], message, { first }) };
  for (const key of ["status", "progress", "error", "evaluation"]) {
    if (message && message[key] !== undefined) next[key] = message[key];
  }
  return next;
}

/** The last logged loss, or null before the first. */
export const lastLoss = (points) => (points.length ? points.at(-1).loss : null);

/** The dataset download of runs at a threshold and held-out fraction. */
export function datasetUrl(runs, threshold, heldout) {
  const params = new URLSearchParams({ runs: runs.join(","), threshold: String(threshold), heldout: String(heldout) });
  return `/api/models/dataset?${params.toString().replaceAll("%2C", ",")}`;
}

/** Failures by kind, most frequent first: [[kind, count], ...]. */
export function failureRows(failures) {
  return Object.entries(failures ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/**
 * The evaluation's archive ({dims, ranges, names, elites}) as the state archive.js draws
 * (mapView, fitnessRange, binCentre): cells keyed by coordinates, `gid` the sample's id.
 */
export function archiveFromEvaluation(archive) {
  const cells = new Map();
  for (const e of archive?.elites ?? []) {
    cells.set(e.cell.join(","), { cell: e.cell, gid: e.genome_id, fitness: e.fitness, descriptor: e.descriptor ?? null, text: e.text ?? "" });
  }
  return { dims: archive?.dims ?? [1, 1, 1], ranges: archive?.ranges ?? [], names: archive?.names ?? [], cells };
}

/**
 * Follow a job over its WebSocket: reconnects with backoff until a message shows it ended
 * (the server then closes), or a close code says retrying cannot help.
 *
 * @param {object} options
 * @param {() => string} options.url  socket URL.
 * @param {(message: object, info: {first: boolean}) => void} options.onMessage  each message;
 *   `first` is true for the first message of each connection (it carries every loss point).
 * @param {(state: string, detail?: object) => void} [options.onState]  "connecting", "open",
 *   "waiting" (detail.delay), "ended" (the job is terminal), "closed", or a fatal reason.
 * @param {Function} [options.WebSocket]  constructor (default: globalThis.WebSocket).
 * @param {object} [options.timers]  {setTimeout, clearTimeout}.
 * @param {object} [options.backoff]  options of backoffDelay.
 * @returns {{close(): void, state(): string}}
 */
export function openModelStream(options) {
  const socket = openSocket({
    ...options,
    onMessage(message, info) {
      if (!message || typeof message !== "object") return undefined;
      options.onMessage(message, info);
      return isTerminal(message.status) ? "stop" : undefined;
    },
  });
  return { close: socket.close, state: socket.state };
}
