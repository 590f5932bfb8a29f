// Canvas helpers shared by the drawing modules: devicePixelRatio-correct sizing, theme colours
// from the stylesheet's variables, and one scheduled frame per burst of changes.

/**
 * Size a canvas's backing store to its CSS box times devicePixelRatio and return a context in
 * CSS pixels. Call before each full redraw (cheap when nothing changed).
 * @returns {{ctx: CanvasRenderingContext2D, width: number, height: number}}
 */
export function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || Number(canvas.getAttribute("width")) || 300;
  const height = canvas.clientHeight || Number(canvas.getAttribute("height")) || 150;
  const w = Math.round(width * ratio);
  const h = Math.round(height * ratio);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

/** A CSS variable of the page (e.g. "--muted"), for drawing in the current theme. */
export function cssVar(name, fallback = "#888") {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Returns mark(): any number of calls before the next animation frame cause one draw(). */
export function scheduler(draw) {
  let pending = false;
  return function mark() {
    if (pending) return;
    pending = true;
    requestAnimationFrame((now) => {
      pending = false;
      draw(now);
    });
  };
}

/** Redraw on theme or size changes (dark mode toggled, window resized). */
export function onViewChange(mark) {
  window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener?.("change", mark);
  window.addEventListener("resize", mark);
}
