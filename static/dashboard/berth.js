/* Berth dashboard: theme, the team events WebSocket, the live container list, tabs. */
"use strict";
window.Berth = (() => {
  const wsUrl = (path) => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;

  function themeToggle() {
    const button = document.getElementById("theme");
    if (!button) return;
    button.addEventListener("click", () => {
      const dark = matchMedia("(prefers-color-scheme: dark)").matches;
      const now = document.documentElement.dataset.theme || (dark ? "dark" : "light");
      const next = now === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      localStorage.setItem("berth-theme", next);
    });
  }

  /* Container and operation events of every team of the user; reconnects by itself. */
  function events(onEvent, onLive) {
    const teams = (document.body.dataset.teams || "").split(" ").filter(Boolean);
    let delay = 500;
    const open = () => {
      const socket = new WebSocket(wsUrl("/ws/events/"));
      let acknowledged = 0;
      socket.onopen = () => {
        delay = 500;
        teams.forEach((team) => socket.send(JSON.stringify({ action: "subscribe", team })));
      };
      socket.onmessage = (message) => {
        const event = JSON.parse(message.data);
        // Live once every team's subscription took: from then on no change is missed.
        if (event.type === "subscribed" && ++acknowledged === teams.length) onLive && onLive(true);
        else onEvent(event);
      };
      socket.onclose = () => {
        onLive && onLive(false);
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    };
    if (teams.length) open();
  }

  function setLive(element, on, text) {
    if (!element) return;
    element.classList.toggle("on", on);
    element.textContent = text || (on ? "live" : "reconnecting");
  }

  /* The containers table: a state event re-renders that row from the server (htmx). */
  function liveContainerList(stateFilter) {
    const params = new URLSearchParams(location.search);
    // While the list is re-read, events wait (the newest per container): applied to the
    // old list, the re-read would wipe what they added.
    let rereading = null;
    const waiting = new Map();
    const apply = (event) => {
      const c = event.container;
      const row = document.getElementById(`row-${c.id}`);
      if (c.state === "removed" || (stateFilter && c.state !== stateFilter)) {
        if (row) row.remove();
        return;
      }
      if (row) {
        htmx.ajax("GET", `/containers/${c.id}/row/`, { target: row, swap: "outerHTML" });
      } else if (!params.get("q") && [null, "", c.team].includes(params.get("team"))) {
        const rows = document.getElementById("container-rows");  // replaced on each refresh
        rows.querySelector("tr.empty")?.remove();  // an empty page spans all times
        // The creation times this page spans: a row of another page comes back empty (204).
        const span = new URLSearchParams();
        for (const bound of ["newest", "oldest"]) if (rows.dataset[bound]) span.set(bound, rows.dataset[bound]);
        htmx.ajax("GET", `/containers/${c.id}/row/?${span}`, { target: rows, swap: "afterbegin" });
      }
    };
    events((event) => {
      if (event.type !== "container.state") return;
      if (rereading) waiting.set(event.container.id, event);
      else apply(event);
    }, (on) => {
      setLive(document.getElementById("live"), on);
      if (!on) return;
      // Changes made before the subscription took: re-read the rows once.
      rereading = Promise.resolve(htmx.ajax("GET", location.href, { target: "#container-list", select: "#container-list", swap: "outerHTML" }))
        .finally(() => {
          rereading = null;
          waiting.forEach(apply);
          waiting.clear();
        });
    });
  }

  function tabs(root, onShow) {
    const buttons = root.querySelectorAll("[data-tab]");
    const show = (name) => {
      buttons.forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
      root.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== name; });
      history.replaceState(null, "", `#${name}`);
      onShow(name);
    };
    buttons.forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
    const first = location.hash.slice(1);
    show([...buttons].some((b) => b.dataset.tab === first) ? first : "info");
  }

  /* The detail page: live state, action buttons that fit it, logs, stats, terminal. */
  function containerPage(root) {
    const id = root.dataset.id;
    const logView = new LogView(root, id);
    const stats = new StatsView(root, id);
    root.logView = logView;  // for the browser tests and the console
    const applyState = (state) => {
      root.dataset.state = state;
      const badge = root.querySelector("#state [data-state]");
      badge.textContent = state;
      badge.className = `state state-${state}`;
      root.querySelectorAll("#actions [data-when]").forEach((button) => {
        button.disabled = !button.dataset.when.split(" ").includes(state);
      });
      stats.stateChanged(state);
      logView.stateChanged(state);
    };
    applyState(root.dataset.state);
    const showRow = (c) => {
      applyState(c.state);
      root.querySelector("#state-text").textContent = c.state +
        (c.exit_code !== null && c.exit_code !== undefined ? ` (exit ${c.exit_code})` : "");
    };
    events((event) => {
      if (event.type === "container.state" && event.container.id === id) showRow(event.container);
    }, (on) => {
      // What changed before the subscription took: the row is the truth.
      if (on) fetch(`/api/containers/${id}/`).then((r) => (r.ok ? r.json() : null))
        .then((row) => row && showRow(row)).catch(() => {});
    });
    tabs(root, (name) => {
      if (name === "logs") logView.start();
      if (name === "stats") stats.show();
      if (name === "terminal" && window.BerthTerminal) BerthTerminal.show(root);
    });
  }

  /* An operation's page: status and one progress bar per layer, as events arrive. */
  function operationPage(root) {
    const id = root.dataset.id;
    const render = (op) => {
      root.querySelector("[data-status]").textContent = op.status;
      root.querySelector("[data-status]").className = `status status-${op.status}`;
      if (op.error) root.querySelector("[data-error]").textContent = op.error;
      const progress = op.progress || {};
      setBar(root.querySelector("[data-total]"), progress.done, progress.total);
      const layers = root.querySelector("[data-layers]");
      Object.entries(progress.layers || {}).forEach(([digest, layer]) => {
        let row = layers.querySelector(`[data-layer="${digest}"]`);
        if (!row) {
          row = document.createElement("div");
          row.dataset.layer = digest;
          row.className = "layer";
          row.innerHTML = '<div class="spread small"><span class="mono"></span><span data-ls></span></div><div class="bar"><span></span></div>';
          row.querySelector(".mono").textContent = digest.replace("sha256:", "").slice(0, 12);
          layers.append(row);
        }
        row.className = `layer layer-state-${layer.state}`;
        row.querySelector("[data-ls]").textContent = `${layer.state} ${bytes(layer.done)} / ${bytes(layer.total)}`;
        setBar(row.querySelector(".bar"), layer.done, layer.total, layer.state);
      });
      if (op.status === "succeeded") {
        setBar(root.querySelector("[data-total]"), 1, 1);
        const download = root.querySelector("[data-download]");
        if (download && op.kind === "save") download.hidden = false;
      }
    };
    events((event) => {
      if (event.type === "operation.state" && event.operation.id === id) render(event.operation);
    }, (on) => {
      setLive(root.querySelector(".live"), on);
      // Anything missed while not subscribed: the row is the truth.
      if (on) fetch(`/api/operations/${id}/`).then((r) => r.json()).then(render).catch(() => {});
    });
  }

  /* Loading an archive goes straight to the API, which streams the upload to disk. */
  function loadForm(form) {
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const problem = form.querySelector("[data-error]");
      const host = form.querySelector("[name=host]").value;
      const body = new FormData();
      body.append("file", form.querySelector("[name=file]").files[0]);
      problem.textContent = "uploading…";
      const response = await fetch(`${form.action}${host ? `?host=${encodeURIComponent(host)}` : ""}`, {
        method: "POST", body,
        headers: { "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) location.href = `/operations/${answer.id}/`;
      else problem.textContent = answer.error ? answer.error.message : `error ${response.status}`;
    });
  }

  function setBar(bar, done, total, state) {
    if (!bar) return;
    let percent = total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : 0;
    if (["done", "exists", "mounted"].includes(state)) percent = 100;
    bar.querySelector("span").style.width = `${percent}%`;
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuenow", String(percent));
  }

  function bytes(n) {
    if (!n) return "0 B";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    const i = Math.max(0, Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1024))));
    const value = n / 1024 ** i;
    return `${value.toFixed(i && value < 100 ? 1 : 0)} ${units[i]}`;
  }

  document.addEventListener("DOMContentLoaded", themeToggle);
  if (document.readyState !== "loading") themeToggle();
  return { wsUrl, events, setLive, liveContainerList, containerPage, operationPage, loadForm,
    bytes, setBar };
})();
