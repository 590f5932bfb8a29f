// Which run controls a status allows (mirrors elmweb.runs.selectors.RUN_ACTIONS). No DOM.

export const ACTIONS = ["start", "pause", "resume", "stop"];

const ALLOWED = {
  created: ["start", "stop"],
  running: ["pause", "stop"],
  pausing: ["resume", "stop"],
  paused: ["resume", "stop"],
  finished: [],
  failed: [],
};

/** The actions a run in `status` accepts ([] for an unknown status). */
export const validActions = (status) => ALLOWED[status] ?? [];

/** Whether a run in `status` may still change (its events are worth streaming). */
export const isLive = (status) => validActions(status).length > 0;

/** Which button to enable: {start: bool, pause: bool, resume: bool, stop: bool}. */
export function buttonStates(status, canControl = true) {
  const allowed = new Set(canControl ? validActions(status) : []);
  return Object.fromEntries(ACTIONS.map((a) => [a, allowed.has(a)]));
}
