// The archive's state in the browser, and the pure reducer that applies a run's events to it.
// Cells are keyed by their coordinates ("h,w,m": height bin, width bin, mass bin, as the
// engine's descriptor order). No DOM.

/** "3,4,5" from [3, 4, 5]. */
export const cellKey = (coords) => coords.join(",");

/**
 * A fresh state from the API: GET /api/runs/<id> (run), /archive and /metrics.
 * @returns {{dims: number[], ranges: number[][], cells: Map, metrics: object[], status: string,
 *   evaluations: number, error: string, lastEventId: number, changed: object[], best: object|null}}
 */
export function createArchiveState({ run = {}, archive = {}, metrics = [] } = {}) {
  const dims = archive.dims ?? run.config?.dims ?? [1, 1, 1];
  const cells = new Map();
  for (const c of archive.cells ?? []) {
    cells.set(cellKey(c.cell), { cell: c.cell, gid: c.gid, fitness: c.fitness, batch: c.batch ?? null, descriptor: c.descriptor ?? null });
  }
  return {
    dims,
    ranges: archive.ranges ?? run.config?.ranges ?? [],
    cells,
    metrics: [...metrics].sort((a, b) => a.batch - b.batch),
    status: run.status ?? "created",
    error: run.error ?? "",
    evaluations: run.evaluations ?? 0,
    lastEventId: run.last_event_id ?? 0,
    changed: [],
    best: bestOf(cells),
    evaluating: null, // { batch, children, chunks } while a written batch is evaluated apart
  };
}

function bestOf(cells) {
  let best = null;
  for (const c of cells.values()) if (best === null || c.fitness > best.fitness) best = c;
  return best;
}

/**
 * Apply one event ({id, kind, payload}) and return the next state (the input is not changed).
 * `changed` lists the cells this event touched: {key, cell, kind: "new" | "improved"}.
 * Events at or below `lastEventId` are ignored (a replay after reconnecting).
 */
export function applyEvent(state, event) {
  if (typeof event?.id === "number" && event.id <= state.lastEventId) return state;
  const next = { ...state, lastEventId: event.id ?? state.lastEventId, changed: [] };
  const payload = event.payload ?? {};
  if (event.kind === "status") {
    next.status = payload.status ?? state.status;
    next.error = payload.error ?? (payload.status === "failed" ? state.error : "");
    if (next.status !== "running" && next.status !== "pausing") next.evaluating = null;
    return next;
  }
  if (event.kind === "evaluating") {
    next.evaluating = { batch: payload.batch, children: payload.children, chunks: payload.chunks };
    return next;
  }
  if (event.kind !== "batch") return next;
  next.evaluating = null;
  next.cells = new Map(state.cells);
  for (const c of payload.cells ?? []) {
    const key = cellKey(c.cell);
    const before = next.cells.get(key);
    // Elites only ever improve: an event replayed over a newer archive must not undo it.
    if (before && (before.fitness > c.fitness || (before.fitness === c.fitness && before.gid >= c.gid))) continue;
    next.cells.set(key, { ...before, cell: c.cell, gid: c.gid, fitness: c.fitness, batch: payload.batch ?? null });
    next.changed.push({ key, cell: c.cell, kind: before ? "improved" : "new" });
  }
  next.best = bestOf(next.cells);
  if (typeof payload.evaluations === "number") next.evaluations = Math.max(state.evaluations, payload.evaluations);
  if (typeof payload.batch === "number" && !state.metrics.some((m) => m.batch === payload.batch)) {
    const { cells: _cells, ...row } = payload;
    next.metrics = [...state.metrics, row].sort((a, b) => a.batch - b.batch);
  }
  return next;
}

/** How many cells hold an elite. */
export const filledCount = (state) => state.cells.size;

/**
 * The 2-D map (height rows x width columns) shown for `mass`: a mass bin index, or "max" for
 * the best elite over every mass bin. Returns {rows, cols, grid, ranges}, grid[row * cols + col]
 * being the shown elite or null, ranges the [low, high] of height and width (axis labels).
 */
