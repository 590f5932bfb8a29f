// What the page of one training job shares, a stage-2 model's (pages/model.js) or a stage-3
// inventor's (pages/inventor.js): the head (#model-status, #model-progress, #progress-text,
// #model-error, #cancel-button, #model-folder/#model-path), Cancel, the job read again from the
// API when its status changes, and following it over its WebSocket with the stream's state in
// words (#stream-state). The page draws the rest in its `render(job)`.

import { getJSON, postJSON } from "./api.js";
import { setStatus } from "./dom.js";
import { formatPercent } from "./format.js";
import { applyModelMessage, isTerminal, modelSocketUrl, openModelStream, streamStateText } from "./training.js";

const $ = (id) => document.getElementById(id);

export class JobPage {
  /**
   * @param {object} initial  the job as the page's JSON (api.summary).
   * @param {(job: object) => void} render  draws the page's own parts; called after each change.
   */
  constructor(initial, render) {
    this.job = { ...initial, loss: initial.loss ?? [], rewards: initial.rewards ?? [] };
    this.render = render;
    this.cancelButton = $("cancel-button");
    this.cancelButton.addEventListener("click", () => this.cancel());
  }

  /** Show the head, then the page's parts. */
  show() {
    const job = this.job;
    setStatus($("model-status"), job.status);
    const progress = Number.isFinite(job.progress) ? job.progress : 0;
    $("model-progress").value = progress;
    $("progress-text").textContent = formatPercent(progress, 0);
    $("model-error").textContent = job.status === "failed" ? job.error || "the job failed" : job.error || "";
    const terminal = isTerminal(job.status);
    this.cancelButton.hidden = terminal;
    this.cancelButton.disabled = terminal || job.cancel_requested === true;
    if (job.path) {
      $("model-path").textContent = job.path;
      $("model-folder").hidden = false;
    }
    this.render(job);
  }

  async cancel() {
    this.cancelButton.disabled = true;
    try {
      const answer = await postJSON(`/api/models/${this.job.id}/cancel`);
      this.job = { ...this.job, ...answer, loss: this.job.loss, rewards: this.job.rewards };
      this.show();
    } catch (error) {
      $("model-error").textContent = `Cancel: ${error.message}`;
      this.cancelButton.disabled = isTerminal(this.job.status);
    }
  }

  // The socket carries status, progress, points and the evaluation summary; the rest (the
  // dataset figures, the model folder) comes with the job itself, read again on a change.
  async refresh() {
    try {
      const answer = await getJSON(`/api/models/${this.job.id}`);
      const { loss, rewards, status, progress } = this.job;
      this.job = { ...this.job, ...answer, loss, rewards, status, progress };
      this.show();
    } catch {
      // the page keeps what it shows; the next status change tries again
    }
  }

  /** Show the job and, unless it has ended, follow it over its WebSocket. */
  start() {
    this.show();
    if (isTerminal(this.job.status)) return;
    const streamState = $("stream-state");
    openModelStream({
      url: () => modelSocketUrl(window.location, this.job.id),
      onMessage: (message, { first }) => {
        const before = this.job.status;
        this.job = applyModelMessage(this.job, message, { first });
        this.show();
        if (this.job.status !== before || first) this.refresh();
      },
      onState: (state, detail) => {
        streamState.textContent = streamStateText(state, detail);
      },
    });
  }
}
