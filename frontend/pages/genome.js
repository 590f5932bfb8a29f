// The genome page: highlighted program, coloured diff, and the replay (autoplays when the
// genome has one).

import { getJSON } from "../api.js";
import { colourDiff, highlightCode, pageData } from "../dom.js";
import { ReplayPlayer } from "../replay.js";
import { decodeTrace } from "../trace.js";

const genome = pageData("genome-data");
highlightCode(document.getElementById("program"));
colourDiff(document.getElementById("diff"));

if (genome.has_trace) {
  const player = new ReplayPlayer(document.getElementById("replay"), { controls: document.getElementById("replay-controls") });
  getJSON(`/api/runs/${genome.run}/genomes/${genome.gid}/trace`)
    .then((json) => player.load(decodeTrace(json)))
    .catch((error) => {
      const note = document.createElement("p");
      note.className = "replay-empty muted";
      note.textContent = `No replay: ${error.message}`;
      document.getElementById("replay").after(note);
    });
}
