/* Live container logs over a WebSocket (apps/dashboard/consumers.py).
 *
 * Records arrive in batches and are queued; one animation frame renders all that
 * queued since the last, as one DocumentFragment, and only the newest MAX_LINES stay
 * in the page, so a container printing 10,000 lines a second cannot freeze it.
 * The id of the last record received is kept: a reconnect asks for what came after
 * it, so nothing is lost or shown twice.
 */
"use strict";
const MAX_LINES = 5000;

class LogView {
  constructor(root, containerId) {
    this.id = containerId;
    this.box = root.querySelector("#logs");
    this.live = root.querySelector("#log-live");
    this.records = [];     // the newest MAX_LINES records: [id, time, stream, line, partial]
    this.queue = [];       // received, not yet rendered
    this.lastId = null;
    this.paused = false;
    this.ended = false;
    this.started = false;
    this.socket = null;
    this.delay = 500;
    this.filter = "";
    this.frame = 0;
    this.received = 0;
    this.controls(root);
  }

  controls(root) {
    const q = (id) => root.querySelector(id);
    q("#log-ts").addEventListener("change", (e) => this.box.classList.toggle("show-ts", e.target.checked));
    q("#log-stdout").addEventListener("change", (e) => this.box.classList.toggle("hide-stdout", !e.target.checked));
    q("#log-stderr").addEventListener("change", (e) => this.box.classList.toggle("hide-stderr", !e.target.checked));
    q("#log-pause").addEventListener("click", (e) => {
      this.paused = !this.paused;
      e.target.textContent = this.paused ? "Resume" : "Pause";
      if (!this.paused) this.schedule();
    });
    this.follow = q("#log-follow");
    this.tail = q("#log-tail");
    this.tail.addEventListener("change", () => this.restart());
    let timer = 0;
    q("#log-search").addEventListener("input", (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.filter = e.target.value.toLowerCase(); this.rerender(); }, 150);
    });
    // Scrolling up stops following; back at the bottom follows again.
    this.box.addEventListener("scroll", () => {
      const atBottom = this.box.scrollHeight - this.box.scrollTop - this.box.clientHeight < 30;
      if (this.follow.checked !== atBottom && this.userScrolled) this.follow.checked = atBottom;
      this.userScrolled = true;
    });
  }

  start() {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  restart() {
    this.records = [];
    this.queue = [];
    this.lastId = null;
    this.box.textContent = "";
    this.ended = false;
    if (this.socket) { this.socket.onclose = null; this.socket.close(); }
    this.connect();
  }

  stateChanged(state) {
    // A container that runs again after its logs ended: carry on after the last id.
    if (this.started && this.ended && ["running", "restarting", "pending"].includes(state)) {
      this.ended = false;
      this.connect();
    }
  }

  connect() {
    const query = this.lastId ? `after=${encodeURIComponent(this.lastId)}` : `tail=${Number(this.tail.value) || 0}`;
    const socket = new WebSocket(Berth.wsUrl(`/ws/containers/${this.id}/logs/?${query}`));
    this.socket = socket;
    socket.onopen = () => { this.delay = 500; Berth.setLive(this.live, true, "streaming"); };
    socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    socket.onclose = () => {
      if (this.socket !== socket) return;
      if (this.ended) { Berth.setLive(this.live, false, "ended"); return; }
      Berth.setLive(this.live, false, "reconnecting");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }

  receive(message) {
    if (message.type === "records") {
      const records = message.records;
      this.lastId = records[records.length - 1][0];
      this.received += records.length;
      this.queue.push(...records.slice(-MAX_LINES));
      if (this.queue.length > MAX_LINES) this.queue.splice(0, this.queue.length - MAX_LINES);
      this.schedule();
    } else if (message.type === "text") {
      const lines = message.text.split("\n");
      if (lines[lines.length - 1] === "") lines.pop();
      this.queue.push(...lines.map((line) => {
        const space = line.indexOf(" ");
        return [null, line.slice(0, space), "stdout", line.slice(space + 1), "F"];
      }));
      this.schedule();
    } else if (message.type === "gap") {
      this.note("some older lines were trimmed before they could be shown");
    } else if (message.type === "end") {
      this.ended = true;
      this.note(`— the container is ${message.state}; the log ends here —`);
    } else if (message.type === "error") {
      this.note(`error: ${message.error.message}`);
    }
  }

  schedule() {
    if (!this.frame && !this.paused) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    if (this.paused || !this.queue.length) return;
    const batch = this.queue;
    this.queue = [];
    this.records.push(...batch);
    const fragment = document.createDocumentFragment();
    for (const record of batch) {
      if (this.matches(record)) fragment.append(this.line(record));
    }
    this.box.append(fragment);
    this.trim();
    if (this.follow.checked) { this.userScrolled = false; this.box.scrollTop = this.box.scrollHeight; }
  }

  trim() {
    if (this.records.length > MAX_LINES) this.records.splice(0, this.records.length - MAX_LINES);
    let extra = this.box.childElementCount - MAX_LINES;
    while (extra-- > 0) this.box.firstElementChild.remove();
  }

  rerender() {
    const fragment = document.createDocumentFragment();
    for (const record of this.records) if (this.matches(record)) fragment.append(this.line(record));
    this.box.replaceChildren(fragment);
    if (this.follow.checked) this.box.scrollTop = this.box.scrollHeight;
  }

  matches(record) {
    return !this.filter || stripAnsi(record[3]).toLowerCase().includes(this.filter);
  }

  line([id, time, stream, text]) {
    const div = document.createElement("div");
    div.className = stream === "stderr" ? "ln err" : "ln out";
    if (id) div.dataset.id = id;
    const ts = document.createElement("span");
    ts.className = "ts";
    ts.textContent = time;
    div.append(ts, ansiFragment(text));
    return div;
  }

  note(text) {
    const div = document.createElement("div");
    div.className = "note";
    div.textContent = text;
    this.box.append(div);
    if (this.follow.checked) this.box.scrollTop = this.box.scrollHeight;
  }
}

const ANSI = /\x1b\[([0-9;]*)m/g;

function stripAnsi(text) {
  return text.replace(ANSI, "");
}

/* SGR colour codes as spans with classes (the text itself is never parsed as HTML). */
function ansiFragment(text) {
  if (!text.includes("\x1b[")) return document.createTextNode(text);
  const fragment = document.createDocumentFragment();
  let classes = [];
  let last = 0;
  const emit = (chunk) => {
    if (!chunk) return;
    if (!classes.length) { fragment.append(chunk); return; }
    const span = document.createElement("span");
    span.className = classes.join(" ");
    span.textContent = chunk;
    fragment.append(span);
  };
  for (const match of text.matchAll(ANSI)) {
    emit(text.slice(last, match.index));
    last = match.index + match[0].length;
    for (const code of (match[1] || "0").split(";").map(Number)) {
      if (code === 0) classes = [];
      else if (code === 1) classes.push("ansi-b");
      else if (code === 3) classes.push("ansi-i");
      else if (code === 4) classes.push("ansi-u");
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) {
        classes = classes.filter((c) => !/^ansi-\d/.test(c)).concat(`ansi-${code}`);
      } else if (code === 39) classes = classes.filter((c) => !/^ansi-\d/.test(c));
      else if (code >= 40 && code <= 47) {
        classes = classes.filter((c) => !c.startsWith("ansi-bg")).concat(`ansi-bg-${code}`);
      } else if (code === 49) classes = classes.filter((c) => !c.startsWith("ansi-bg"));
    }
  }
  emit(text.slice(last));
  return fragment;
}
