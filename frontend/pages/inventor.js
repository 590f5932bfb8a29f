// One stage-3 inventor (/models/<id>/ of a stage-3 job), live over its WebSocket
// /ws/models/<id>/ (no polling): status, progress and the reward curve of each terrain while
// PPO trains, Cancel while it runs; once done, the evaluation table (the inventor against
// best-of-N on each terrain) and, per terrain, replays of the inventor's walkers next to the
// best unconditional one (GET /api/models/<id>/replay, simulated by the server on first ask).

import { getJSON } from "../api.js";
import { onViewChange, scheduler } from "../canvas.js";
import { SERIES_COLORS, drawCurves } from "../chart.js";
import { pageData } from "../dom.js";
import { formatCompact, formatFitness, formatInt, formatPercent } from "../format.js";
import { JobPage } from "../jobpage.js";
import { ReplayPlayer } from "../replay.js";
import { decodeTrace } from "../trace.js";
import { replayUrl, rewardSeries, unconditionalBest, walkerChoices } from "../training.js";

const $ = (id) => document.getElementById(id);
const page = new JobPage(pageData("model-data"), showJob);
let evaluationLoaded = false;

const rewardCanvas = $("reward-curve");

// -- the reward curves ---------------------------------------------------------------------------
const drawRewards = scheduler(() => {
  drawCurves(rewardCanvas, rewardSeries(page.job.rewards, page.job.terrains), { key: "score", x: "iteration", colors: SERIES_COLORS });
});
onViewChange(drawRewards);

function showRewards(job) {
  const last = job.rewards.at(-1);
  $("reward-iterations").textContent = last ? formatInt(last.iteration) : "–";
  $("last-kl").textContent = last ? formatCompact(last.kl) : "–";
  for (const item of document.querySelectorAll("#reward-legend li[data-terrain]")) {
    const figures = last?.terrains?.[item.dataset.terrain];
    item.querySelector(".reward-last").textContent = figures
      ? `${formatCompact(figures.score)} (${formatPercent(figures.valid_rate, 0)} valid)`
      : "";
  }
  drawRewards();
}

// -- the job -------------------------------------------------------------------------------------
// The page's own parts (the head is JobPage's).
function showJob(job) {
  if (job.path) $("eval-command").textContent = `python -m evolution eval-stage3 --model ${job.path}`;
  showRewards(job);
  if (job.status === "done" && !evaluationLoaded) loadEvaluation(job.id);
}

// -- the evaluation ------------------------------------------------------------------------------
const cell = (text, className = "num") => Object.assign(document.createElement("td"), { textContent: text, className });
const bestOf = (source) => (source ? `${formatFitness(source.best)} (N=${formatInt(source.n)})` : "–");

function showTable(evaluation) {
  const rows = Object.entries(evaluation.terrains).map(([terrain, row]) => {
    const tr = document.createElement("tr");
    tr.dataset.terrain = terrain;
    const c = row.conditional;
    tr.append(
      cell(terrain, ""),
      cell(formatFitness(c.median)),
      cell(formatFitness(c.mean)),
      cell(formatFitness(c.best)),
      cell(formatPercent(c.valid_rate, 0)),
      cell(formatFitness(row.stage2.median)),
      cell(bestOf(row.stage2)),
      cell(bestOf(row.dataset)),
      cell(row.beats ? "yes" : "no", row.beats ? "beats" : "muted"),
    );
    return tr;
  });
  $("evaluation-table").querySelector("tbody").replaceChildren(...rows);
  $("evaluation-table").hidden = false;
  $("evaluation-empty").hidden = true;
  $("evaluation-verdict").textContent =
    `The inventor matches or beats best-of-${formatInt(evaluation.samples)} on ${evaluation.beats} of ${evaluation.total} terrains.`;
}

async function loadEvaluation(id) {
  evaluationLoaded = true;
  try {
    const evaluation = await getJSON(`/api/models/${id}/evaluation`);
    showTable(evaluation);
    await showReplays(evaluation);
  } catch (error) {
    evaluationLoaded = false;
    $("evaluation-verdict").textContent = `Could not load the evaluation: ${error.message}`;
  }
}

// -- replays -------------------------------------------------------------------------------------
function note(figure, text) {
  let slot = figure.querySelector(".replay-empty");
  if (!slot) {
    slot = Object.assign(document.createElement("p"), { className: "replay-empty muted small" });
    figure.querySelector(".replay-box").append(slot);
  }
  slot.textContent = text;
  slot.hidden = !text;
}

async function play(player, figure, terrain, source, rank) {
  note(figure, "simulating…");
  try {
    player.load(decodeTrace(await getJSON(replayUrl(page.job.id, terrain, source, rank))));
    note(figure, "");
  } catch (error) {
    note(figure, `No replay: ${error.message}`);
  }
}

// One replay at a time: each is simulated on the server the first time it is asked for.
async function showReplays(evaluation) {
  $("replays").hidden = false;
  $("replays-empty").hidden = true;
  for (const article of document.querySelectorAll("#replays article[data-terrain]")) {
    const terrain = article.dataset.terrain;
    const row = evaluation.terrains[terrain];
    const mine = article.querySelector('figure[data-source="conditional"]');
    const theirs = article.querySelector('figure[data-source="unconditional"]');
    const player = (figure) => new ReplayPlayer(figure.querySelector("canvas"), { controls: figure.querySelector(".replay-controls") });
    const choices = walkerChoices(row);
    const select = mine.querySelector("select.walker-choice");
    select.replaceChildren(...choices.map(({ rank, distance }) => new Option(`#${rank + 1}: ${formatFitness(distance)} units`, String(rank))));
    select.disabled = choices.length < 2;
    mine.querySelector(".walker-pick").hidden = !choices.length;
    const best = unconditionalBest(row);
    theirs.querySelector(".unconditional-caption").textContent = best
      ? `Unconditional best: ${best.name}'s, best of ${formatInt(best.n)}: ${formatFitness(best.distance)} units`
      : "Unconditional best: no program of the stage-2 model or its dataset walked here";
    if (choices.length) {
      const mineP = player(mine);
      select.addEventListener("change", () => play(mineP, mine, terrain, "conditional", Number(select.value)));
      await play(mineP, mine, terrain, "conditional", 0);
    } else {
      note(mine, "None of the inventor's programs built a walker on this terrain.");
    }
    if (best) await play(player(theirs), theirs, terrain, best.source, 0);
    else note(theirs, "Nothing to replay.");
  }
}

// -- start ---------------------------------------------------------------------------------------
page.start();
