// Line charts on canvas: pure scale helpers (niceTicks, extent) and the drawing of curves over
// evaluations (one or several series) and sparklines. Hand-written: small, offline, no build.

import { cssVar, fitCanvas } from "./canvas.js";
import { formatCompact } from "./format.js";

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

/**
 * Draw curves of `key` against `x` (default: evaluations).
 * @param {HTMLCanvasElement} canvas
 * @param {Array<object[]>} seriesList  rows (metric rows) per series.
 * @param {object} options  {key, x = "evaluations", colors, format, dots: mark each point}
 */
export function drawCurves(canvas, seriesList, { key, x = "evaluations", colors = SERIES_COLORS, format = formatCompact, dots = false } = {}) {
  const { ctx, width, height } = fitCanvas(canvas);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 44, right: 8, top: 8, bottom: 20 };
  const [x0, x1] = extent(seriesList, x);
  const [y0, y1] = extent(seriesList, key);
  const sx = (v) => pad.left + ((v - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (v) => height - pad.bottom - ((v - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const muted = cssVar("--muted");
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = cssVar("--line");
  ctx.fillStyle = muted;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of niceTicks(y0, y1, 3)) {
    const y = Math.round(sy(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(width - pad.right, y);
    ctx.stroke();
    ctx.fillText(format(t), pad.left - 4, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(x0, x1, 4)) ctx.fillText(formatCompact(t), sx(t), height - pad.bottom + 4);
  if (!seriesList.some((rows) => rows.length)) {
    ctx.fillText("waiting for the first batch…", width / 2, height / 2 - 8);
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
    if (!dots) return;
    ctx.fillStyle = colors[i % colors.length];
    for (const row of rows) {
      if (!Number.isFinite(row[key]) || !Number.isFinite(row[x])) continue;
      ctx.beginPath();
      ctx.arc(sx(row[x]), sy(row[key]), 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
  });
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
