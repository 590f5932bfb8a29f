import { test } from "node:test";
import assert from "node:assert/strict";
import { fitView, layoutTree, nodeAt, zoomAt } from "../../frontend/lineage.js";

const node = (gid, parent_gid) => ({ gid, parent_gid });

test("layers follow generations from the root", () => {
  const { positions, depth } = layoutTree([node(0, null), node(1, 0), node(2, 1)], { dy: 10 });
  assert.deepEqual([0, 1, 2].map((g) => positions.get(g).y), [0, 10, 20]);
  assert.equal(depth, 2);
});

test("leaves are one slot apart and parents are centred over their children", () => {
  const { positions, width } = layoutTree([node(0, null), node(1, 0), node(2, 0), node(3, 0), node(4, 1), node(5, 1)], { dx: 10 });
  assert.deepEqual([4, 5, 2, 3].map((g) => positions.get(g).x), [0, 10, 20, 30]);
  assert.equal(positions.get(1).x, 5);
  assert.equal(positions.get(0).x, 17.5);
  assert.equal(width, 30);
});

test("subtrees never overlap in a layer", () => {
  const nodes = [node(0, null)];
  for (let i = 1; i < 400; i += 1) nodes.push(node(i, Math.floor((i - 1) / 3)));
  const { positions } = layoutTree(nodes, { dx: 1 });
  const byLayer = new Map();
  for (const p of positions.values()) {
    if (!byLayer.has(p.y)) byLayer.set(p.y, []);
    byLayer.get(p.y).push(p.x);
  }
  for (const xs of byLayer.values()) {
    xs.sort((a, b) => a - b);
    for (let i = 1; i < xs.length; i += 1) assert.ok(xs[i] - xs[i - 1] >= 1 - 1e-9);
  }
  assert.equal(positions.size, 400);
});

test("a chain thousands of generations deep is laid out without recursion", () => {
  const nodes = [node(0, null)];
  for (let i = 1; i < 20000; i += 1) nodes.push(node(i, i - 1));
  const layout = layoutTree(nodes);
  assert.equal(layout.depth, 19999);
  assert.equal(layout.edges.length, 19999);
});

test("nodes whose parent is missing become roots side by side", () => {
  const { positions, edges } = layoutTree([node(5, 2), node(6, 5), node(7, 3)], { dx: 10 });
  assert.equal(positions.get(5).y, 0);
  assert.equal(positions.get(7).y, 0);
  assert.notEqual(positions.get(5).x, positions.get(7).x);
  assert.deepEqual(edges, [[5, 6]]);
});

test("zooming keeps the point under the cursor still", () => {
  const view = zoomAt({ k: 1, x: 0, y: 0 }, 2, 100, 50);
  assert.deepEqual(view, { k: 2, x: -100, y: -50 });
  assert.equal(zoomAt({ k: 1, x: 0, y: 0 }, 1000, 0, 0).k, 8);
});

test("fitting centres the layout and finds the node under a point", () => {
  const layout = layoutTree([node(0, null), node(1, 0), node(2, 0)], { dx: 100, dy: 100 });
  const view = fitView(layout.width, layout.height, 300, 300, 50);
  assert.equal(view.k, 2);
  assert.equal(nodeAt(layout, view, view.x + 200, view.y + 200), 2);
  assert.equal(nodeAt(layout, view, -500, -500), null);
});
