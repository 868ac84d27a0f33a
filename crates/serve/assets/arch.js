// An architecture's page: its layer table (`nas-host show-arch`), a diagram, every evaluation
// of it the runs recorded, and the command that exports it.
"use strict";

(function () {
  const main = document.getElementById("main");
  const text = nas.query("text") || "";
  let dataset = nas.query("dataset") || "";

  // POSIX shell single quotes: nothing inside is expanded.
  const shellQuote = (s) => "'" + String(s).replace(/'/g, "'\\''") + "'";

  async function start() {
    main.appendChild(nas.el("h1", { id: "arch-title", class: "arch" }, text || "(no architecture)"));
    if (!text) { main.appendChild(nas.el("p", { class: "note" }, "Open an architecture from a run's episodes.")); return; }
    const q = new URLSearchParams({ text: text });
    const evaluations = await nas.getJSON("/api/arch/evaluations?" + q.toString());
    if (!dataset && evaluations.length) dataset = evaluations[0].dataset;
    if (dataset) q.set("dataset", dataset);
    const layers = await nas.getJSON("/api/arch?" + q.toString());

    main.appendChild(nas.el("h2", {}, "Layers" + (layers.dataset ? " on " + layers.dataset : "")));
    if (layers.note) main.appendChild(nas.el("p", { class: "note" }, layers.note));
    if (layers.rows.length) {
      const shape = (s) => "[" + s.join(", ") + "]";
      const rows = [{ layer: "input", kind: "", output: layers.input, params: null, mult_adds: null }].concat(layers.rows);
      const t = nas.sortableTable([
        { key: "layer", label: "Layer", cls: "arch", sortable: false },
        { key: "kind", label: "Type", sortable: false },
        { key: "output", label: "Output shape", num: true, sortable: false, cell: (r) => shape(r.output) },
        { key: "params", label: "Param #", num: true, sortable: false, cell: (r) => (r.params === null ? "--" : nas.fmt.num(r.params)) },
        { key: "mult_adds", label: "Mult-adds", num: true, sortable: false, cell: (r) => (r.mult_adds === null ? "--" : nas.fmt.num(r.mult_adds)) },
      ], { id: "layers" });
      t.render(rows);
      main.appendChild(t.table);
      main.appendChild(nas.el("p", { id: "layer-totals" },
        "Total params: " + nas.fmt.num(layers.total_params) + " · mult-adds per example: " + nas.fmt.num(layers.total_mult_adds) +
        " · float32 size: " + (layers.total_params * 4 / 1e6).toFixed(2) + " MB · depth " + layers.depth));
      main.appendChild(nas.downloads("/api/arch?" + q.toString()));

      main.appendChild(nas.el("h2", {}, "Diagram"));
      const diagram = nas.el("div", { class: "diagram", id: "diagram" });
      diagram.appendChild(nas.el("div", { class: "layer kind-input" }, "input", nas.el("small", {}, shape(layers.input))));
      for (const r of layers.rows) {
        diagram.appendChild(nas.el("div", { class: "arrow" }, "↓"));
        diagram.appendChild(nas.el("div", { class: "layer kind-" + r.kind }, r.layer + "  (" + r.kind + ")",
          nas.el("small", {}, shape(r.output) + " · " + nas.fmt.num(r.params) + " params")));
      }
      main.appendChild(diagram);
    }

    main.appendChild(nas.el("h2", {}, "Evaluations (" + evaluations.length + ")"));
    const t = nas.sortableTable([
      { key: "run", label: "Run", num: true, cell: (r) => nas.el("a", { href: "/run/" + r.run }, "run " + r.run) },
      { key: "source", label: "Source" },
      { key: "index", label: "Episode / sample", num: true },
      { key: "dataset", label: "Dataset" },
      { key: "run_seed", label: "Run seed", num: true },
      { key: "train_seed", label: "Training seed", num: true, cell: (r) => (r.train_seed === null ? "run's" : String(r.train_seed)) },
      { key: "accuracy", label: "Accuracy", num: true, cell: (r) => nas.fmt.acc(r.accuracy) },
      { key: "params", label: "Params", num: true, cell: (r) => nas.fmt.num(r.params) },
      { key: "seconds", label: "Seconds", num: true, cell: (r) => nas.fmt.float(r.seconds) },
      { key: "cache_hit", label: "Cached", cell: (r) => (r.cache_hit ? "yes" : "") },
      { key: "stopped", label: "Stopped", cell: (r) => (r.stopped ? "stopped" : "") },
      { key: "failure", label: "Failure", cell: (r) => (r.failure === null ? "" : r.failure) },
    ], { id: "evaluations", sortKey: "accuracy", sortDir: -1 });
    t.render(evaluations);
    main.appendChild(nas.downloads("/api/arch/evaluations?" + new URLSearchParams({ text: text }).toString()));
    main.appendChild(t.table);

    main.appendChild(nas.el("h2", {}, "Export"));
    const best = evaluations.filter((e) => e.failure === null).sort((a, b) => b.accuracy - a.accuracy)[0];
    const run = best ? best.run : "RUN";
    main.appendChild(nas.el("p", {}, "Train it with the run's protocol and data, and write TorchScript, ONNX and safetensors + model.py:"));
    main.appendChild(nas.el("pre", { id: "export-command" }, "nas-host export " + run + " --arch " + shellQuote(text) + " --epochs 20"));
    nas.loaded();
  }
  start().catch((e) => nas.showError(main, e));
})();
