// Drawing of a descendants tree (layout from lineage.js) with zoom and pan: wheel or +/-
// buttons zoom around a point, dragging or the arrow keys pan, a click opens a node.

import { rampColor } from "./archive.js";
import { cssVar, fitCanvas, onViewChange, scheduler } from "./canvas.js";
import { formatFitness } from "./format.js";
import { fitView, layoutTree, nodeAt, zoomAt } from "./lineage.js";

const MIN_READABLE_K = 0.5; // below this, neighbouring leaves (14 units apart) merge

export class TreeView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {Array<object>} nodes  {gid, parent_gid, fitness, outcome, id}
   * @param {object} options  {root: gid, onOpen(node), tip: element}
   */
  constructor(canvas, nodes, { root, onOpen, tip }) {
    this.canvas = canvas;
    this.nodes = new Map(nodes.map((n) => [n.gid, n]));
    this.root = root;
    this.layout = layoutTree(nodes, { dx: 14, dy: 40 });
    const fits = nodes.map((n) => n.fitness).filter(Number.isFinite);
    this.range = [Math.min(0, ...fits), Math.max(1e-9, ...fits)];
    this.hover = null;
    this.tip = tip;
    this.mark = scheduler(() => this.draw());
    this.fit();
    onViewChange(this.mark);
    this.bind(onOpen);
  }

  fit() {
    const w = this.canvas.clientWidth || 600;
    const h = this.canvas.clientHeight || 360;
    this.view = fitView(this.layout.width, this.layout.height, w, h);
    if (this.view.k < MIN_READABLE_K) {
      // Too many nodes to fit readably: start at a readable zoom, centred on the root.
      const root = this.layout.positions.get(this.root) ?? { x: 0, y: 0 };
      this.view = { k: MIN_READABLE_K, x: w / 2 - root.x * MIN_READABLE_K, y: 24 - root.y * MIN_READABLE_K };
    }
    this.mark();
  }

  zoom(factor, px = (this.canvas.clientWidth || 600) / 2, py = (this.canvas.clientHeight || 360) / 2) {
    this.view = zoomAt(this.view, factor, px, py);
    this.mark();
  }

  pan(dx, dy) {
    this.view = { ...this.view, x: this.view.x + dx, y: this.view.y + dy };
    this.mark();
  }

  bind(onOpen) {
    const c = this.canvas;
    let drag = null;
    const point = (e) => {
      const r = c.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom(Math.exp(-e.deltaY * 0.0015), ...point(e));
    }, { passive: false });
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x;
        const dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
        drag.x = e.clientX;
        drag.y = e.clientY;
        if (drag.moved) this.pan(dx, dy);
        return;
      }
      const [px, py] = point(e);
      const gid = nodeAt(this.layout, this.view, px, py, 8);
      if (gid !== this.hover) {
        this.hover = gid;
        this.mark();
        this.showTip(gid, px, py);
      }
    });
    c.addEventListener("pointerup", (e) => {
      const clicked = drag && !drag.moved;
      drag = null;
      if (!clicked) return;
      const gid = nodeAt(this.layout, this.view, ...point(e), 8);
      if (gid !== null) onOpen(this.nodes.get(gid));
    });
    c.addEventListener("keydown", (e) => {
      const step = 40;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (e.key in moves) {
        e.preventDefault();
        this.pan(...moves[e.key]);
      } else if (e.key === "+" || e.key === "=") this.zoom(1.25);
      else if (e.key === "-") this.zoom(0.8);
      else if (e.key === "0") this.fit();
    });
  }

  showTip(gid, px, py) {
    if (!this.tip) return;
    const node = gid === null ? null : this.nodes.get(gid);
    if (!node) {
      this.tip.hidden = true;
      return;
    }
    this.tip.textContent = `genome ${node.gid} · ${node.outcome}${Number.isFinite(node.fitness) ? ` · ${formatFitness(node.fitness)}` : ""}${node.failure ? ` · ${node.failure}` : ""}`;
    this.tip.style.left = `${Math.min(px + 12, (this.canvas.clientWidth || 600) - 210)}px`;
    this.tip.style.top = `${py + 12}px`;
    this.tip.hidden = false;
  }

  draw() {
    const { ctx, width, height } = fitCanvas(this.canvas);
    ctx.clearRect(0, 0, width, height);
    const { k, x, y } = this.view;
    const pos = this.layout.positions;
    ctx.strokeStyle = cssVar("--line");
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [a, b] of this.layout.edges) {
      const p = pos.get(a);
      const q = pos.get(b);
      const midY = ((p.y + q.y) / 2) * k + y;
      ctx.moveTo(p.x * k + x, p.y * k + y);
      ctx.lineTo(p.x * k + x, midY);
      ctx.lineTo(q.x * k + x, midY);
      ctx.lineTo(q.x * k + x, q.y * k + y);
    }
    ctx.stroke();
    const r = Math.max(2, Math.min(6, 5 * Math.sqrt(k)));
    const [lo, hi] = this.range;
    const muted = cssVar("--muted");
    for (const [gid, p] of pos) {
      const sx = p.x * k + x;
      const sy = p.y * k + y;
      if (sx < -r || sx > width + r || sy < -r || sy > height + r) continue;
      const node = this.nodes.get(gid);
      ctx.beginPath();
      ctx.arc(sx, sy, gid === this.root || gid === this.hover ? r + 2 : r, 0, Math.PI * 2);
      if (node.outcome === "failed" || !Number.isFinite(node.fitness)) {
        ctx.strokeStyle = muted;
        ctx.stroke();
      } else {
        ctx.fillStyle = rampColor((node.fitness - lo) / (hi - lo || 1));
        ctx.fill();
      }
    }
  }
}
