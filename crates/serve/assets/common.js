// nas-host serve: helpers shared by the pages. Data from the store is only ever put into the
// document as text (textContent, attribute values), never parsed as HTML: an architecture, a
// plugin's name or a metric may hold markup or script.
"use strict";

const nas = {};

// An element with attributes and children (strings become text nodes).
nas.el = function (tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
};

nas.clear = function (e) { while (e.firstChild) e.removeChild(e.firstChild); return e; };

nas.getJSON = async function (url) {
  const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()).trim());
  return r.json();
};

nas.fmt = {
  acc: (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(4)),
  num: (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US")),
  float: (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(3)),
  secs: function (s) {
    if (s === null || s === undefined) return "–";
    s = Number(s);
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(2) + " h";
  },
  text: (v) => (v === null || v === undefined ? "–" : String(v)),
};

// The page header with its navigation.
nas.header = function () {
  const h = nas.el("header", {},
    nas.el("span", { class: "brand" }, "nas-host"),
    nas.el("a", { href: "/" }, "Runs"),
    nas.el("a", { href: "/compare" }, "Compare"));
  document.body.insertBefore(h, document.body.firstChild);
};

nas.query = (name) => new URLSearchParams(location.search).get(name);

nas.archLink = function (text, dataset) {
  const q = new URLSearchParams({ text: text });
  if (dataset) q.set("dataset", dataset);
  return nas.el("a", { href: "/arch?" + q.toString() }, text);
};

nas.statusSpan = (s) => nas.el("span", { class: "status-" + String(s).replace(/[^a-z]/g, "") }, String(s));

// "CSV · JSON" download links of an API table.
nas.downloads = function (url) {
  const sep = url.includes("?") ? "&" : "?";
  return nas.el("span", { class: "downloads" },
    nas.el("a", { href: url + sep + "format=csv", download: "" }, "Download CSV"),
    nas.el("a", { href: url + sep + "format=json", download: "" }, "Download JSON"));
};

// Compares two cell values for sorting: numbers numerically, nulls last, text by locale.
nas.compareValues = function (a, b) {
  const an = a === null || a === undefined, bn = b === null || b === undefined;
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return (a ? 1 : 0) - (b ? 1 : 0);
  return String(a).localeCompare(String(b));
};

// A sortable table. columns: [{key, label, num, cell(row) -> node|string, value(row)}].
// Returns {table, render(rows)}; a click on a header sorts by it (again: the other way).
nas.sortableTable = function (columns, opts) {
  opts = opts || {};
  const state = { key: opts.sortKey || null, dir: opts.sortDir || 1, rows: [] };
  const thead = nas.el("thead");
  const tbody = nas.el("tbody");
  const table = nas.el("table", { class: "data", id: opts.id || null }, thead, tbody);
  const headRow = nas.el("tr");
  const ths = {};
  for (const c of columns) {
    const th = nas.el("th", { class: (c.num ? "num " : "") + (c.sortable === false ? "" : "sortable"), "data-key": c.key }, c.label);
    if (c.sortable !== false) {
      th.addEventListener("click", () => {
        if (state.key === c.key) state.dir = -state.dir; else { state.key = c.key; state.dir = c.num ? -1 : 1; }
        api.render(state.rows);
        if (opts.onSort) opts.onSort(state);
      });
    }
    ths[c.key] = th;
    headRow.appendChild(th);
  }
  thead.appendChild(headRow);
  const valueOf = (c, r) => (c.value ? c.value(r) : r[c.key]);
  const api = {
    table, state,
    sorted(rows) {
      if (!state.key) return rows.slice();
      const c = columns.find((c) => c.key === state.key);
      return rows.slice().sort((a, b) => state.dir * nas.compareValues(valueOf(c, a), valueOf(c, b)));
    },
    render(rows, page) {
      state.rows = rows;
      for (const [k, th] of Object.entries(ths)) {
        th.classList.toggle("sorted-asc", k === state.key && state.dir === 1);
        th.classList.toggle("sorted-desc", k === state.key && state.dir === -1);
      }
      let shown = api.sorted(rows);
      if (page) shown = shown.slice(page.start, page.start + page.size);
      nas.clear(tbody);
      const frag = document.createDocumentFragment();
      for (const r of shown) {
        const tr = nas.el("tr");
        for (const c of columns) {
          const v = c.cell ? c.cell(r) : nas.fmt.text(r[c.key]);
          tr.appendChild(nas.el("td", { class: (c.num ? "num " : "") + (c.cls || "") }, v));
        }
        frag.appendChild(tr);
      }
      tbody.appendChild(frag);
      return shown.length;
    },
  };
  return api;
};

// Charts drawn on this page, by name (uPlot instances; the browser tests read their data).
window.nasCharts = window.nasCharts || {};

nas.chartWidth = (box) => Math.max(300, box.clientWidth - 12);

// A line chart of series over a shared x: uPlot, which stays fast at 10,000 points per series.
nas.lineChart = function (name, box, title, xLabel, series, data, extra) {
  nas.clear(box);
  box.appendChild(nas.el("h3", {}, title));
  const opts = Object.assign({
    width: nas.chartWidth(box),
    height: 260,
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, {}],
    legend: { live: true },
    series: [{ label: xLabel }].concat(series),
  }, extra || {});
  if (window.nasCharts[name]) window.nasCharts[name].destroy();
  const u = new uPlot(opts, data, box);
  window.nasCharts[name] = u;
  box.setAttribute("data-chart", name);
  return u;
};

// A trailing moving average over `window` values (fewer at the start).
nas.movingAverage = function (values, window) {
  const out = new Array(values.length);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= window) sum -= values[i - window];
    out[i] = sum / Math.min(i + 1, window);
  }
  return out;
};

nas.palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d", "#7c3aed", "#475569"];

nas.showError = function (where, err) {
  console.error(err);
  where.appendChild(nas.el("p", { class: "error" }, String(err && err.message ? err.message : err)));
};

document.addEventListener("DOMContentLoaded", nas.header);

// Marks the page loaded once what it drew has been painted: `data-loaded` on the body, and
// `window.nasLoadedMs` (milliseconds since navigation started) for the benchmark.
nas.loaded = function () {
  if (document.body.hasAttribute("data-loaded")) return;
  requestAnimationFrame(() => setTimeout(() => {
    window.nasLoadedMs = performance.now();
    document.body.setAttribute("data-loaded", "1");
  }, 0));
};
