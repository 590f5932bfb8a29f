// The compare page: runs' curves overlaid and their archives side by side on one colour scale,
// live: each compared run that may still change streams its events over its WebSocket (no
// polling) and the page redraws what they change.

import { getJSON } from "../api.js";
import { applyEvent, createArchiveState, filledCount, fitnessRange, mapView } from "../archive.js";
import { onViewChange, scheduler } from "../canvas.js";
import { drawMetricCurves } from "../chart.js";
import { isLive } from "../controls.js";
import { pageData, setStatus } from "../dom.js";
import { formatFitness, formatInt } from "../format.js";
import { drawArchiveMap, drawLegend } from "../mapview.js";
import { openEventStream, runSocketUrl } from "../stream.js";

const runs = pageData("compare-data");
const states = runs.map((run) => createArchiveState({ run }));
const mapCanvas = (run) => document.querySelector(`canvas.compare-map[data-run-id="${run.id}"]`);
const legendItem = (run) => document.querySelector(`.compare-legend li[data-run-id="${run.id}"]`);

/** One fitness scale for every map: the union of the runs' ranges. */
function sharedRange() {
  let [lo, hi] = [0, 1e-9];
  for (const state of states) {
    const [a, b] = fitnessRange(state);
    lo = Math.min(lo, a);
    hi = Math.max(hi, b);
  }
  return [lo, hi];
}

const mark = scheduler(() => {
  drawMetricCurves(document.querySelectorAll("canvas.curve"), states.map((state) => state.metrics));
  const range = sharedRange();
  runs.forEach((run, i) => drawArchiveMap(mapCanvas(run), mapView(states[i], "max"), range, { axes: true }));
  document.getElementById("legend-low").textContent = formatFitness(range[0]);
  document.getElementById("legend-high").textContent = formatFitness(range[1]);
});

function show(i) {
  const run = runs[i];
  mapCanvas(run).dataset.filled = String(filledCount(states[i]));
  const item = legendItem(run);
  setStatus(item.querySelector(".status-badge"), states[i].status);
  item.querySelector(".compare-numbers").textContent = `${formatInt(states[i].evaluations)} evaluations · ${formatInt(filledCount(states[i]))} cells`;
  mark();
}

/** Stream run i's events from the state's cursor until the run can no longer change. */
function follow(i) {
  if (!isLive(states[i].status)) return;
  const run = runs[i];
  const item = legendItem(run);
  const stream = openEventStream({
    url: (id) => runSocketUrl(window.location, run.id, id),
    lastId: states[i].lastEventId,
    onEvent(event) {
      states[i] = applyEvent(states[i], event);
      show(i);
      if (!isLive(states[i].status)) stream.close();
    },
    onState(name) {
      item.dataset.stream = name;
    },
  });
}

async function load(run, i) {
  const [metrics, archive] = await Promise.all([getJSON(`/api/runs/${run.id}/metrics`), getJSON(`/api/runs/${run.id}/archive`)]);
  // Events after the page was rendered are streamed from its cursor: the archive fetched since
  // may hold some of them already, and applying them again changes nothing.
  states[i] = createArchiveState({ run, archive, metrics: metrics.results });
  show(i);
  follow(i);
}

onViewChange(() => {
  mark();
  drawLegend(document.getElementById("map-legend"));
});
drawLegend(document.getElementById("map-legend"));
runs.forEach((run, i) => show(i));
runs.forEach((run, i) =>
  load(run, i).catch((error) => {
    legendItem(run).querySelector(".compare-numbers").textContent = `could not load: ${error.message}`;
  }),
);
