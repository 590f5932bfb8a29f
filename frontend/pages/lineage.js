// The lineage page: coloured diffs of each step, fitness along the line, and the tree of the
// genome's descendants with zoom and pan.

import { getJSON } from "../api.js";
import { onViewChange, scheduler } from "../canvas.js";
import { drawCurves } from "../chart.js";
import { colourDiff, pageData } from "../dom.js";
import { formatFitness } from "../format.js";
import { TreeView } from "../tree.js";

const meta = pageData("lineage-data");
for (const pre of document.querySelectorAll("#lineage pre.diff")) colourDiff(pre);

const rows = meta.steps.map((s, i) => ({ step: i, fitness: s.fitness }));
const markChart = scheduler(() => drawCurves(document.getElementById("lineage-fitness"), [rows], { key: "fitness", x: "step", format: formatFitness, dots: true }));
onViewChange(markChart);
markChart();

const canvas = document.getElementById("descendants");
const note = document.getElementById("descendants-note");
getJSON(`/api/runs/${meta.run}/genomes/${meta.gid}/descendants`)
  .then(({ nodes, truncated }) => {
    const tree = new TreeView(canvas, nodes, {
      root: meta.gid,
      tip: document.getElementById("tree-tip"),
      onOpen: (node) => { window.location.href = `/genomes/${node.id}/`; },
    });
    document.getElementById("zoom-in").addEventListener("click", () => tree.zoom(1.25));
    document.getElementById("zoom-out").addEventListener("click", () => tree.zoom(0.8));
    document.getElementById("zoom-fit").addEventListener("click", () => tree.fit());
    const count = nodes.length - 1;
    note.textContent = `${count}${truncated ? "+" : ""} descendant${count === 1 ? "" : "s"} · drag to pan, wheel or +/− to zoom, click a node to open it`;
  })
  .catch((error) => { note.textContent = `Could not load the descendants: ${error.message}`; });
