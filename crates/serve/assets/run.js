// A run's page: summary, charts (reward and accuracy with moving average and best-so-far,
// accuracy vs parameters with the Pareto front, learning curves, the agent's metrics), the
// episodes as a table that sorts and filters, workers and queue while it runs, its
// configuration. While the run is live it asks for new episodes every second.
"use strict";

(function () {
  const main = document.getElementById("main");
  const id = Number(location.pathname.split("/").pop());
  const PAGE = 100;          // table rows per page
  const MA_WINDOW = 20;      // moving-average window (episodes)
  const POLL_MS = 1000;      // while the run is live

  const episodes = new Map(); // episode index -> row
  let sorted = [];            // episodes by index
  let nextSince = 0;          // the next `reported` position to ask for
  let run = null;
  let page = 0;

  const title = nas.el("h1", { id: "run-title" }, "Run " + id);
  const facts = nas.el("div", { class: "facts", id: "facts" });
  const liveBox = nas.el("div", { id: "live" });
  const charts = nas.el("div", { class: "charts" });
  const progressBox = nas.el("div", { class: "chart", id: "chart-progress" });
  const paretoBox = nas.el("div", { class: "chart", id: "chart-pareto" });
  const curvesBox = nas.el("div", { class: "chart", id: "chart-curves", hidden: "" });
  charts.append(progressBox, paretoBox, curvesBox);
  const metricsCharts = nas.el("div", { class: "charts", id: "metrics-charts" });
  const config = nas.el("pre", { id: "config" });

  // Filters of the episodes table.
  const fArch = nas.el("input", { id: "filter-arch", type: "search", placeholder: "e.g. conv(64", size: 22 });
  const fDepth = nas.el("select", { id: "filter-depth" }, nas.el("option", { value: "" }, "any"));
  const fMin = nas.el("input", { id: "filter-min", type: "number", step: "0.01", min: "0", max: "1" });
  const fMax = nas.el("input", { id: "filter-max", type: "number", step: "0.01", min: "0", max: "1" });
  const fStopped = nas.el("select", { id: "filter-stopped" },
    nas.el("option", { value: "" }, "any"), nas.el("option", { value: "yes" }, "stopped"), nas.el("option", { value: "no" }, "not stopped"));
  const count = nas.el("span", { id: "episode-count", class: "note" });
  const prev = nas.el("button", { id: "page-prev" }, "‹ Prev");
  const next = nas.el("button", { id: "page-next" }, "Next ›");
  for (const f of [fArch, fMin, fMax]) f.addEventListener("input", () => { page = 0; renderTable(); });
  for (const f of [fDepth, fStopped]) f.addEventListener("change", () => { page = 0; renderTable(); });
  prev.addEventListener("click", () => { if (page > 0) { page--; renderTable(); } });
  next.addEventListener("click", () => { page++; renderTable(); });

  const table = nas.sortableTable([
    { key: "episode", label: "Episode", num: true },
    { key: "architecture", label: "Architecture", cls: "arch", cell: (e) => nas.archLink(e.architecture, run && run.dataset) },
    { key: "depth", label: "Depth", num: true },
    { key: "params", label: "Params", num: true, cell: (e) => nas.fmt.num(e.params) },
    { key: "accuracy", label: "Accuracy", num: true, cell: (e) => nas.fmt.acc(e.accuracy) },
    { key: "reward", label: "Reward", num: true, cell: (e) => nas.fmt.acc(e.reward) },
    { key: "cache_hit", label: "Cached", cell: (e) => (e.cache_hit ? "yes" : "") },
    { key: "stopped", label: "Stopped", cell: (e) => (e.stopped ? "stopped" : "") },
    { key: "failure", label: "Failure", cell: (e) => nas.fmt.text(e.failure === null ? "" : e.failure) },
  ], { id: "episodes", sortKey: "episode", sortDir: 1, onSort: () => { page = 0; renderTable(); } });

  main.append(title, facts, liveBox,
    nas.el("h2", {}, "Search progress"), charts,
    nas.el("h2", {}, "Agent metrics"), metricsCharts,
    nas.el("h2", {}, "Episodes"),
    nas.el("div", { class: "toolbar" },
      nas.el("label", {}, "Architecture ", fArch), nas.el("label", {}, "Depth ", fDepth),
      nas.el("label", {}, "Accuracy from ", fMin), nas.el("label", {}, "to ", fMax),
      nas.el("label", {}, "Early stop ", fStopped), nas.downloads("/api/runs/" + id + "/episodes")),
    nas.el("div", { class: "toolbar" }, prev, next, count),
    table.table,
    nas.el("h2", {}, "Configuration"), config);

  function filtered() {
    const text = fArch.value.trim().toLowerCase();
    const depth = fDepth.value === "" ? null : Number(fDepth.value);
    const lo = fMin.value === "" ? -Infinity : Number(fMin.value);
    const hi = fMax.value === "" ? Infinity : Number(fMax.value);
    const stopped = fStopped.value;
    return sorted.filter((e) =>
      (!text || e.architecture.toLowerCase().includes(text)) &&
      (depth === null || e.depth === depth) &&
      e.accuracy >= lo && e.accuracy <= hi &&
      (stopped === "" || (stopped === "yes") === e.stopped));
  }

  function renderTable() {
    const rows = filtered();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(page, pages - 1);
    const shown = table.render(rows, { start: page * PAGE, size: PAGE });
    count.textContent = rows.length + " of " + sorted.length + " episodes" +
      (rows.length > PAGE ? " · page " + (page + 1) + " of " + pages : "") + (shown ? "" : " · none match");
    if (page === 0) prev.setAttribute("disabled", ""); else prev.removeAttribute("disabled");
    if (page >= pages - 1) next.setAttribute("disabled", ""); else next.removeAttribute("disabled");
  }

  function renderFacts() {
    nas.clear(facts);
    const fact = (label, value, key) => nas.el("div", { "data-fact": key }, nas.el("span", {}, label), nas.el("b", {}, value));
    const best = sorted.filter((e) => e.failure === null).reduce((b, e) => (b === null || e.accuracy > b.accuracy ? e : b), null);
    facts.append(
      fact("Status", nas.statusSpan(run.status), "status"),
      fact("Agent", run.agent, "agent"), fact("Reward", run.reward, "reward"),
      fact("Assessor", nas.fmt.text(run.assessor), "assessor"),
      fact("Dataset · evaluator", run.dataset + " · " + run.evaluator, "dataset"),
      fact("Progress", sorted.length + " / " + run.episodes_target + " episodes", "progress"),
      fact("Best accuracy", best ? nas.fmt.acc(best.accuracy) : "–", "best"),
      fact("Best architecture", best ? nas.archLink(best.architecture, run.dataset) : "–", "best-arch"),
      fact("Wall time", nas.fmt.secs(run.wall_seconds), "wall"),
      fact("Seed · device", run.seed + " · " + nas.fmt.text(run.device), "seed"),
      fact("Created", run.created_at, "created"));
    if (run.error) facts.appendChild(fact("Error", run.error, "error"));
    title.textContent = "Run " + id + " — " + run.agent + " + " + run.reward + " on " + run.dataset;
    document.title = "Run " + id + " · nas-host";
  }

  function renderProgress() {
    const x = sorted.map((e) => e.episode);
    const reward = sorted.map((e) => e.reward);
    const acc = sorted.map((e) => e.accuracy);
    let best = null;
    const bestSoFar = sorted.map((e) => { if (e.failure === null) best = best === null ? e.accuracy : Math.max(best, e.accuracy); return best; });
    const data = [x, reward, nas.movingAverage(reward, MA_WINDOW), acc, nas.movingAverage(acc, MA_WINDOW), bestSoFar];
    const u = window.nasCharts.progress;
    if (u) { u.setData(data); return; }
    nas.lineChart("progress", progressBox, "Reward and accuracy per episode", "episode", [
      { label: "reward", stroke: "rgba(220,38,38,0.35)", width: 1 },
      { label: "reward (avg " + MA_WINDOW + ")", stroke: "#dc2626", width: 2 },
      { label: "accuracy", stroke: "rgba(37,99,235,0.35)", width: 1 },
      { label: "accuracy (avg " + MA_WINDOW + ")", stroke: "#2563eb", width: 2 },
      { label: "best so far", stroke: "#16a34a", width: 2 },
    ], data);
  }

  // Accuracy against parameters (log scale), the Pareto front (no other child is both smaller
  // and more accurate) drawn as a step line through its points.
  function renderPareto() {
    const pts = sorted.filter((e) => e.failure === null && e.params > 0)
      .map((e) => [e.params, e.accuracy])
      .sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const front = new Array(pts.length).fill(null);
    let top = -Infinity;
    pts.forEach((p, i) => { if (p[1] > top) { top = p[1]; front[i] = p[1]; } });
    paretoBox.setAttribute("data-front", String(front.filter((v) => v !== null).length));
    const data = [xs, ys, front];
    const u = window.nasCharts.pareto;
    if (u) { u.setData(data); return; }
    nas.lineChart("pareto", paretoBox, "Accuracy vs parameters (Pareto front marked)", "parameters", [
      { label: "child", stroke: "#2563eb", paths: () => null, points: { show: true, size: 4, fill: "rgba(37,99,235,0.5)", width: 0 } },
      { label: "Pareto front", stroke: "#dc2626", width: 2, spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: true, size: 7, fill: "#dc2626" } },
    ], data, { scales: { x: { time: false, distr: 3 } } });
  }

  // Learning curves (accuracy after each epoch) of the children an assessor watched; those it
  // stopped early in red, ending in a cross.
  async function renderCurves() {
    if (!run.assessor) return;
    const curves = await nas.getJSON("/api/runs/" + id + "/curves");
    curvesBox.removeAttribute("hidden");
    nas.clear(curvesBox);
    curvesBox.appendChild(nas.el("h3", {}, "Learning curves (" + curves.length + " children, " + curves.filter((c) => c.stopped).length + " stopped early)"));
    curvesBox.setAttribute("data-curves", String(curves.length));
    curvesBox.setAttribute("data-stopped", String(curves.filter((c) => c.stopped).length));
    const w = nas.chartWidth(curvesBox), h = 260, pad = 36;
    const canvas = nas.el("canvas", { width: w, height: h });
    curvesBox.appendChild(canvas);
    const ctx = canvas.getContext("2d");
    const epochs = Math.max(2, ...curves.map((c) => c.accuracy.length));
    const X = (i) => pad + (w - pad - 10) * (i / (epochs - 1));
    const Y = (a) => h - pad + (pad + 10 - h) * a;
    ctx.strokeStyle = "#999"; ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
    ctx.beginPath(); ctx.moveTo(pad, 10); ctx.lineTo(pad, h - pad); ctx.lineTo(w - 10, h - pad); ctx.stroke();
    for (let i = 0; i < epochs; i++) ctx.fillText(String(i + 1), X(i) - 3, h - pad + 14);
    for (const a of [0, 0.5, 1]) ctx.fillText(a.toFixed(1), 6, Y(a) + 4);
    ctx.fillText("epoch", w / 2, h - 6);
    for (const stoppedPass of [false, true]) {
      for (const c of curves) {
        if (c.stopped !== stoppedPass) continue;
        ctx.strokeStyle = c.stopped ? "rgba(220,38,38,0.6)" : "rgba(37,99,235,0.35)";
        ctx.beginPath();
        c.accuracy.forEach((a, i) => (i ? ctx.lineTo(X(i), Y(a)) : ctx.moveTo(X(i), Y(a))));
        ctx.stroke();
        if (c.stopped && c.accuracy.length) {
          const x = X(c.accuracy.length - 1), y = Y(c.accuracy[c.accuracy.length - 1]);
          ctx.beginPath(); ctx.moveTo(x - 3, y - 3); ctx.lineTo(x + 3, y + 3); ctx.moveTo(x + 3, y - 3); ctx.lineTo(x - 3, y + 3); ctx.stroke();
        }
      }
    }
  }

  // One chart per numeric metric the agent reported (entropy, epsilon, losses…).
  function renderMetrics() {
    const keys = new Set();
    for (const e of sorted) for (const [k, v] of Object.entries(e.metrics || {})) if (typeof v === "number") keys.add(k);
    if (!keys.size) {
      if (!metricsCharts.firstChild) metricsCharts.appendChild(nas.el("p", { class: "note" }, "The agent reported no metrics."));
      return;
    }
    const x = sorted.map((e) => e.episode);
    let i = 0;
    for (const k of Array.from(keys).sort()) {
      const name = "metric:" + k;
      const ys = sorted.map((e) => (typeof (e.metrics || {})[k] === "number" ? e.metrics[k] : null));
      const u = window.nasCharts[name];
      if (u) { u.setData([x, ys]); continue; }
      if (metricsCharts.firstChild && metricsCharts.firstChild.tagName === "P") nas.clear(metricsCharts);
      const box = nas.el("div", { class: "chart", "data-metric": k });
      metricsCharts.appendChild(box);
      nas.lineChart(name, box, k, "episode", [{ label: k, stroke: nas.palette[i++ % nas.palette.length], width: 1.5, spanGaps: true }], [x, ys]);
    }
  }

  function renderDepths() {
    const depths = new Set(sorted.map((e) => e.depth));
    const have = new Set(Array.from(fDepth.options).map((o) => o.value));
    for (const d of Array.from(depths).sort((a, b) => a - b)) {
      if (!have.has(String(d))) fDepth.appendChild(nas.el("option", { value: String(d) }, String(d)));
    }
  }

  async function renderLive() {
    nas.clear(liveBox);
    if (run.status !== "running") return;
    const live = await nas.getJSON("/api/live");
    liveBox.append(nas.el("h2", {}, nas.el("span", { class: "live-dot" }), "Live: workers and queue"),
      nas.el("p", { id: "queue" }, live.queue.pending + " children queued, " + live.queue.running + " in training, " + live.workers.length + " workers seen in the last minute"));
    if (live.workers.length) {
      const t = nas.sortableTable([
        { key: "name", label: "Worker" }, { key: "device", label: "Device" },
        { key: "threads", label: "Threads", num: true }, { key: "trained", label: "Trained", num: true },
        { key: "training", label: "Training", cls: "arch", cell: (w) => (w.training === null ? "idle" : w.training) },
        { key: "seen_seconds_ago", label: "Seen", num: true, cell: (w) => nas.fmt.secs(w.seen_seconds_ago) + " ago" },
      ], { id: "workers-table" });
      t.render(live.workers);
      liveBox.appendChild(t.table);
    }
  }

  function addEpisodes(rows) {
    for (const r of rows) {
      episodes.set(r.episode, r);
      nextSince = Math.max(nextSince, r.reported + 1);
    }
    sorted = Array.from(episodes.values()).sort((a, b) => a.episode - b.episode);
  }

  function renderAll() {
    renderFacts();
    renderProgress();
    renderPareto();
    renderMetrics();
    renderDepths();
    renderTable();
    document.body.setAttribute("data-episodes", String(sorted.length));
  }

  let timer = null;
  async function poll() {
    try {
      const [r, rows] = await Promise.all([
        nas.getJSON("/api/runs/" + id),
        nas.getJSON("/api/runs/" + id + "/episodes?since=" + nextSince),
      ]);
      const wasRunning = run && run.status === "running";
      run = r;
      if (rows.length || wasRunning) {
        addEpisodes(rows);
        renderAll();
        if (rows.length) await renderCurves();
      } else {
        renderFacts();
      }
      await renderLive();
      if (run.status === "running") timer = setTimeout(poll, POLL_MS);
    } catch (e) {
      nas.showError(main, e);
      timer = setTimeout(poll, 5 * POLL_MS);
    }
  }

  async function start() {
    try {
      run = await nas.getJSON("/api/runs/" + id);
      addEpisodes(await nas.getJSON("/api/runs/" + id + "/episodes"));
      config.textContent = run.config_toml;
      renderAll();
      nas.loaded();
      await renderCurves();
      await renderLive();
      if (run.status === "running") timer = setTimeout(poll, POLL_MS);
    } catch (e) {
      nas.showError(main, e);
    }
  }
  start();
  window.addEventListener("beforeunload", () => clearTimeout(timer));
})();
