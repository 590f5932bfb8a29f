// The dashboard: live status and numbers of every listed run, its controls, and the new-run
// form. Live runs stream their events over the WebSocket (no polling).

import { ApiError, getJSON, postJSON } from "../api.js";
import { drawSparkline } from "../chart.js";
import { isLive } from "../controls.js";
import { invalidFields, setControls, setStatus, showFieldErrors, wireControls } from "../dom.js";
import { formatCompact, formatFitness, formatInt, formatPercent } from "../format.js";
import { openEventStream, runSocketUrl } from "../stream.js";

const MAX_STREAMS = 12; // live runs followed at once
const MAX_SPARKLINES = 20; // runs whose metrics are fetched on load (the newest)
const list = document.getElementById("run-list");
const template = document.getElementById("run-row-template");
const controlError = document.getElementById("control-error");
const rows = new Map(); // run id -> {row, qd: number[], stream, cells}

function rowOf(runId) {
  return list.querySelector(`tr[data-run-id="${runId}"]`);
}

function showStatus(entry, status) {
  setStatus(entry.row.querySelector(".run-status"), status);
  entry.row.dataset.status = status;
  setControls(entry.row, status, entry.row.dataset.canControl === "1");
  if (!isLive(status) && entry.stream) {
    entry.stream.close();
    entry.stream = null;
  }
}

function showNumbers(entry, m) {
  const row = entry.row;
  if (m.evaluations !== undefined) row.querySelector(".run-evaluations").textContent = formatInt(m.evaluations);
  if (m.niches_filled !== undefined) {
    const coverage = m.coverage !== undefined ? ` (${formatPercent(m.coverage)})` : "";
    row.querySelector(".run-coverage").textContent = `${formatInt(m.niches_filled)}${coverage}`;
  }
  if (m.max_fitness !== undefined) row.querySelector(".run-max-fitness").textContent = formatFitness(m.max_fitness);
  if (m.qd_score !== undefined) row.querySelector(".run-qd").textContent = formatCompact(m.qd_score);
}

function follow(entry, runId, lastId) {
  if ([...rows.values()].filter((e) => e.stream).length >= MAX_STREAMS) return;
  entry.stream = openEventStream({
    url: (id) => runSocketUrl(window.location, runId, id),
    lastId,
    onEvent(event) {
      if (event.kind === "status") showStatus(entry, event.payload.status);
      if (event.kind === "batch") {
        showNumbers(entry, event.payload);
        entry.qd.push(event.payload.qd_score);
        drawSparkline(entry.row.querySelector("canvas.sparkline"), entry.qd);
      }
    },
  });
}

async function track(runId, { fresh = false, history = true } = {}) {
  const row = rowOf(runId);
  const entry = { row, qd: [], stream: null };
  rows.set(runId, entry);
  wireControls(row, runId, {
    onRun(run) {
      controlError.textContent = "";
      showStatus(entry, run.status);
      if (isLive(run.status) && !entry.stream) follow(entry, runId, run.last_event_id);
    },
    onError(message) {
      controlError.textContent = `Run ${runId}: ${message}`;
    },
  });
  if (fresh) return;
  try {
    if (history) {
      const metrics = (await getJSON(`/api/runs/${runId}/metrics`)).results;
      entry.qd = metrics.map((m) => m.qd_score);
      if (metrics.length) showNumbers(entry, metrics.at(-1));
      drawSparkline(row.querySelector("canvas.sparkline"), entry.qd);
    }
    if (isLive(row.dataset.status)) {
      const run = await getJSON(`/api/runs/${runId}`);
      showStatus(entry, run.status);
      if (isLive(run.status)) follow(entry, runId, run.last_event_id);
    }
  } catch (error) {
    controlError.textContent = `Run ${runId}: ${error.message}`;
  }
}

function addRow(run) {
  const row = template.content.firstElementChild.cloneNode(true);
  row.dataset.runId = String(run.id);
  row.dataset.status = run.status;
  row.dataset.canControl = run.can_control ? "1" : "0";
  const link = row.querySelector("a.run-link");
  link.href = `/runs/${run.id}/`;
  row.querySelector(".run-id").textContent = `#${run.id}`;
  row.querySelector(".run-name").textContent = run.name || run.config.seed;
  row.querySelector(".run-meta").textContent = `${run.config.seed} · ${run.config.terrain} · ${run.config.mutation} · ${run.owner}`;
  showNumbers({ row }, { evaluations: run.evaluations, niches_filled: run.niches_filled, max_fitness: run.max_fitness, qd_score: run.qd_score });
  row.classList.add("fresh");
  list.prepend(row);
  document.getElementById("no-runs").hidden = true;
  const entry = { row, qd: [], stream: null };
  showStatus(entry, run.status);
  return row;
}

// -- the new-run form ------------------------------------------------------------------------
const form = document.getElementById("new-run-form");
const NUMBERS = new Set(["batch_size", "evals", "rng_seed"]);
const FLOATS = new Set(["sim_seconds"]);

function formData() {
  const data = {};
  for (const element of form.elements) {
    if (!element.name || element.value.trim() === "") continue;
    const value = element.value.trim();
    if (NUMBERS.has(element.name) && /^-?\d+$/.test(value)) data[element.name] = Number.parseInt(value, 10);
    else if (FLOATS.has(element.name) && Number.isFinite(Number(value))) data[element.name] = Number(value);
    else data[element.name] = value;
  }
  return data;
}

const showErrors = (fields) => showFieldErrors(form, fields);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  // The browser checks types and bounds first (the same as the API's), the API the rest.
  const invalid = invalidFields(form);
  if (invalid.length) {
    showErrors(Object.fromEntries(invalid.map((element) => [element.name, [element.validationMessage]])));
    invalid[0].focus();
    return;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const run = await postJSON("/api/runs", formData());
    showErrors({});
    addRow(run);
    track(run.id, { fresh: true });
  } catch (error) {
    const fields = error instanceof ApiError && Object.keys(error.fields).length ? error.fields : { __all__: [error.message] };
    const known = Object.keys(fields).filter((name) => form.querySelector(`[data-error-for="${name}"]`));
    const rest = Object.keys(fields).filter((name) => !known.includes(name));
    if (rest.length) fields.__all__ = [].concat(fields.__all__ ?? [], ...rest.map((n) => `${n}: ${[].concat(fields[n]).join(" ")}`));
    showErrors(fields);
    const first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
  } finally {
    submit.disabled = false;
  }
});

[...list.querySelectorAll("tr[data-run-id]")].forEach((row, i) => track(Number(row.dataset.runId), { history: i < MAX_SPARKLINES }));
