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
 * A WebSocket that reconnects with backoff: the machinery under `openEventStream` and the
 * training pages' job stream.
 *
 * @param {object} options
 * @param {() => string} options.url  socket URL of the next connection.
 * @param {(data: object, info: {first: boolean}) => (string|void)} options.onMessage  each JSON
 *   message (`first`: the first of its connection); return "stop" to close for good ("ended").
 * @param {(state: string, detail?: object) => void} [options.onState]  "connecting", "open",
 *   "waiting" (detail.delay ms before the next try), "ended", "closed", or a fatal reason
 *   ("unauthenticated", "not-found", "bad-request").
 * @param {Function} [options.WebSocket]  constructor (default: globalThis.WebSocket).
 * @param {object} [options.timers]  {setTimeout, clearTimeout}.
 * @param {object} [options.backoff]  options of backoffDelay.
 * @returns {{close(): void, state(): string, send(data: object): void}}
 */
export function openSocket(options) {
  const Socket = options.WebSocket ?? globalThis.WebSocket;
  const timers = options.timers ?? globalThis;
  const onState = options.onState ?? (() => {});
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
    const ws = new Socket(options.url());
    let first = true;
    socket = ws;
    ws.onopen = () => {
      if (ws !== socket) return;
      attempt = 0;
      setState("open");
    };
    ws.onmessage = (message) => {
      if (ws !== socket) return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return; // not ours to judge: the server only sends JSON
      }
      const info = { first };
      first = false;
      if (options.onMessage(data, info) === "stop") {
        stopped = true;
        socket = null;
        ws.close(1000);
        setState("ended");
      }
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
      if (stopped && socket === null && timer === null) return;
      stopped = true;
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
      const ws = socket;
      socket = null;
      if (ws) ws.close(1000);
      setState("closed");
    },
    state: () => state,
    send(data) {
      if (socket && socket.readyState === 1) socket.send(JSON.stringify(data));
    },
  };
}

/**
 * Open a resumable event stream.
 *
 * @param {object} options
 * @param {(lastId: number) => string} options.url  socket URL for a cursor.
 * @param {number} [options.lastId=0]  the last event id already seen.
 * @param {(event: object) => void} options.onEvent  each new event, once, in id order.
 * @param {(state: string, detail?: object) => void} [options.onState]  as in `openSocket`.
 * @param {Function} [options.WebSocket]  constructor (default: globalThis.WebSocket).
 * @param {object} [options.timers]  {setTimeout, clearTimeout}.
 * @param {object} [options.backoff]  options of backoffDelay.
 * @returns {{close(): void, lastId(): number, resetTo(id: number): void, state(): string}}
 */
export function openEventStream(options) {
  let lastId = options.lastId ?? 0;
  const socket = openSocket({
    ...options,
    url: () => options.url(lastId),
    onMessage(event) {
      if (!event || typeof event.id !== "number" || event.id <= lastId) return;
      lastId = event.id;
      options.onEvent(event);
    },
  });
  return {
    close: socket.close,
    lastId: () => lastId,
    state: socket.state,
    /** Move the cursor (the view was reset): the server replays from `id`. */
    resetTo(id) {
      lastId = id;
      socket.send({ last_id: id });
    },
  };
}
