// The Models page (/models/): every trained model (stage 2) and inventor (stage 3) with its
// status live over its WebSocket (no polling), and the "Train a model" form, which POSTs to
// /api/models and opens the new model's page. The dataset link follows the chosen runs and
// threshold.

import { setStatus, showFieldErrors } from "../dom.js";
import { formValues, wireJSONForm } from "../forms.js";
import { applyModelMessage, datasetUrl, isTerminal, modelResult, modelSocketUrl, openModelStream } from "../training.js";

const MAX_STREAMS = 8; // unfinished jobs followed at once
const list = document.getElementById("model-list");
const streamState = document.getElementById("stream-state");
const live = new Set();

function follow(row) {
  const id = Number(row.dataset.modelId);
  let job = { status: row.dataset.status, stage: Number(row.dataset.stage), loss: [], rewards: [] };
  live.add(id);
  openModelStream({
    url: () => modelSocketUrl(window.location, id),
    onMessage(message, { first }) {
      job = applyModelMessage(job, message, { first });
      row.dataset.status = job.status;
      setStatus(row.querySelector(".model-status"), job.status);
      row.querySelector(".model-progress").value = Number.isFinite(job.progress) ? job.progress : 0;
      row.querySelector(".model-result").textContent = modelResult(job);
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

const chosenRuns = () => [...form.querySelectorAll('input[name="runs"]:checked')].map((box) => Number(box.value));

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
    showFieldErrors(form, { runs: ["Choose at least one run to download its dataset."] });
  }
});
form.addEventListener("input", updateDatasetLink);
form.addEventListener("change", updateDatasetLink);
updateDatasetLink();

wireJSONForm(form, {
  url: "/api/models",
  values: () => ({
    runs: chosenRuns(),
    ...formValues(form.elements, { ints: ["samples", "max_steps"], floats: ["threshold", "heldout", "minutes"], skip: ["runs"] }),
  }),
  check: () => (chosenRuns().length ? {} : { runs: ["Choose at least one run."] }),
  onDone: (job) => window.location.assign(`/models/${job.id}/`),
});
