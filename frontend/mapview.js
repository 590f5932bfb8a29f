// Drawing of an archive map (see archive.js for the state and geometry): cells coloured by
// fitness on one scale, empty cells faint, recently improved cells flashing, a hover ring, and
// optionally axes (height up, width across, ticks in descriptor units).

import { mapGeometry, rampColor } from "./archive.js";
import { cssVar, fitCanvas } from "./canvas.js";
import { axisTicks } from "./chart.js";

export const FLASH_MS = 1200;
/** Room around a map drawn with axes (pass it to archive.cellAtPoint for the same geometry). */
export const AXES_MARGIN = { left: 42, right: 8, top: 8, bottom: 34 };
const AXIS_NAMES = ["height", "width"]; // the descriptor's first two dimensions: rows, columns

/**
 * @param {HTMLCanvasElement} canvas
 * @param {{rows: number, cols: number, grid: Array<object|null>}} view  archive.mapView(...)
 * @param {[number, number]} range  fitness scale
 * @param {object} [options]  {flashes: Map<index, startTime>, now, hover: index, axes: label
 *   height and width (the map then leaves AXES_MARGIN around it)}
 * @returns {boolean} whether a flash is still running (draw again next frame)
 */
export function drawArchiveMap(canvas, view, range, { flashes = new Map(), now = 0, hover = -1, axes = false } = {}) {
  const { ctx, width, height } = fitCanvas(canvas);
  const g = mapGeometry(view.rows, view.cols, width, height, axes ? AXES_MARGIN : undefined);
  ctx.clearRect(0, 0, width, height);
  if (axes && view.ranges) drawAxes(ctx, g, view);
  ctx.fillStyle = cssVar("--code-bg", "#eee");
  ctx.fillRect(g.left, g.top, g.cell * view.cols, g.cell * view.rows);
  if (g.cell >= 6) {
    // Faint bin lines so empty cells still read as a grid.
    ctx.strokeStyle = cssVar("--line", "#ddd");
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let col = 0; col <= view.cols; col += 1) {
      const x = Math.round(g.left + col * g.cell) + 0.5;
      ctx.moveTo(x, g.top);
      ctx.lineTo(x, g.top + view.rows * g.cell);
    }
    for (let row = 0; row <= view.rows; row += 1) {
      const y = Math.round(g.top + row * g.cell) + 0.5;
      ctx.moveTo(g.left, y);
      ctx.lineTo(g.left + view.cols * g.cell, y);
    }
    ctx.stroke();
  }
  const [lo, hi] = range;
  const gap = g.cell > 6 ? 1 : 0;
  let animating = false;
  for (let i = 0; i < view.grid.length; i += 1) {
    const elite = view.grid[i];
    if (!elite) continue;
    const row = Math.floor(i / view.cols);
    const col = i % view.cols;
    ctx.fillStyle = rampColor((elite.fitness - lo) / (hi - lo || 1));
    ctx.fillRect(g.x(col) + gap / 2, g.y(row) + gap / 2, g.cell - gap, g.cell - gap);
  }
  ctx.lineWidth = 2;
  for (const [i, start] of flashes) {
    const age = now - start;
    if (age > FLASH_MS || age < 0) continue;
    animating = true;
    const row = Math.floor(i / view.cols);
    const col = i % view.cols;
    ctx.strokeStyle = `rgb(255 255 255 / ${1 - age / FLASH_MS})`;
    ctx.strokeRect(g.x(col) + 1, g.y(row) + 1, g.cell - 2, g.cell - 2);
    ctx.strokeStyle = `rgb(255 80 0 / ${1 - age / FLASH_MS})`;
    ctx.strokeRect(g.x(col) - 1, g.y(row) - 1, g.cell + 2, g.cell + 2);
  }
  if (hover >= 0) {
    ctx.strokeStyle = cssVar("--text");
    ctx.lineWidth = 2;
    ctx.strokeRect(g.x(hover % view.cols), g.y(Math.floor(hover / view.cols)), g.cell, g.cell);
  }
  return animating;
}

/** Ticks in descriptor units along the bottom (width) and the left (height), and their names. */
function drawAxes(ctx, g, view) {
  const spanX = g.cell * view.cols;
  const spanY = g.cell * view.rows;
  const bottom = g.top + spanY;
  ctx.save();
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = cssVar("--muted");
  ctx.strokeStyle = cssVar("--muted");
  ctx.lineWidth = 1;
  const count = Math.max(2, Math.min(6, Math.floor(Math.min(spanX, spanY) / 50)));
  const [[hLo, hHi], [wLo, wHi]] = view.ranges;
  ctx.beginPath();
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const { value, label } of axisTicks(wLo, wHi, count)) {
    const x = Math.round(g.left + ((value - wLo) / (wHi - wLo || 1)) * spanX) + 0.5;
    ctx.moveTo(x, bottom);
    ctx.lineTo(x, bottom + 4);
    ctx.fillText(label, x, bottom + 5);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const { value, label } of axisTicks(hLo, hHi, count)) {
    const y = Math.round(bottom - ((value - hLo) / (hHi - hLo || 1)) * spanY) + 0.5;
    ctx.moveTo(g.left - 4, y);
    ctx.lineTo(g.left, y);
    ctx.fillText(label, g.left - 6, y);
  }
  ctx.stroke();
  ctx.fillStyle = cssVar("--text");
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(`${AXIS_NAMES[1]} →`, g.left + spanX / 2, bottom + 33);
  ctx.translate(g.left - 30, g.top + spanY / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "bottom";
  ctx.fillText(`${AXIS_NAMES[0]} →`, 0, 0);
  ctx.restore();
}

/** A horizontal colour-ramp legend. */
export function drawLegend(canvas) {
  const { ctx, width, height } = fitCanvas(canvas);
  for (let x = 0; x < width; x += 1) {
    ctx.fillStyle = rampColor(x / (width - 1));
    ctx.fillRect(x, 0, 1, height);
  }
}
