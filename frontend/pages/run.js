// The run page, live over the run's WebSocket (no polling): archive map, curves, feed of the
// latest genomes, the best elite's replay (fetched when a `trace` event says it exists),
// status and controls.

import { getJSON } from "../api.js";
import { applyEvent, binCentre, cellAtPoint, createArchiveState, filledCount, fitnessRange, flashIndices, mapGeometry, mapView, revealsBestTrace } from "../archive.js";
import { onViewChange, scheduler } from "../canvas.js";
import { drawMetricCurves } from "../chart.js";
import { setControls, setStatus, wireControls, pageData } from "../dom.js";
import { formatCompact, formatFitness, formatInt } from "../format.js";
import { AXES_MARGIN, drawArchiveMap, drawLegend, FLASH_MS } from "../mapview.js";
import { ReplayPlayer } from "../replay.js";
import { openEventStream, runSocketUrl } from "../stream.js";
import { decodeTrace } from "../trace.js";

const run = pageData("run-data");
const $ = (id) => document.getElementById(id);
const mapCanvas = $("archive-map");
const tip = $("map-tip");
const massSelect = $("mass-bin");
const feed = $("genome-feed");
const FEED_MAX = 80;

let state = createArchiveState({ run, archive: { dims: run.config.dims, ranges: run.config.ranges, cells: [] } });
let hover = -1;
const flashes = new Map();

// -- drawing -----------------------------------------------------------------------------------
const markMap = scheduler((now) => {
  const view = mapView(state, massSelect.value);
  for (const [i, start] of flashes) if (now - start > FLASH_MS) flashes.delete(i);
  const range = fitnessRange(state);
  const animating = drawArchiveMap(mapCanvas, view, range, { flashes, now, hover, axes: true });
  $("legend-low").textContent = formatFitness(range[0]);
  $("legend-high").textContent = formatFitness(range[1]);
  if (animating) markMap();
});
const markCurves = scheduler(() => drawMetricCurves(document.querySelectorAll("canvas.curve"), [state.metrics]));
onViewChange(() => {
  markMap();
  markCurves();
  drawLegend($("map-legend"));
});

function showNumbers() {
  setStatus($("run-status"), state.status);
  $("evaluations").textContent = String(state.evaluations);
  mapCanvas.dataset.filled = String(filledCount(state));
  $("filled").textContent = `${formatInt(filledCount(state))} / ${formatInt(run.cells)}`;
  const last = state.metrics.at(-1);
  $("max-fitness").textContent = formatFitness(state.best?.fitness ?? last?.max_fitness ?? run.max_fitness);
  $("qd-score").textContent = formatCompact(last?.qd_score ?? run.qd_score);
  $("run-error").textContent = state.error || "";
  const e = state.evaluating;
  $("run-phase").textContent = e
    ? ` · batch ${e.batch}: ${formatInt(e.children)} children written, being evaluated (${formatInt(e.chunks)} chunk${e.chunks === 1 ? "" : "s"})`
    : "";
  setControls(document.querySelector(".page-head .controls"), state.status, run.can_control);
}

// -- the feed of genomes -----------------------------------------------------------------------
function feedItem(g) {
  const li = document.createElement("li");
  const link = document.createElement("a");
  link.href = `/genomes/${g.id}/`;
  link.textContent = `genome ${g.gid}`;
  const outcome = document.createElement("span");
  outcome.className = "status-badge";
  outcome.dataset.status = g.outcome;
  outcome.textContent = g.outcome;
  const fitness = document.createElement("span");
  fitness.className = "num";
  fitness.textContent = g.fitness === null ? "–" : formatFitness(g.fitness);
  const why = document.createElement("span");
  why.className = "why";
  why.textContent = g.failure ? g.failure : `${g.operator}${g.cell ? ` · cell ${g.cell.join(",")}` : ""}`;
  why.title = why.textContent;
  li.append(link, outcome, fitness, why);
  return li;
}

async function loadFeed(batch) {
  if (batch < 0) return;
  const page = await getJSON(`/api/runs/${run.id}/genomes?batch=${batch}&limit=${FEED_MAX}`);
  const items = page.results.slice().reverse().map(feedItem);
  feed.prepend(...items);
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
}

// -- the best elite's replay -------------------------------------------------------------------
// Traces are recorded after their batch (often after the run ended): the replay is fetched
// when the best changes and again when a `trace` event names it, never on a timer.
const player = new ReplayPlayer($("best-replay"), { controls: $("best-controls") });
let shownBest = null;
let bestLoads = Promise.resolve();

/** Show the best elite's replay if it exists (calls run one after another, never twice at once). */
function showBest() {
  bestLoads = bestLoads.then(loadBest);
}

async function loadBest() {
  const best = state.best;
  if (!best || best.gid === shownBest) return;
  const empty = $("best-empty");
  try {
    const genome = await getJSON(`/api/runs/${run.id}/genomes/${best.gid}`);
    if (!genome.evaluation?.has_trace) {
      empty.textContent = `Genome ${best.gid} leads (fitness ${formatFitness(best.fitness)}); its replay shows once it is recorded.`;
      return;
    }
    const trace = decodeTrace(await getJSON(`/api/runs/${run.id}/genomes/${best.gid}/trace`));
    if (state.best?.gid !== best.gid) return;
    shownBest = best.gid;
    player.load(trace);
    empty.hidden = true;
    const link = $("best-link");
    link.href = `/runs/${run.id}/genomes/${best.gid}/`;
    link.textContent = `genome ${best.gid} · ${formatFitness(best.fitness)}`;
    link.hidden = false;
  } catch (error) {
    empty.textContent = `No replay: ${error.message}`;
  }
}

