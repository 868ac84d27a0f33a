// The runs page: every run with its plugins, progress and best accuracy; the live workers.
"use strict";

(function () {
  const main = document.getElementById("main");
  const title = nas.el("h1", {}, "Runs");
  const workers = nas.el("div", { id: "workers" });
  const selected = new Set();
  const compareButton = nas.el("button", { id: "compare-selected", disabled: "" }, "Compare selected");
  compareButton.addEventListener("click", () => {
    location.href = "/compare?runs=" + Array.from(selected).sort((a, b) => a - b).join(",");
  });
  const progress = (r) => {
    const frac = r.episodes_target ? Math.min(1, r.episodes_done / r.episodes_target) : 0;
    return nas.el("span", {},
      nas.el("span", { class: "progress" }, nas.el("span", { style: "width:" + (100 * frac).toFixed(1) + "%" })),
      r.episodes_done + " / " + r.episodes_target);
  };
  const columns = [
    { key: "select", label: "", sortable: false, cell: (r) => {
      const box = nas.el("input", { type: "checkbox", "data-run": r.id, checked: selected.has(r.id) ? "" : null });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(r.id); else selected.delete(r.id);
        if (selected.size) compareButton.removeAttribute("disabled"); else compareButton.setAttribute("disabled", "");
      });
      return box;
    } },
    { key: "id", label: "Run", num: true, cell: (r) => nas.el("a", { href: "/run/" + r.id }, "run " + r.id) },
    { key: "status", label: "Status", cell: (r) => nas.statusSpan(r.status) },
    { key: "agent", label: "Agent" },
    { key: "reward", label: "Reward" },
    { key: "assessor", label: "Assessor" },
    { key: "dataset", label: "Dataset" },
    { key: "evaluator", label: "Evaluator" },
    { key: "episodes_done", label: "Progress", num: true, cell: progress },
    { key: "best_accuracy", label: "Best accuracy", num: true, cell: (r) => nas.fmt.acc(r.best_accuracy) },
    { key: "best_architecture", label: "Best architecture", cls: "arch",
      cell: (r) => (r.best_architecture === null ? "–" : nas.archLink(r.best_architecture, r.dataset)) },
    { key: "wall_seconds", label: "Wall time", num: true, cell: (r) => nas.fmt.secs(r.wall_seconds) },
    { key: "created_at", label: "Created" },
  ];
  const table = nas.sortableTable(columns, { id: "runs", sortKey: "id", sortDir: -1 });
  const count = nas.el("p", { id: "run-count", class: "note" });
  main.append(title, workers, nas.el("div", { class: "toolbar" }, compareButton, nas.downloads("/api/runs")), count, table.table);

  function renderWorkers(live) {
    nas.clear(workers);
    if (!live.workers.length) return;
    workers.appendChild(nas.el("h2", {}, "Live workers"));
    workers.appendChild(nas.el("p", {}, live.workers.length + " workers, " + live.queue.pending + " children queued, " + live.queue.running + " in training"));
    const t = nas.sortableTable([
      { key: "name", label: "Worker" }, { key: "device", label: "Device" },
      { key: "threads", label: "Threads", num: true }, { key: "trained", label: "Trained", num: true },
      { key: "training", label: "Training", cls: "arch", cell: (w) => w.training === null ? "idle" : w.training },
      { key: "seen_seconds_ago", label: "Seen", num: true, cell: (w) => nas.fmt.secs(w.seen_seconds_ago) + " ago" },
    ], { id: "workers-table" });
    t.render(live.workers);
    workers.appendChild(t.table);
  }

  let timer = null;
  async function refresh() {
    try {
      // The runs are drawn as soon as they arrive; the workers follow.
      const live = nas.getJSON("/api/live");
      const runs = await nas.getJSON("/api/runs");
      table.render(runs);
      count.textContent = runs.length === 0
        ? "No runs in this store yet: start one with `nas-host search`."
        : runs.length + " runs, " + runs.filter((r) => r.status === "running").length + " running";
      nas.loaded();
      renderWorkers(await live);
    } catch (e) {
      nas.showError(main, e);
    }
    timer = setTimeout(refresh, 2000);
  }
  refresh();
  window.addEventListener("beforeunload", () => clearTimeout(timer));
})();
