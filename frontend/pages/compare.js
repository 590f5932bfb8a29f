// The compare page: runs' curves overlaid and their archives side by side on one colour scale.

import { getJSON } from "../api.js";
import { createArchiveState, fitnessRange, mapView } from "../archive.js";
import { onViewChange, scheduler } from "../canvas.js";
import { drawCurves } from "../chart.js";
import { pageData } from "../dom.js";
import { formatCompact } from "../format.js";
import { drawArchiveMap } from "../mapview.js";

const runs = pageData("compare-data");
let metrics = runs.map(() => []);
let states = runs.map((run) => createArchiveState({ run }));

const mark = scheduler(() => {
  for (const canvas of document.querySelectorAll("canvas.curve")) {
    const key = canvas.dataset.key;
    drawCurves(canvas, metrics, { key, format: key === "coverage" || key === "valid_rate" ? (v) => `${formatCompact(v * 100)}%` : formatCompact });
  }
  let lo = 0;
  let hi = 1e-9;
  for (const state of states) {
    const [a, b] = fitnessRange(state);
    lo = Math.min(lo, a);
    hi = Math.max(hi, b);
  }
  runs.forEach((run, i) => {
    const canvas = document.querySelector(`canvas.compare-map[data-run-id="${run.id}"]`);
    drawArchiveMap(canvas, mapView(states[i], "max"), [lo, hi]);
  });
});
onViewChange(mark);
mark();

Promise.all(
  runs.map(async (run, i) => {
    const [m, archive] = await Promise.all([getJSON(`/api/runs/${run.id}/metrics`), getJSON(`/api/runs/${run.id}/archive`)]);
    metrics[i] = m.results;
    states[i] = createArchiveState({ run, archive, metrics: m.results });
    metrics = [...metrics];
    states = [...states];
    mark();
  }),
).catch(() => {});