// -- map interaction ---------------------------------------------------------------------------
function eliteAt(index) {
  return index < 0 ? null : mapView(state, massSelect.value).grid[index];
}

function showTip(index, px, py) {
  const elite = eliteAt(index);
  hover = index;
  markMap();
  if (!elite) {
    tip.hidden = true;
    return;
  }
  const [h, w, m] = elite.cell;
  tip.replaceChildren();
  const lines = [
    `genome ${elite.gid} · fitness ${formatFitness(elite.fitness)}`,
    `height ≈ ${formatCompact(binCentre(state, 0, h))} (bin ${h})`,
    `width ≈ ${formatCompact(binCentre(state, 1, w))} (bin ${w})`,
    `mass ≈ ${formatCompact(binCentre(state, 2, m ?? 0))} (bin ${m ?? 0})`,
    elite.batch !== null && elite.batch !== undefined ? `found in batch ${elite.batch}` : "",
  ].filter(Boolean);
  for (const line of lines) {
    const div = document.createElement("div");
    div.textContent = line;
    tip.append(div);
  }
  tip.style.left = `${Math.min(px + 14, mapCanvas.clientWidth - 210)}px`;
  tip.style.top = `${Math.min(py + 14, mapCanvas.clientHeight - 100)}px`;
  tip.hidden = false;
}

function pointIndex(event) {
  const rect = mapCanvas.getBoundingClientRect();
  const px = event.clientX - rect.left;
  const py = event.clientY - rect.top;
  return [cellAtPoint(state.dims[0], state.dims[1], rect.width, rect.height, px, py, AXES_MARGIN), px, py];
}

mapCanvas.addEventListener("mousemove", (event) => showTip(...pointIndex(event)));
mapCanvas.addEventListener("mouseleave", () => {
  hover = -1;
  tip.hidden = true;
  markMap();
});
mapCanvas.addEventListener("click", (event) => {
  const elite = eliteAt(pointIndex(event)[0]);
  if (elite) window.location.href = `/runs/${run.id}/genomes/${elite.gid}/`;
});
mapCanvas.addEventListener("keydown", (event) => {
  const [rows, cols] = state.dims;
  let i = hover < 0 ? 0 : hover;
  const moves = { ArrowUp: cols, ArrowDown: -cols, ArrowLeft: -1, ArrowRight: 1 };
  if (event.key in moves) {
    event.preventDefault();
    const next = i + moves[event.key];
    if (next >= 0 && next < rows * cols && (Math.abs(moves[event.key]) !== 1 || Math.floor(next / cols) === Math.floor(i / cols))) i = next;
    const rect = mapCanvas.getBoundingClientRect();
    const g = mapGeometry(rows, cols, rect.width, rect.height, AXES_MARGIN);
    showTip(i, g.x(i % cols) + g.cell / 2, g.y(Math.floor(i / cols)) + g.cell / 2);
  } else if (event.key === "Enter" && eliteAt(i)) {
    window.location.href = `/runs/${run.id}/genomes/${eliteAt(i).gid}/`;
  }
});
massSelect.addEventListener("change", markMap);

// -- live --------------------------------------------------------------------------------------
function onEvent(event) {
  const before = state;
  state = applyEvent(state, event);
  if (state === before) return;
  if (state.changed.length) {
    const now = performance.now();
    for (const i of flashIndices(state, state.changed, massSelect.value)) flashes.set(i, now);
    markMap();
    if (hover >= 0) showTip(hover, Number.parseFloat(tip.style.left) - 14 || 0, Number.parseFloat(tip.style.top) - 14 || 0);
  }
  if (event.kind === "batch") {
    markCurves();
    loadFeed(event.payload.batch).catch((error) => console.warn(`feed of batch ${event.payload.batch}:`, error));
  }
  if (state.best?.gid !== before.best?.gid || revealsBestTrace(state, event)) showBest();
  showNumbers();
}

function streamState(name, detail) {
  const text = {
    connecting: "connecting…",
    open: "live",
    waiting: `reconnecting in ${Math.round((detail?.delay ?? 0) / 1000)} s…`,
    closed: "not following",
    unauthenticated: "log in again to follow this run",
    "not-found": "this run no longer exists",
  }[name] ?? name;
  $("stream-state").textContent = text;
}

wireControls(document.querySelector(".page-head .controls"), run.id, {
  onRun(answer) {
    state = { ...state, status: answer.status };
    showNumbers();
  },
  onError(message) {
    $("run-error").textContent = message;
  },
});

async function start() {
  drawLegend($("map-legend"));
  const [archive, metrics] = await Promise.all([
    getJSON(`/api/runs/${run.id}/archive`),
    getJSON(`/api/runs/${run.id}/metrics`),
  ]);
  state = createArchiveState({ run, archive, metrics: metrics.results });
  showNumbers();
  markMap();
  markCurves();
  showBest();
  // The feed starts with the latest batches: at least FEED_START genomes, at most 8 batches.
  const FEED_START = 40;
  for (let batch = run.batches - 1; batch >= Math.max(0, run.batches - 8) && feed.children.length < FEED_START; batch -= 1) {
    const page = await getJSON(`/api/runs/${run.id}/genomes?batch=${batch}&limit=${FEED_MAX}`).catch(() => ({ results: [] }));
    feed.append(...page.results.slice().reverse().map(feedItem));
  }
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  openEventStream({ url: (id) => runSocketUrl(window.location, run.id, id), lastId: run.last_event_id, onEvent, onState: streamState });
}

start().catch((error) => {
  $("run-error").textContent = `Could not load the run: ${error.message}`;
});
