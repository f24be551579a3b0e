// stream-ids dashboard: polls /api/state every second and redraws. No external code.
// Records come from Kafka: they are only ever written with textContent, never as HTML.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const fmtInt = (n) => Number(n).toLocaleString("en-US");
  const fmtRate = (n) => (n >= 10 ? Math.round(n).toLocaleString("en-US") : Number(n).toFixed(1));
  const fmtPct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(v < 0.01 && v > 0 ? 3 : 2) + " %");
  const fmtTime = (t) => (t ? new Date(t * 1000).toLocaleTimeString("en-GB") : "");

  function setText(id, text) { const el = $(id); if (el.textContent !== text) el.textContent = text; }

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart(series) {
    const svg = $("chart");
    const W = 900, H = 220, L = 56, R = 10, T = 10, B = 22;
    const pts = series.points;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const ymax = niceMax(Math.max(1, ...pts.map((p) => p[1]), ...pts.map((p) => p[2])));
    const n = Math.max(1, pts.length - 1);
    const x = (i) => L + ((W - L - R) * i) / n;
    const y = (v) => T + (H - T - B) * (1 - v / ymax);
    for (let k = 0; k <= 4; k++) {
      const v = (ymax * k) / 4;
      svg.appendChild(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmtRate(v)));
    }
    const span = pts.length * series.bin_s;
    for (let k = 0; k <= 5; k++) {
      const i = (n * k) / 5;
      const ago = Math.round(span * (1 - k / 5));
      const label = ago === 0 ? "now" : "-" + (ago >= 60 ? (ago / 60).toFixed(ago % 60 ? 1 : 0) + " min" : ago + " s");
      svg.appendChild(svgEl("text", { x: x(i), y: H - 6, "text-anchor": k === 0 ? "start" : k === 5 ? "end" : "middle" }, label));
    }
    if (!pts.length) return;
    const line = (idx) => pts.map((p, i) => x(i).toFixed(1) + "," + y(p[idx]).toFixed(1)).join(" ");
    const flows = line(1);
    svg.appendChild(svgEl("polygon", { class: "flows-area", points: x(0) + "," + y(0) + " " + flows + " " + x(n) + "," + y(0) }));
    svg.appendChild(svgEl("polyline", { class: "flows", points: flows }));
    svg.appendChild(svgEl("polyline", { class: "alerts", points: line(2) }));
  }

  function fillTable(tbody, rows) {
    const frag = document.createDocumentFragment();
    for (const cells of rows) {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement("td");
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell.text;
        if (cell.cls) td.className = cell.cls;
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
  }

  function render(s) {
    const b = s.broker;
    const status = $("status");
    const ago = s.last_record_at ? Math.max(0, Math.round(s.now - s.last_record_at)) + " s ago" : "none yet";
    status.className = "status " + (b.connected ? "ok" : "bad");
    status.textContent = b.connected
      ? "broker connected · topics " + (b.topics.length ? b.topics.join(", ") : "(not created yet)") + " · last record " + ago
      : "broker unreachable" + (b.error ? ": " + b.error : "");
    setText("rate-window", s.rate_window_s + " s");
    setText("flows-rate", fmtRate(s.flows_per_s));
    setText("alerts-rate", fmtRate(s.alerts_per_s));
    setText("flows-total", fmtInt(s.verdicts_total));
    setText("alerts-total", fmtInt(s.alerts_total));
    const win = s.rates.sliding_60s, cum = s.rates.cumulative;
    setText("far", fmtPct(win.false_alarm_rate));
    setText("precision", fmtPct(win.precision));
    setText("recall", fmtPct(win.recall));
    setText("far-cum", cum.labelled ? "since start " + fmtPct(cum.false_alarm_rate) : "");
    setText("precision-cum", cum.labelled ? "since start " + fmtPct(cum.precision) : "");
    setText("recall-cum", cum.labelled ? "since start " + fmtPct(cum.recall) : "");
    setText("workers", String(Math.max(win.workers, cum.workers)));
    // the threshold in force (a site calibration's or the model's own) and the alert rate
    // against the calibration's target
    const cal = win.workers ? win : cum;
    setText("alert-rate", fmtPct(win.alert_rate));
    setText("alert-target", cal.target_alert_rate !== null && cal.target_alert_rate !== undefined
      ? "target " + fmtPct(cal.target_alert_rate) : (cal.workers ? "no target (not calibrated)" : ""));
    const thresholds = cal.thresholds || [];
    setText("threshold", thresholds.length === 1 ? String(Number(thresholds[0].toPrecision(6)))
      : thresholds.length > 1 ? "mixed" : "–");
    const sites = cal.calibration_sites || [];
    setText("calibration", cal.calibrated ? "calibrated: " + sites.join(", ")
      : sites.length ? "partly calibrated: " + sites.join(", ")
      : thresholds.length ? "model's own (not calibrated)" : "");
    $("threshold").title = thresholds.length > 1 ? "workers disagree: " + thresholds.join(", ") : "";
    // bounded host state: hosts kept, and idle hosts expired / hosts evicted over the budget
    setText("hosts-in-state", cum.hosts_in_state === null || cum.hosts_in_state === undefined ? "–"
      : cum.hosts_in_state.toLocaleString());
    setText("hosts-dropped", cum.workers ? (cum.hosts_expired || 0).toLocaleString() + " expired, "
      + (cum.hosts_evicted || 0).toLocaleString() + " evicted" : "");
    setText("hosts-restored", cum.restore_seconds === null || cum.restore_seconds === undefined ? ""
      : "restored in " + cum.restore_seconds.toFixed(1) + " s: " + cum.restored_hosts.toLocaleString()
      + " hosts from " + cum.restored_records.toLocaleString() + " records");
    drawChart(s.series);

    fillTable($("alerts").tBodies[0], s.latest_alerts.map((a) => [
      { text: fmtTime(a.scored_at) },
      { text: a.src_ip },
      { text: a.dst_ip + (a.dst_port !== null && a.dst_port !== undefined ? ":" + a.dst_port : "") },
      { text: a.score === null ? "" : a.score.toFixed(4), cls: "score" },
      { text: a.label === null || a.label === undefined ? "—" : String(a.label),
        cls: a.label && String(a.label).toUpperCase() === "BENIGN" ? "benign" : "" },
    ]));
    $("alerts-empty").hidden = s.latest_alerts.length > 0;
    const top = s.top_hosts.length ? s.top_hosts[0][1] : 1;
    fillTable($("hosts").tBodies[0], s.top_hosts.map(([host, count]) => {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = Math.max(2, (100 * count) / top) + "px";
      return [{ text: host }, { text: fmtInt(count) }, bar];
    }));
  }

  async function tick() {
    try {
      const response = await fetch("/api/state", { cache: "no-store" });
      if (response.ok) render(await response.json());
      else $("status").textContent = "dashboard error " + response.status;
    } catch (e) {
      const status = $("status");
      status.className = "status bad";
      status.textContent = "dashboard server unreachable";
    } finally {
      setTimeout(tick, 1000);
    }
  }
  tick();
})();