export function mapView(state, mass = "max") {
  const [rows, cols] = state.dims;
  const ranges = [state.ranges?.[0] ?? [0, rows], state.ranges?.[1] ?? [0, cols]];
  const grid = new Array(rows * cols).fill(null);
  for (const c of state.cells.values()) {
    const [h, w, m = 0] = c.cell;
    if (mass !== "max" && m !== Number(mass)) continue;
    const i = h * cols + w;
    if (grid[i] === null || c.fitness > grid[i].fitness) grid[i] = c;
  }
  return { rows, cols, grid, ranges };
}

/** Indices into mapView's grid of the cells to flash for `changed` under the same `mass`. */
export function flashIndices(state, changed, mass = "max") {
  const cols = state.dims[1];
  const view = mass === "max" ? mapView(state, "max") : null;
  const out = new Set();
  for (const { cell } of changed) {
    const [h, w, m = 0] = cell;
    if (mass !== "max" && m !== Number(mass)) continue;
    const i = h * cols + w;
    // Under max-over-mass a change only shows if the changed cell is now the one displayed.
    if (view && cellKey(view.grid[i]?.cell ?? []) !== cellKey(cell)) continue;
    out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

/** [low, high] of the elites' fitness (0..1 when empty or flat). */
export function fitnessRange(state) {
  let low = Infinity;
  let high = -Infinity;
  for (const c of state.cells.values()) {
    low = Math.min(low, c.fitness);
    high = Math.max(high, c.fitness);
  }
  if (!Number.isFinite(low)) return [0, 1];
  if (high - low < 1e-9) return [Math.min(0, low), Math.max(high, low + 1)];
  return [Math.min(0, low), high];
}

/** The centre of a bin of descriptor `dim` in descriptor units (for labels and tooltips). */
export function binCentre(state, dim, index) {
  const [lo, hi] = state.ranges[dim] ?? [0, state.dims[dim]];
  return lo + ((index + 0.5) * (hi - lo)) / state.dims[dim];
}

// A perceptual ramp (viridis, 9 stops) from low (dark blue-purple) to high (yellow).
const RAMP = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

/** The colour of fraction `t` in 0..1 as "rgb(r g b)". */
export function rampColor(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const [r, g, b] = RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v)));
  return `rgb(${r} ${g} ${b})`;
}

const NO_MARGIN = { left: 0, right: 0, top: 0, bottom: 0 };

/**
 * Geometry of the map in a width x height box, less `margin` ({left, right, top, bottom}: room
 * for axis labels): height bins go up (row 0 at the bottom), width bins go right. Returns
 * {cell, left, top, x(col), y(row)} with cell the side of a square cell in pixels.
 */
export function mapGeometry(rows, cols, width, height, margin = NO_MARGIN) {
  const m = { ...NO_MARGIN, ...margin };
  const innerW = Math.max(0, width - m.left - m.right);
  const innerH = Math.max(0, height - m.top - m.bottom);
  const cell = Math.min(innerW / cols, innerH / rows);
  const left = m.left + (innerW - cell * cols) / 2;
  const top = m.top + (innerH - cell * rows) / 2;
  return { cell, left, top, x: (col) => left + col * cell, y: (row) => top + (rows - 1 - row) * cell };
}

/** The grid index under point (px, py), or -1 outside the map (`margin` as mapGeometry's). */
export function cellAtPoint(rows, cols, width, height, px, py, margin = NO_MARGIN) {
  const g = mapGeometry(rows, cols, width, height, margin);
  const col = Math.floor((px - g.left) / g.cell);
  const rowFromTop = Math.floor((py - g.top) / g.cell);
  if (col < 0 || col >= cols || rowFromTop < 0 || rowFromTop >= rows) return -1;
  return (rows - 1 - rowFromTop) * cols + col;
}

/**
 * The best elite's replay may just have become available: a `trace` event names it, or the
 * run ended (its traces are recorded after the batches, see elmweb.runs.services).
 */
export function revealsBestTrace(state, event) {
  if (!state.best) return false;
  if (event?.kind === "trace") return (event.payload?.gids ?? []).includes(state.best.gid);
  return event?.kind === "status" && (state.status === "finished" || state.status === "failed");
}
