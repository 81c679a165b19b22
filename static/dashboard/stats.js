/* Stats charts (uPlot): CPU, memory and network, a sample a second from the API's
 * Server-Sent Events stream (GET /api/containers/<id>/stats/?stream=1). */
"use strict";
const STATS_POINTS = 120;  // two minutes

class StatsView {
  constructor(root, containerId) {
    this.root = root;
    this.id = containerId;
    this.source = null;
    this.visible = false;
    this.state = root.dataset.state;
    this.data = { t: [], cpu: [], mem: [], rx: [], tx: [] };
    this.previous = null;
    this.charts = null;
  }

  show() {
    this.visible = true;
    if (!this.charts) this.charts = this.build();
    this.connect();
  }

  stateChanged(state) {
    this.state = state;
    if (this.visible) this.connect();
  }

  connect() {
    const running = ["running", "paused"].includes(this.state);
    const note = this.root.querySelector("#stats-note");
    if (!running) {
      if (this.source) { this.source.close(); this.source = null; }
      note.textContent = "Stats appear while the container runs.";
      return;
    }
    if (this.source) return;
    note.textContent = "A sample every second.";
    this.source = new EventSource(`/api/containers/${this.id}/stats/?stream=1`);
    this.source.onmessage = (event) => this.add(JSON.parse(event.data));
    this.source.addEventListener("end", () => { this.source.close(); this.source = null; });
    this.source.addEventListener("error", (event) => {
      if (event.data) note.textContent = JSON.parse(event.data).error.message;
    });
  }

  add(sample) {
    const t = Date.parse(sample.read_at) / 1000 || Date.now() / 1000;
    const net = Object.values(sample.networks || {}).reduce(
      (sum, i) => ({ rx: sum.rx + (i.rx_bytes || 0), tx: sum.tx + (i.tx_bytes || 0) }), { rx: 0, tx: 0 });
    let rx = null, tx = null;
    if (this.previous && t > this.previous.t) {
      rx = Math.max(0, (net.rx - this.previous.rx) / (t - this.previous.t));
      tx = Math.max(0, (net.tx - this.previous.tx) / (t - this.previous.t));
    }
    this.previous = { t, ...net };
    const d = this.data;
    d.t.push(t); d.cpu.push(sample.cpu_percent); d.mem.push(sample.memory_usage || 0);
    d.rx.push(rx); d.tx.push(tx);
    for (const key in d) if (d[key].length > STATS_POINTS) d[key].shift();
    const q = (id) => this.root.querySelector(id);
    q("#now-cpu").textContent = sample.cpu_percent == null ? "" : `${sample.cpu_percent.toFixed(1)} %`;
    const limit = sample.memory_limit && sample.memory_limit < 2 ** 60 ? ` / ${Berth.bytes(sample.memory_limit)}` : "";
    q("#now-mem").textContent = `${Berth.bytes(sample.memory_usage)}${limit}`;
    q("#now-net").textContent = rx == null ? "" : `↓ ${Berth.bytes(rx)}/s  ↑ ${Berth.bytes(tx)}/s`;
    this.root.dataset.statsSamples = String(Number(this.root.dataset.statsSamples || 0) + 1);
    if (this.charts) {
      this.charts.cpu.setData([d.t, d.cpu]);
      this.charts.mem.setData([d.t, d.mem]);
      this.charts.net.setData([d.t, d.rx, d.tx]);
    }
  }

  build() {
    const width = (el) => Math.max(240, el.clientWidth - 4);
    const make = (id, series, format) => {
      const el = this.root.querySelector(id);
      const opts = {
        width: width(el), height: 180, legend: { show: false },
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
        axes: [{ stroke: "#8a94a6", grid: { stroke: "#8a94a622" } },
               { stroke: "#8a94a6", grid: { stroke: "#8a94a622" }, size: 78,
                 values: (u, ticks) => ticks.map(format) }],
        series: [{}, ...series],
      };
      const chart = new uPlot(opts, [[], ...series.map(() => [])], el);
      new ResizeObserver(() => chart.setSize({ width: width(el), height: 180 })).observe(el);
      return chart;
    };
    const rate = (v) => `${Berth.bytes(v)}/s`;
    return {
      cpu: make("#chart-cpu", [{ label: "CPU %", stroke: "#2563eb", fill: "#2563eb22" }], (v) => `${+v.toFixed(2)}%`),
      mem: make("#chart-mem", [{ label: "Memory", stroke: "#16a34a", fill: "#16a34a22" }], Berth.bytes),
      net: make("#chart-net", [{ label: "received", stroke: "#9333ea" }, { label: "sent", stroke: "#ea580c" }], rate),
    };
  }
}
