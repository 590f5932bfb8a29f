// Test doubles shared by the front end's tests: a WebSocket driven by hand and manual timers.

export class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  open() { this.readyState = 1; this.onopen?.(); }
  receive(message) { this.onmessage?.({ data: JSON.stringify(message) }); }
  drop(code = 1006) { this.readyState = 3; this.onclose?.({ code }); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code) { this.closedWith = code; this.readyState = 3; this.onclose?.({ code }); }
}

export function fakeTimers() {
  const pending = [];
  return {
    pending,
    setTimeout(fn, delay) { pending.push({ fn, delay }); return pending.length; },
    clearTimeout(id) { pending[id - 1].fn = () => {}; },
    runNext() { const next = pending.shift(); next.fn(); return next.delay; },
  };
}
