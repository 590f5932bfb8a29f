// The Models page (/models/): every trained model with its status live over its WebSocket
// (no polling), and the "Train a model" form, which POSTs to /api/models and opens the new
// model's page. The dataset link follows the chosen runs and threshold.

import { ApiError, postJSON } from "../api.js";
import { invalidFields, setStatus, showFieldErrors } from "../dom.js";
import { formatInt, formatPercent } from "../format.js";
import { applyModelMessage, datasetUrl, isTerminal, modelSocketUrl, openModelStream } from "../training.js";

const MAX_STREAMS = 8; // unfinished jobs followed at once
const list = document.getElementById("model-list");
const streamState = document.getElementById("stream-state");
const live = new Set();

function follow(row) {
  const id = Number(row.dataset.modelId);
  let job = { status: row.dataset.status, loss: [] };
  live.add(id);
  openModelStream({
    url: () => modelSocketUrl(window.location, id),
    onMessage(message, { first }) {
      job = applyModelMessage(job, message, { first });
      row.dataset.status = job.status;
      setStatus(row.querySelector(".model-status"), job.status);
      row.querySelector(".model-progress").value = Number.isFinite(job.progress) ? job.progress : 0;
      if (job.evaluation) {
        row.querySelector(".model-valid").textContent = formatPercent(job.evaluation.valid_rate);
        row.querySelector(".model-niches").textContent = formatInt(job.evaluation.niches);
      }
    },
    onState(state) {
      if (state === "ended" || state === "closed" || state === "not-found" || state === "unauthenticated") live.delete(id);
      streamState.textContent = live.size ? `following ${live.size} unfinished job${live.size === 1 ? "" : "s"}` : "";
    },
  });
}

[...list.querySelectorAll("tr[data-model-id]")]
  .filter((row) => !isTerminal(row.dataset.status))
  .slice(0, MAX_STREAMS)
  .forEach(follow);

// -- the form -----------------------------------------------------------------------------------
const form = document.getElementById("new-model-form");
const datasetLink = document.getElementById("dataset-link");
const FLOATS = new Set(["threshold", "heldout", "minutes"]);
const INTS = new Set(["samples", "max_steps"]);

const chosenRuns = () => [...form.querySelectorAll('input[name="runs"]:checked')].map((box) => Number(box.value));

function formData() {
  const data = { runs: chosenRuns() };
  for (const element of form.elements) {
    if (!element.name || element.name === "runs" || element.value.trim() === "") continue;
    const value = element.value.trim();
    if (INTS.has(element.name) && /^\d+$/.test(value)) data[element.name] = Number.parseInt(value, 10);
    else if (FLOATS.has(element.name) && Number.isFinite(Number(value))) data[element.name] = Number(value);
    else data[element.name] = value;
  }
  return data;
}

function updateDatasetLink() {
  const runs = chosenRuns();
  const threshold = form.elements.namedItem("threshold").value.trim() || "0.5";
  const heldout = form.elements.namedItem("heldout").value.trim() || "0.1";
  if (runs.length) {
    datasetLink.href = datasetUrl(runs, threshold, heldout);
    datasetLink.removeAttribute("aria-disabled");
    datasetLink.classList.remove("disabled");
  } else {
    datasetLink.href = "/api/models/dataset";
    datasetLink.setAttribute("aria-disabled", "true");
    datasetLink.classList.add("disabled");
  }
}

datasetLink.addEventListener("click", (event) => {
  if (!chosenRuns().length) {
    event.preventDefault();
    showErrors({ runs: ["Choose at least one run to download its dataset."] });
  }
});
form.addEventListener("input", updateDatasetLink);
form.addEventListener("change", updateDatasetLink);
updateDatasetLink();

const showErrors = (fields) => showFieldErrors(form, fields);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const invalid = invalidFields(form);
  const errors = Object.fromEntries(invalid.map((element) => [element.name, [element.validationMessage]]));
  if (!chosenRuns().length) errors.runs = ["Choose at least one run."];
  if (Object.keys(errors).length) {
    showErrors(errors);
    (invalid[0] ?? form.querySelector('input[name="runs"]'))?.focus();
    return;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const job = await postJSON("/api/models", formData());
    showErrors({});
    window.location.assign(`/models/${job.id}/`);
  } catch (error) {
    const fields = error instanceof ApiError && Object.keys(error.fields).length ? { ...error.fields } : { __all__: [error.message] };
    const known = Object.keys(fields).filter((name) => form.querySelector(`[data-error-for="${name}"]`));
    const rest = Object.keys(fields).filter((name) => !known.includes(name));
    if (rest.length) fields.__all__ = [].concat(fields.__all__ ?? [], ...rest.map((n) => `${n}: ${[].concat(fields[n]).join(" ")}`));
    showErrors(fields);
    form.querySelector("[aria-invalid=true]")?.focus();
    submit.disabled = false;
  }
});
