/* The web terminal: xterm.js on an exec session's WebSocket (/ws/execs/<id>/).
 * Output arrives as binary frames, the end as {"type": "exit"}; keystrokes go out as
 * binary frames and the terminal's size as {"type": "resize", "rows", "columns"}. */
"use strict";
window.BerthTerminal = (() => {
  let term = null, fit = null, socket = null;

  function show(root) {
    if (!term) setUp(root);
    requestAnimationFrame(() => fit.fit());
  }

  function setUp(root) {
    const form = root.querySelector("#term-form");
    const live = root.querySelector("#term-live");
    const problem = root.querySelector("#term-error");
    term = new Terminal({ cursorBlink: true, fontSize: 13, convertEol: false,
      fontFamily: getComputedStyle(document.documentElement).getPropertyValue("--mono") });
    fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(root.querySelector("#terminal"));
    const encoder = new TextEncoder();
    term.onData((data) => socket && socket.readyState === 1 && socket.send(encoder.encode(data)));
    term.onResize(({ rows, cols }) => sendSize(rows, cols));
    new ResizeObserver(() => fit.fit()).observe(root.querySelector("#terminal"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.textContent = "";
      if (socket) socket.close();
      const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        problem.textContent = body.error ? body.error.message : `error ${response.status}`;
        return;
      }
      connect(body.id, live);
    });
  }

  function connect(execId, live) {
    term.reset();
    const ws = new WebSocket(Berth.wsUrl(`/ws/execs/${execId}/`));
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.onopen = () => {
      Berth.setLive(live, true, "connected");
      fit.fit();
      sendSize(term.rows, term.cols);
      term.focus();
    };
    ws.onmessage = (message) => {
      if (typeof message.data !== "string") {
        term.write(new Uint8Array(message.data));
        return;
      }
      const event = JSON.parse(message.data);
      if (event.type === "exit") {
        term.write(`\r\n[exited${event.exit_code === null ? "" : ` with ${event.exit_code}`}${event.error ? `: ${event.error}` : ""}]\r\n`);
      } else if (event.type === "error") {
        term.write(`\r\n[${event.message}]\r\n`);
      }
    };
    ws.onclose = () => { if (socket === ws) Berth.setLive(live, false, "closed"); };
  }

  function sendSize(rows, columns) {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: "resize", rows, columns }));
  }

  return { show, size: () => term && [term.rows, term.cols] };
})();
