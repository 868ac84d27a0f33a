// The compare page: pick runs, overlay their best-so-far accuracy, and the comparison table.
"use strict";

(function () {
  const main = document.getElementById("main");
  const selected = new Set((nas.query("runs") || "").split(",").filter((s) => /^\d+$/.test(s)).map(Number));
  const picker = nas.el("div", { class: "picker", id: "picker" });
  const chartBox = nas.el("div", { class: "chart", id: "chart-compare" });
  const tableBox = nas.el("div", { id: "compare-table-box" });
  main.append(nas.el("h1", {}, "Compare runs"), nas.el("p", { class: "note" }, "Pick runs:"), picker,
    nas.el("h2", {}, "Best accuracy so far"), chartBox, nas.el("h2", {}, "Comparison"), tableBox);

  async function load() {
    const ids = Array.from(selected).sort((a, b) => a - b);
    history.replaceState(null, "", ids.length ? "/compare?runs=" + ids.join(",") : "/compare");
    nas.clear(tableBox);
    if (!ids.length) {
      nas.clear(chartBox).appendChild(nas.el("p", { class: "note" }, "No runs picked."));
      return;
    }
    const cmp = await nas.getJSON("/api/compare?runs=" + ids.join(","));
    const longest = Math.max(...cmp.curves.map((c) => c.best_so_far.length), 1);
    const x = Array.from({ length: longest }, (_, i) => i);
    const data = [x].concat(cmp.curves.map((c) => x.map((i) => (i < c.best_so_far.length ? c.best_so_far[i] : null))));
    nas.lineChart("compare", chartBox, "Best accuracy so far, by episode", "episode",
      cmp.curves.map((c, i) => ({ label: c.label, stroke: nas.palette[i % nas.palette.length], width: 2 })), data);
    const best = Math.max(...cmp.table.map((r) => (r.best_accuracy === null ? -1 : r.best_accuracy)));
    const t = nas.sortableTable([
      { key: "run", label: "Run", num: true, cell: (r) => nas.el("a", { href: "/run/" + r.run }, "run " + r.run) },
      { key: "status", label: "Status", cell: (r) => nas.statusSpan(r.status) },
      { key: "agent", label: "Agent" }, { key: "reward", label: "Reward" }, { key: "assessor", label: "Assessor" },
      { key: "dataset", label: "Dataset" }, { key: "seed", label: "Seed", num: true },
      { key: "episodes", label: "Episodes", num: true },
      { key: "best_accuracy", label: "Best accuracy", num: true,
        cell: (r) => (r.best_accuracy === best ? nas.el("b", {}, nas.fmt.acc(r.best_accuracy)) : nas.fmt.acc(r.best_accuracy)) },
      { key: "best_architecture", label: "Best architecture", cls: "arch",
        cell: (r) => (r.best_architecture === null ? "–" : nas.archLink(r.best_architecture, r.dataset)) },
      { key: "best_params", label: "Params", num: true, cell: (r) => nas.fmt.num(r.best_params) },
      { key: "mean_accuracy", label: "Mean accuracy", num: true, cell: (r) => nas.fmt.acc(r.mean_accuracy) },
      { key: "failed", label: "Failed", num: true },
      { key: "wall_seconds", label: "Wall time", num: true, cell: (r) => nas.fmt.secs(r.wall_seconds) },
    ], { id: "compare-table", sortKey: "best_accuracy", sortDir: -1 });
    t.render(cmp.table);
    tableBox.append(nas.downloads("/api/compare?runs=" + ids.join(",")), t.table);
    nas.loaded();
  }

  async function start() {
    const runs = await nas.getJSON("/api/runs");
    for (const r of runs) {
      const box = nas.el("input", { type: "checkbox", "data-run": r.id, checked: selected.has(r.id) ? "" : null });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(r.id); else selected.delete(r.id);
        load().catch((e) => nas.showError(main, e));
      });
      picker.appendChild(nas.el("label", {}, box, " run " + r.id + " (" + r.agent + ", " + r.dataset + ")"));
    }
    if (!runs.length) picker.appendChild(nas.el("p", { class: "note" }, "No runs in this store yet."));
    await load();
    if (!selected.size) nas.loaded();
  }
  start().catch((e) => nas.showError(main, e));
})();
