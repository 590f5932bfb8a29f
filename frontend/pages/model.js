// One trained model (/models/<id>/), live over its WebSocket /ws/models/<id>/ (no polling):
// status, progress and the loss curve while it trains, Cancel while it runs, and once done
// its evaluation figures, the archive of the programs it wrote (max over mass) and the form
// that starts stage 3 from it (POST /api/models/<id>/stage3, then the inventor's page).

import { getJSON } from "../api.js";
import { binCentre, cellAtPoint, fitnessRange, mapView } from "../archive.js";
import { cssVar, onViewChange, scheduler } from "../canvas.js";
import { drawCurves } from "../chart.js";
import { highlightCode, pageData } from "../dom.js";
import { formValues, wireJSONForm } from "../forms.js";
import { formatCompact, formatFitness, formatInt, formatPercent } from "../format.js";
import { JobPage } from "../jobpage.js";
import { AXES_MARGIN, drawArchiveMap, drawLegend } from "../mapview.js";
import { archiveFromEvaluation, failureRows, lastLoss } from "../training.js";

const $ = (id) => document.getElementById(id);
const page = new JobPage(pageData("model-data"), showJob);
let archive = null; // archiveFromEvaluation(...) once the evaluation is loaded
let hover = -1;
let evaluationLoaded = false;

const lossCanvas = $("loss-curve");
const mapCanvas = $("archive-map");
const tip = $("map-tip");
const inventorForm = $("inventor-form");

// -- drawing -------------------------------------------------------------------------------------
const drawLoss = scheduler(() => drawCurves(lossCanvas, [page.job.loss], { key: "loss", x: "step", colors: [cssVar("--accent")] }));

const drawMap = scheduler(() => {
  if (!archive) return;
  drawArchiveMap(mapCanvas, mapView(archive, "max"), fitnessRange(archive), { hover, axes: true });
});

onViewChange(() => {
  drawLoss();
  drawMap();
});

// -- the job -------------------------------------------------------------------------------------
// The page's own parts (the head is JobPage's).
function showJob(job) {
  $("last-loss").textContent = formatCompact(lastLoss(job.loss));
  $("loss-steps").textContent = job.loss.length ? formatInt(job.loss.at(-1).step) : "–";
  $("dataset-programs").textContent = formatInt(job.dataset_programs);
  $("dataset-heldout").textContent = formatInt(job.dataset_heldout);
  $("dataset-niches").textContent = formatInt(job.dataset_niches);
  if (job.evaluation) showFigures(job.evaluation);
  inventorForm.hidden = job.status !== "done";
  $("stage3-wait").hidden = job.status === "done";
  drawLoss();
  if (job.status === "done" && !evaluationLoaded) loadEvaluation(job.id);
}

function showFigures(evaluation) {
  $("evaluation-empty").hidden = true;
  $("evaluation-figures").hidden = false;
  const formats = {
    samples: formatInt,
    valid_rate: (v) => formatPercent(v),
    distinct: formatInt,
    niches: formatInt,
    coverage: (v) => formatPercent(v),
    qd_score: formatCompact,
    max_fitness: formatFitness,
  };
  for (const [key, format] of Object.entries(formats)) {
    const slot = document.querySelector(`[data-figure="${key}"]`);
    if (slot) slot.textContent = format(evaluation[key]);
  }
  const rows = failureRows(evaluation.failures);
  const items = rows.map(([kind, count]) => {
    const li = document.createElement("li");
    li.textContent = `${kind}: ${formatInt(count)}`;
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "none";
    items.push(li);
  }
  $("failures").replaceChildren(...items);
}

async function loadEvaluation(id) {
  evaluationLoaded = true;
  try {
    const evaluation = await getJSON(`/api/models/${id}/evaluation`);
    showFigures(evaluation);
    archive = archiveFromEvaluation(evaluation.archive);
    $("map-empty").textContent = `${formatInt(archive.cells.size)} niches filled by the samples; click a cell to read its program.`;
    drawMap();
  } catch (error) {
    evaluationLoaded = false;
    $("map-empty").textContent = `Could not load the evaluation: ${error.message}`;
  }
}

// -- map interaction ----------------------------------------------------------------------------
function eliteAt(index) {
  return index < 0 || !archive ? null : mapView(archive, "max").grid[index];
}

function pointIndex(event) {
  const rect = mapCanvas.getBoundingClientRect();
  const px = event.clientX - rect.left;
  const py = event.clientY - rect.top;
  return [cellAtPoint(archive.dims[0], archive.dims[1], rect.width, rect.height, px, py, AXES_MARGIN), px, py];
}

function showTip(index, px, py) {
  const elite = eliteAt(index);
  hover = index;
  drawMap();
  if (!elite) {
    tip.hidden = true;
    return;
  }
  const lines = [`fitness ${formatFitness(elite.fitness)}`, `sample #${elite.gid}`];
  elite.cell.forEach((bin, dim) => {
    const name = archive.names[dim] ?? `d${dim}`;
    lines.push(`${name}: ${formatCompact(elite.descriptor?.[dim] ?? binCentre(archive, dim, bin))} (bin ${bin})`);
  });
  tip.replaceChildren(...lines.map((text) => Object.assign(document.createElement("div"), { textContent: text })));
  tip.style.left = `${Math.min(px + 14, mapCanvas.clientWidth - 210)}px`;
  tip.style.top = `${Math.min(py + 14, mapCanvas.clientHeight - 100)}px`;
  tip.hidden = false;
}

function showProgram(elite) {
  const pre = $("program-text");
  if (!elite) return;
  $("program-empty").textContent = `Sample #${elite.gid}, fitness ${formatFitness(elite.fitness)}, cell ${elite.cell.join(", ")}`;
  pre.querySelector("code").textContent = elite.text || "(no text)";
  highlightCode(pre);
  pre.hidden = false;
}

mapCanvas.addEventListener("mousemove", (event) => {
  if (archive) showTip(...pointIndex(event));
});
mapCanvas.addEventListener("mouseleave", () => {
  hover = -1;
  tip.hidden = true;
  drawMap();
});
mapCanvas.addEventListener("click", (event) => {
  if (archive) showProgram(eliteAt(pointIndex(event)[0]));
});
mapCanvas.addEventListener("keydown", (event) => {
  if (!archive) return;
  const [rows, cols] = archive.dims;
  let i = hover < 0 ? 0 : hover;
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: cols, ArrowDown: -cols };
  if (event.key in moves) {
    event.preventDefault();
    i = Math.min(rows * cols - 1, Math.max(0, i + moves[event.key]));
    const size = Math.min(mapCanvas.clientWidth / cols, mapCanvas.clientHeight / rows);
    showTip(i, (i % cols) * size, (rows - 1 - Math.floor(i / cols)) * size);
  } else if (event.key === "Enter" && hover >= 0) {
    showProgram(eliteAt(hover));
  }
});

// -- stage 3 -------------------------------------------------------------------------------------
wireJSONForm(inventorForm, {
  url: `/api/models/${page.job.id}/stage3`,
  values: () => formValues(inventorForm.elements, {
    ints: ["iterations", "batch_size", "samples", "conditional", "max_new_tokens"], floats: ["minutes", "sim_seconds"],
  }),
  onDone: (inventor) => window.location.assign(`/models/${inventor.id}/`),
});

// -- start ---------------------------------------------------------------------------------------
drawLegend($("map-legend"));
page.start();
