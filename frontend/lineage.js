// Layout of a descendants tree: layered (depth = generation from the root, one row per layer),
// tidy (leaves in depth-first order one slot apart, each parent centred over its children), so
// hundreds of nodes stay readable: no edges cross and subtrees never overlap. Iterative, so a
// chain thousands of generations deep cannot overflow the stack. No DOM.

/**
 * @param {Array<{gid: number, parent_gid: number|null}>} nodes  any order; a node whose parent
 *   is not among the nodes is a root (several roots are laid out side by side).
 * @param {object} [options]
 * @param {number} [options.dx=16]  horizontal gap between neighbouring leaves.
 * @param {number} [options.dy=48]  vertical gap between layers.
 * @returns {{positions: Map<number, {x: number, y: number, depth: number}>,
 *   edges: Array<[number, number]>, width: number, height: number, depth: number}}
 *   edges are [parent gid, child gid]; x and y start at 0.
 */
export function layoutTree(nodes, { dx = 16, dy = 48 } = {}) {
  const ids = new Set(nodes.map((n) => n.gid));
  const children = new Map();
  const roots = [];
  for (const n of [...nodes].sort((a, b) => a.gid - b.gid)) {
    if (n.parent_gid === null || n.parent_gid === undefined || !ids.has(n.parent_gid) || n.parent_gid === n.gid) {
      roots.push(n.gid);
    } else {
      if (!children.has(n.parent_gid)) children.set(n.parent_gid, []);
      children.get(n.parent_gid).push(n.gid);
    }
  }
  const positions = new Map();
  const edges = [];
  let nextLeaf = 0;
  let maxDepth = 0;
  // Post-order walk: a node is placed once all of its children are.
  const stack = roots.reverse().map((gid) => ({ gid, depth: 0, expanded: false }));
  while (stack.length) {
    const top = stack[stack.length - 1];
    const kids = children.get(top.gid) ?? [];
    if (!top.expanded) {
      top.expanded = true;
      maxDepth = Math.max(maxDepth, top.depth);
      for (let i = kids.length - 1; i >= 0; i -= 1) {
        if (!positions.has(kids[i])) stack.push({ gid: kids[i], depth: top.depth + 1, expanded: false });
      }
      continue;
    }
    stack.pop();
    let x;
    if (kids.length === 0) {
      x = nextLeaf * dx;
      nextLeaf += 1;
    } else {
      x = (positions.get(kids[0]).x + positions.get(kids[kids.length - 1]).x) / 2;
      for (const kid of kids) edges.push([top.gid, kid]);
    }
    positions.set(top.gid, { x, y: top.depth * dy, depth: top.depth });
  }
  return { positions, edges, width: Math.max(0, nextLeaf - 1) * dx, height: maxDepth * dy, depth: maxDepth };
}

/** Zoom around a point: the view {x, y, k} (screen = world * k + (x, y)) after scaling by `factor`. */
export function zoomAt(view, factor, px, py, { min = 0.05, max = 8 } = {}) {
  const k = Math.min(max, Math.max(min, view.k * factor));
  const f = k / view.k;
  return { k, x: px - (px - view.x) * f, y: py - (py - view.y) * f };
}

/** The view that fits a width x height layout into a w x h box with a margin. */
export function fitView(width, height, w, h, margin = 24) {
  const k = Math.min(2, (w - 2 * margin) / Math.max(width, 1), (h - 2 * margin) / Math.max(height, 1));
  return { k, x: (w - width * k) / 2, y: margin };
}

/** The node under screen point (px, py) within `radius` pixels, or null. */
export function nodeAt(layout, view, px, py, radius = 8) {
  let best = null;
  let bestD = radius * radius;
  for (const [gid, p] of layout.positions) {
    const sx = p.x * view.k + view.x - px;
    const sy = p.y * view.k + view.y - py;
    const d = sx * sx + sy * sy;
    if (d <= bestD) {
      best = gid;
      bestD = d;
    }
  }
  return best;
}
