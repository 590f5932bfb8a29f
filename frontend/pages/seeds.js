// The seeds gallery: each seed's walker replayed on flat ground (simulated once by the server).

import { getJSON } from "../api.js";
import { highlightCode } from "../dom.js";
import { ReplayPlayer } from "../replay.js";
import { decodeTrace } from "../trace.js";

for (const pre of document.querySelectorAll(".seed pre.code")) highlightCode(pre);

// One at a time: each replay is simulated on the server the first time it is asked for.
async function loadAll() {
  for (const canvas of document.querySelectorAll("canvas.seed-replay")) {
    const card = canvas.closest(".seed");
    const player = new ReplayPlayer(canvas, { controls: card.querySelector(".replay-controls") });
    try {
      player.load(decodeTrace(await getJSON(`/api/seeds/${encodeURIComponent(canvas.dataset.seed)}/trace`)));
    } catch (error) {
      const note = document.createElement("p");
      note.className = "replay-empty muted";
      note.textContent = `No replay: ${error.message}`;
      canvas.after(note);
    }
  }
}
loadAll();
