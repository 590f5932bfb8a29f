// A run's event stream over the WebSocket /ws/runs/<id>/?last_id=N (see
// elmweb/runs/consumers.py): reconnects with exponential backoff and resumes after the
// last event id it delivered, so a flaky network never loses or repeats an event.
// No DOM: the WebSocket constructor and the timers are injectable (tests pass fakes).

/** Close codes after which reconnecting cannot help (see consumers.py). */
export const FATAL_CLOSE_CODES = {
  4400: "bad-request",
  4401: "unauthenticated",
  4404: "not-found",
};

/**
 * Delay before reconnect attempt `attempt` (0-based): initial * factor^attempt, capped,
 * with up to `jitter` of it removed at random so many clients do not reconnect in step.
 */
export function backoffDelay(attempt, { initial = 500, factor = 2, max = 15000, jitter = 0.2, random = Math.random } = {}) {
  const base = Math.min(max, initial * factor ** Math.max(0, attempt));
  return Math.round(base * (1 - jitter * random()));
}

/** The socket URL of a run, resuming after `lastId`, from a page location. */
export function runSocketUrl(location, runId, lastId = 0) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/runs/${runId}/?last_id=${lastId}`;
}

/**
 * Open a resumable event stream.
 *
 * @param {object} options
 * @param {(lastId: number) => string} options.url  socket URL for a cursor.
 * @param {number} [options.lastId=0]  the last event id already seen.
 * @param {(event: object) => void} options.onEvent  each new event, once, in id order.
 * @param {(state: string, detail?: object) => void} [options.onState]  "connecting",
 *   "open", "waiting" (detail.delay ms before the next try), "closed", or a fatal reason
 *   ("unauthenticated", "not-found", "bad-request").
 * @param {Function} [options.WebSocket]  constructor (default: globalThis.WebSocket).
 * @param {object} [options.timers]  {setTimeout, clearTimeout}.
 * @param {object} [options.backoff]  options of backoffDelay.
 * @returns {{close(): void, lastId(): number, resetTo(id: number): void, state(): string}}
 */
export function openEventStream(options) {
  const Socket = options.WebSocket ?? globalThis.WebSocket;
  const timers = options.timers ?? globalThis;
  const onState = options.onState ?? (() => {});
  let lastId = options.lastId ?? 0;
  let attempt = 0;
  let socket = null;
  let timer = null;
  let stopped = false;
  let state = "idle";

  function setState(next, detail) {
    state = next;
    onState(next, detail);
  }

  function connect() {
    timer = null;
    if (stopped) return;
    setState("connecting");
    const ws = new Socket(options.url(lastId));
    socket = ws;
    ws.onopen = () => {
      if (ws !== socket) return;
      attempt = 0;
      setState("open");
    };
    ws.onmessage = (message) => {
      if (ws !== socket) return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not ours to judge: the server only sends JSON
      }
      if (!event || typeof event.id !== "number" || event.id <= lastId) return;
      lastId = event.id;
      options.onEvent(event);
    };
    ws.onclose = (close) => {
      if (ws !== socket) return;
      socket = null;
      if (stopped) return;
      const fatal = FATAL_CLOSE_CODES[close?.code];
      if (fatal) {
        stopped = true;
        setState(fatal, { code: close.code });
        return;
      }
      const delay = backoffDelay(attempt, options.backoff);
      attempt += 1;
      setState("waiting", { delay, attempt });
      timer = timers.setTimeout(connect, delay);
    };
    ws.onerror = () => {}; // a close always follows
  }

  connect();
  return {
    close() {
      stopped = true;
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
      const ws = socket;
      socket = null;
      if (ws) ws.close(1000);
      setState("closed");
    },
    lastId: () => lastId,
    state: () => state,
    /** Move the cursor (the view was reset): the server replays from `id`. */
    resetTo(id) {
      lastId = id;
      if (socket && socket.readyState === 1) socket.send(JSON.stringify({ last_id: id }));
    },
  };
}
