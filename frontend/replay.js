// The replay player: animates a decoded trace (see trace.js) on a canvas, with play/pause, a
// scrubber and speed. The canvas's data-frame attribute holds the frame shown (tests and other
// views read it). Drawing is in CSS pixels on a devicePixelRatio-sized backing store. Every
// terrain is drawn from the trace's own segments (see trace.js): ground, bumps, walls and a
// tunnel's ceiling, which the view's height always includes.

import { cssVar, fitCanvas, onViewChange } from "./canvas.js";
import { formatFitness } from "./format.js";
import { comAt, distanceAt, extensions, isActive, overheadTop, positionsAt } from "./trace.js";

const SPEEDS = [0.25, 0.5, 1, 2, 4];

export class ReplayPlayer {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} [options]
   * @param {HTMLElement|null} [options.controls]  where to put play/pause, scrubber and speed.
   * @param {boolean} [options.autoplay=true]
   * @param {boolean} [options.loop=true]
   */
  constructor(canvas, { controls = null, autoplay = true, loop = true } = {}) {
    this.canvas = canvas;
    this.autoplay = autoplay;
    this.loop = loop;
    this.trace = null;
    this.frame = 0;
    this.speed = 1;
    this.playing = false;
    this.camX = 0;
    this.last = null;
    this.raf = null;
    this.buffer = null;
    this.controls = controls ? this.buildControls(controls) : null;
    onViewChange(() => this.draw());
  }

  /** Show a decoded trace (starts playing when autoplay is on). */
  load(trace) {
    this.trace = trace;
    this.buffer = new Float32Array(trace.joints * 2);
    const first = positionsAt(trace, 0, this.buffer);
    let minX = Infinity;
    let maxX = -Infinity;
    for (let j = 0; j < trace.joints; j += 1) {
      minX = Math.min(minX, first[j * 2]);
      maxX = Math.max(maxX, first[j * 2]);
    }
    const top = Math.max(trace.bounds.maxY, overheadTop(trace.terrain)); // a tunnel's ceiling stays in view
    const height = Math.max(1, top - Math.min(0, trace.bounds.minY));
    this.size = { width: Math.max(1, maxX - minX), height };
    this.camX = comAt(trace, 0)[0];
    if (this.controls) {
      this.controls.scrub.max = String(trace.frameCount - 1);
      this.controls.root.style.visibility = "visible";
    }
    this.seek(0);
    if (this.autoplay) this.play();
  }

  play() {
    if (!this.trace || this.playing) return;
    if (this.frame >= this.trace.frameCount - 1) this.seek(0);
    this.playing = true;
    this.last = null;
    this.raf = requestAnimationFrame((t) => this.tick(t));
    this.syncControls();
  }

  pause() {
    this.playing = false;
    if (this.raf !== null) cancelAnimationFrame(this.raf);
    this.raf = null;
    this.syncControls();
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  /** Show fractional frame `f` (clamped). */
  seek(f) {
    if (!this.trace) return;
    this.frame = Math.min(this.trace.frameCount - 1, Math.max(0, f));
    this.canvas.dataset.frame = String(Math.floor(this.frame));
    this.draw();
    this.syncControls();
  }

  setSpeed(speed) {
    this.speed = speed;
    if (this.controls) this.controls.speed.value = String(speed);
  }

  destroy() {
    this.pause();
    this.trace = null;
  }

  tick(now) {
    if (!this.playing || !this.trace) return;
    const dt = this.last === null ? 0 : Math.min(0.1, (now - this.last) / 1000);
    this.last = now;
    let f = this.frame + dt * this.trace.fps * this.speed;
    if (f >= this.trace.frameCount - 1) {
      if (!this.loop) {
        this.seek(this.trace.frameCount - 1);
        this.pause();
        return;
      }
      f = 0;
      this.camX = comAt(this.trace, 0)[0];
    }
    this.seek(f);
    this.raf = requestAnimationFrame((t) => this.tick(t));
  }

  buildControls(root) {
    root.replaceChildren();
    root.style.visibility = "hidden"; // keeps its height: no jump when a replay arrives
    const button = document.createElement("button");
    button.type = "button";
    button.className = "replay-play";
    button.textContent = "Pause";
    button.addEventListener("click", () => this.toggle());
    const scrub = document.createElement("input");
    scrub.type = "range";
    scrub.min = "0";
    scrub.step = "0.01";
    scrub.value = "0";
    scrub.setAttribute("aria-label", "Replay time");
    scrub.addEventListener("input", () => {
      this.pause();
      this.seek(Number(scrub.value));
    });
    const speed = document.createElement("select");
    speed.setAttribute("aria-label", "Replay speed");
    for (const s of SPEEDS) speed.add(new Option(`${s}×`, String(s), s === 1, s === 1));
    speed.addEventListener("change", () => this.setSpeed(Number(speed.value)));
    const time = document.createElement("span");
    time.className = "time muted";
    root.append(button, scrub, speed, time);
    return { root, button, scrub, speed, time };
  }

  syncControls() {
    const c = this.controls;
    if (!c || !this.trace) return;
    c.button.textContent = this.playing ? "Pause" : "Play";
    c.button.setAttribute("aria-pressed", String(this.playing));
    if (document.activeElement !== c.scrub) c.scrub.value = String(this.frame);
    const t = this.frame / this.trace.fps;
    const settling = this.frame < this.trace.settleFrames;
    c.time.textContent = `${t.toFixed(1)} s${settling ? " (settling)" : ""} · ${formatFitness(distanceAt(this.trace, this.frame))} u`;
  }

  draw() {
    const trace = this.trace;
    if (!trace) return;
    const { ctx, width, height } = fitCanvas(this.canvas);
    const pos = positionsAt(trace, this.frame, this.buffer);
    const [comX] = comAt(trace, this.frame);
    // The camera follows the centre of mass, easing so small wobbles do not shake the view.
    const margin = width * 0.25;
    const k = Math.min((height * 0.55) / this.size.height, (width * 0.3) / this.size.width);
    const half = width / 2 / k;
    if (comX - this.camX > half - margin / k) this.camX = comX - (half - margin / k);
    if (this.camX - comX > half - margin / k) this.camX = comX + (half - margin / k);
    this.camX += (comX - this.camX) * 0.08;
    const groundY = height * 0.82;
    const sx = (x) => (x - this.camX) * k + width / 2;
    const sy = (y) => groundY - y * k;

    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = cssVar("--code-bg", "#f3f3f0");
    ctx.fillRect(0, 0, width, height);

    // Distance markers at round units at least 48 px apart (so motion reads on flat ground);
    // their labels are drawn after the terrain, which would otherwise hide them.
    const muted = cssVar("--muted");
    ctx.strokeStyle = cssVar("--line");
    ctx.lineWidth = 1;
    const leftX = this.camX - half;
    const every = [1, 2, 5, 10, 20, 50, 100, 200, 500].find((d) => d * k >= 48) ?? 1000;
    const marks = [];
    for (let m = Math.ceil(leftX / every) * every; m <= this.camX + half; m += every) marks.push(m);
    for (const m of marks) {
      const x = Math.round(sx(m)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, 0);
      ctx.lineTo(x, groundY);
      ctx.stroke();
    }

    // Terrain: thick round-capped segments, surface where the engine put it.
    ctx.strokeStyle = cssVar("--ground", "#8d7b68");
    ctx.lineCap = "round";
    for (const [x0, y0, x1, y1, r] of trace.terrain.segments ?? []) {
      if (Math.max(x0, x1) < leftX - 10 || Math.min(x0, x1) > this.camX + half + 10) continue;
      ctx.lineWidth = Math.max(1, 2 * r * k);
      ctx.beginPath();
      ctx.moveTo(sx(x0), sy(y0));
      ctx.lineTo(sx(x1), sy(y1));
      ctx.stroke();
    }
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.lineJoin = "round";
    ctx.lineWidth = 3;
    ctx.strokeStyle = cssVar("--code-bg", "#f3f3f0"); // a halo: readable on the ground and off it
    ctx.fillStyle = cssVar("--text");
    for (const m of marks) {
      ctx.strokeText(String(m), sx(m), groundY + 4);
      ctx.fillText(String(m), sx(m), groundY + 4);
    }

    // Centre-of-mass trail since settling ended.
    const start = Math.min(trace.settleFrames, Math.floor(this.frame));
    ctx.strokeStyle = cssVar("--accent");
    ctx.globalAlpha = 0.6;
    ctx.lineWidth = 2;
    ctx.lineCap = "round";
    ctx.beginPath();
    for (let t = start; t <= Math.floor(this.frame); t += 1) {
      const x = sx(trace.com[t * 2]);
      const y = sy(trace.com[t * 2 + 1]);
      if (t === start) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.globalAlpha = 1;

    // Muscles: passive ones grey; active ones blue when contracted, red when stretched.
    const ext = extensions(trace, pos);
    ctx.lineWidth = Math.max(1.5, Math.min(4, 0.12 * k));
    trace.muscles.forEach(([a, b], m) => {
      if (isActive(trace, m)) {
        const e = Math.max(-1, Math.min(1, ext[m] / 0.25));
        ctx.strokeStyle = `hsl(${e >= 0 ? 0 : 215} 75% ${55 - 15 * Math.abs(e)}%)`;
      } else {
        ctx.strokeStyle = muted;
      }
      ctx.beginPath();
      ctx.moveTo(sx(pos[a * 2]), sy(pos[a * 2 + 1]));
      ctx.lineTo(sx(pos[b * 2]), sy(pos[b * 2 + 1]));
      ctx.stroke();
    });

    // Joints.
    ctx.fillStyle = cssVar("--text");
    const r = Math.max(2, Math.min(5, 0.15 * k));
    for (let j = 0; j < trace.joints; j += 1) {
      ctx.beginPath();
      ctx.arc(sx(pos[j * 2]), sy(pos[j * 2 + 1]), r, 0, Math.PI * 2);
      ctx.fill();
    }

    // Readout.
    ctx.fillStyle = cssVar("--text");
    ctx.textAlign = "left";
    ctx.font = "12px system-ui, sans-serif";
    const settling = this.frame < trace.settleFrames;
    ctx.fillText(settling ? "settling…" : `distance ${formatFitness(distanceAt(trace, this.frame))}`, 8, 8);
    ctx.textAlign = "right";
    ctx.fillText(`${(this.frame / trace.fps).toFixed(1)} s · ${trace.terrain.name ?? ""}`, width - 8, 8);
  }
}
