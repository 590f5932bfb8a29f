// Line charts on canvas: pure scale helpers (niceTicks, niceDomain, axisTicks, extent) and the
// drawing of curves over evaluations (one or several series) and sparklines. Hand-written:
// small, offline, no build.

import { cssVar, fitCanvas } from "./canvas.js";
import { formatTicks } from "./format.js";

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 x 10^k). */
export function niceTicks(lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** [lo, hi] widened to whole steps of its ticks, so the top tick labels the top of the axis. */
export function niceDomain(lo, hi, count = 4) {
  const ticks = niceTicks(lo, hi, count);
  if (ticks.length < 2) return [lo, hi];
  const step = ticks[1] - ticks[0];
  const clean = (v) => Number(v.toPrecision(12));
  return [clean(Math.floor(lo / step + 1e-9) * step), clean(Math.ceil(hi / step - 1e-9) * step)];
}

/**
 * Ticks of an axis over [lo, hi] with their labels: [{value, label}] (see format.formatTicks).
 * @param {{percent?: boolean}} [options]  percent: values are fractions shown as percentages.
 */
export function axisTicks(lo, hi, count = 4, options = {}) {
  const ticks = niceTicks(lo, hi, count);
  const labels = formatTicks(ticks, options);
  return ticks.map((value, i) => ({ value, label: labels[i] }));
}

/** [min, max] of `key` over series of rows (y axes start at 0 unless values go below). */
export function extent(seriesList, key, { zero = true } = {}) {
  let lo = zero ? 0 : Infinity;
  let hi = zero ? 0 : -Infinity;
  let seen = false;
  for (const rows of seriesList) {
    for (const row of rows) {
      const v = row[key];
      if (!Number.isFinite(v)) continue;
      seen = true;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!seen) return [0, 1];
  if (hi - lo < 1e-12) return [lo, lo + 1];
  return [lo, hi];
}

export const SERIES_COLORS = ["#2f6fdb", "#e8590c", "#2b9348", "#9c36b5"];

/** Metrics that are fractions, drawn as percentages. */
export const FRACTION_KEYS = new Set(["coverage", "valid_rate"]);

/**
 * Draw curves of `key` against `x` (default: evaluations). The canvas's data-points attribute
 * says how many points it shows (tests and other views read it).
 * @param {HTMLCanvasElement} canvas
 * @param {Array<object[]>} seriesList  rows (metric rows) per series.
 * @param {object} options  {key, x = "evaluations", colors, percent: values are fractions,
 *   format: a label for each y tick value (default: labels as precise as the ticks' spacing),
 *   dots: mark each point}
 */
export function drawCurves(canvas, seriesList, { key, x = "evaluations", colors = SERIES_COLORS, percent = false, format = null, dots = false } = {}) {
  const { ctx, width, height } = fitCanvas(canvas);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 44, right: 10, top: 8, bottom: 20 };
  const [x0, x1] = extent(seriesList, x);
  const [y0, y1] = niceDomain(...extent(seriesList, key), 3);
  const sx = (v) => pad.left + ((v - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (v) => height - pad.bottom - ((v - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const points = seriesList.reduce((n, rows) => n + rows.filter((r) => Number.isFinite(r[key]) && Number.isFinite(r[x])).length, 0);
  canvas.dataset.points = String(points);
  const muted = cssVar("--muted");
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = cssVar("--line");
  ctx.fillStyle = muted;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const { value, label } of axisTicks(y0, y1, 3, { percent })) {
    const y = Math.round(sy(value)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(width - pad.right, y);
    ctx.stroke();
    ctx.fillText(format ? format(value) : label, pad.left - 4, y);
  }
  ctx.textBaseline = "top";
  for (const { value, label } of axisTicks(x0, x1, 4)) {
    // Labels stay inside the canvas: the last one is not cut at the right edge.
    const half = ctx.measureText(label).width / 2;
    ctx.textAlign = "center";
    ctx.fillText(label, Math.min(width - half - 1, Math.max(half + 1, sx(value))), height - pad.bottom + 4);
  }
  if (!points) {
    ctx.textAlign = "center";
    ctx.fillText("waiting for the first batch…", (pad.left + width - pad.right) / 2, height / 2 - 8);
    return;
  }
  ctx.lineWidth = 1.6;
  ctx.lineJoin = "round";
  seriesList.forEach((rows, i) => {
    ctx.strokeStyle = colors[i % colors.length];
    ctx.beginPath();
    let started = false;
    for (const row of rows) {
      if (!Number.isFinite(row[key]) || !Number.isFinite(row[x])) continue;
      if (started) ctx.lineTo(sx(row[x]), sy(row[key]));
      else ctx.moveTo(sx(row[x]), sy(row[key]));
      started = true;
    }
    ctx.stroke();
    if (!dots && rows.length > 1) return;
    ctx.fillStyle = colors[i % colors.length]; // a lone point is a dot, else it would not show
    for (const row of rows) {
      if (!Number.isFinite(row[key]) || !Number.isFinite(row[x])) continue;
      ctx.beginPath();
      ctx.arc(sx(row[x]), sy(row[key]), 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
  });
}

/** Draw each `canvas.curve` (its data-key names the metric) from series of metric rows. */
export function drawMetricCurves(canvases, seriesList) {
  for (const canvas of canvases) {
    const key = canvas.dataset.key;
    drawCurves(canvas, seriesList, { key, percent: FRACTION_KEYS.has(key) });
  }
}

/** A tiny line of `values` filling the canvas (no axes). */
export function drawSparkline(canvas, values, color = cssVar("--accent")) {
  const { ctx, width, height } = fitCanvas(canvas);
  ctx.clearRect(0, 0, width, height);
  const finite = values.filter(Number.isFinite);
  if (finite.length < 2) return;
  const lo = Math.min(0, ...finite);
  const hi = Math.max(...finite);
  const span = hi - lo || 1;
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  finite.forEach((v, i) => {
    const px = 1 + (i / (finite.length - 1)) * (width - 2);
    const py = height - 2 - ((v - lo) / span) * (height - 4);
    if (i) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
  });
  ctx.stroke();
}
