// Training jobs in the browser (the Models pages): the job's WebSocket /ws/models/<id>/ (see
// elmweb/training/consumers.py) with reconnects and the merging of its loss (stage 2) and
// reward (stage 3) messages, plus small helpers of the pages: a stage-3 evaluation's table
// and replays. No DOM: the WebSocket constructor and the timers are injectable (tests pass fakes).

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

// The first message of each connection carries every point of a series the job has logged
// (the server counts from zero again after a reconnect), so it replaces what we had; later
// messages carry only new points, which are appended. Malformed points are dropped; the input
// is not changed.
function mergePoints(points, fresh, isPoint, first) {
  const kept = (Array.isArray(fresh) ? fresh : []).filter((p) => p && isPoint(p));
  if (first) return kept;
  return kept.length ? [...points, ...kept] : points;
}

/** The loss points after one socket message (stage 2): {step, loss} numbers, merged as above. */
export function mergeLoss(points, message, { first = false } = {}) {
  return mergePoints(points, message?.loss, (p) => Number.isFinite(p.step) && Number.isFinite(p.loss), first);
}

/**
 * The reward points after one socket message (stage 3): one per PPO iteration,
 * {iteration, seconds, kl, terrains: {name: {score, valid_rate, best}}}, merged as above.
 */
export function mergeRewards(points, message, { first = false } = {}) {
  return mergePoints(points, message?.rewards, (p) => Number.isFinite(p.iteration) && p.terrains && typeof p.terrains === "object", first);
}

/**
 * The page's view of a job after one socket message: status, progress, error and evaluation
 * summary taken from the message when present, loss and rewards merged by `mergeLoss` and
 * `mergeRewards`.
 */
export function applyModelMessage(job, message, { first = false } = {}) {
  const next = {
    ...job,
    loss: mergeLoss(job.loss ?? [], message, { first }),
    rewards: mergeRewards(job.rewards ?? [], message, { first }),
  };
  for (const key of ["status", "progress", "error", "evaluation"]) {
    if (message && message[key] !== undefined) next[key] = message[key];
  }
  return next;
}

const STREAM_WORDS = Object.freeze({
  connecting: "connecting…",
  open: "live",
  ended: "finished",
  closed: "closed",
  unauthenticated: "log in again to follow this job",
  "not-found": "this model no longer exists",
});

/** A job stream's state (see openModelStream's onState) in words for the page. */
export function streamStateText(state, detail = {}) {
  if (state === "waiting") return `reconnecting in ${Math.ceil(detail.delay / 1000)} s…`;
  return STREAM_WORDS[state] ?? state;
}

/** The last logged loss, or null before the first. */
export const lastLoss = (points) => (points.length ? points.at(-1).loss : null);

/**
 * A stage-3 job's reward curves for chart.drawCurves (key "score", x "iteration"): one series
 * per terrain, in the order given, of {iteration, score, valid_rate, best}.
 */
export function rewardSeries(rewards, terrains) {
  return terrains.map((terrain) => (rewards ?? [])
    .filter((p) => Number.isFinite(p.terrains?.[terrain]?.score))
    .map((p) => ({ iteration: p.iteration, ...p.terrains[terrain] })));
}

/** A job's result as the Models list shows it ("" before its evaluation). */
export function modelResult(job) {
  const e = job?.evaluation;
  if (!e) return "";
  if (job.stage === 3) return `beats best-of-N on ${e.beats} of ${e.total} terrains`;
  return `${Math.round(100 * e.valid_rate)}% valid · ${e.niches} niches`;
}

/** Who wrote a stage-3 evaluation's programs, by source. */
export const SOURCE_NAMES = Object.freeze({ conditional: "the inventor", stage2: "the stage-2 model", dataset: "the dataset" });

/**
 * On one terrain of a stage-3 evaluation, the unconditional walker to replay next to the
 * inventor's: the farthest of the stage-2 model's and the dataset's kept programs (the
 * stage-2 model's on a tie). Null when neither baseline has a walking program.
 * @returns {{source: string, name: string, distance: number, n: number} | null}
 */
export function unconditionalBest(row) {
  let best = null;
  for (const source of ["stage2", "dataset"]) {
    const program = row?.[source]?.programs?.[0];
    if (program && (best === null || program.distance > best.distance)) {
      best = { source, name: SOURCE_NAMES[source], distance: program.distance, n: row[source].n };
    }
  }
  return best;
}

/** The inventor's kept walkers on one terrain, farthest first: [{rank, distance}]. */
export function walkerChoices(row) {
  return (row?.conditional?.programs ?? []).map((program, rank) => ({ rank, distance: program.distance }));
}

/** The replay of a stage-3 evaluation's walker (see elmweb/training/api.py). */
export function replayUrl(modelId, terrain, source, rank = 0) {
  const params = new URLSearchParams({ terrain, source, rank: String(rank) });
  return `/api/models/${modelId}/replay?${params}`;
}

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
