//! `nas_host._native`: the host's side of the Python package. `Run` is one run designed from
//! Python (nas-search's `ExternalRun`: the MDP and masks, cache, trainer, reward plugin and store
//! stay the host's); `read_store` hands a run store's tables to pandas as columns. The Gymnasium
//! environment and the DataFrames are written in Python on top (`nas_host/__init__.py`).

use std::path::PathBuf;

use anyhow::Context;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use nas_config::{DeviceChoice, RunConfig};
use nas_core::arch::Layer;
use nas_core::record::EpisodeRecord;
use nas_search::external::{ExternalRun, Step};
use nas_search::options::SearchOptions;
use nas_store::Store;

/// Merges `overrides` (a JSON object of configuration keys, tables as nested objects) over
/// `base`, key by key, so `{"train": {"epochs": 1}}` changes one field of `[train]`.
fn merge(base: &mut toml::Table, overrides: toml::Table) {
    for (key, value) in overrides {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => merge(into, from),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The run configuration: the TOML file `config` (else the defaults) with `overrides_json` over it.
fn run_config(config: Option<PathBuf>, overrides_json: &str) -> anyhow::Result<RunConfig> {
    let mut table = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the configuration {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .map_err(|e| anyhow::anyhow!("the configuration {} is not valid TOML: {e}", path.display()))?
        }
        None => toml::Table::new(),
    };
    let overrides: serde_json::Value =
        serde_json::from_str(overrides_json).context("the keyword overrides are not JSON")?;
    // JSON → TOML through serde; a null (a keyword left at None) is dropped before.
    let overrides: toml::Table = toml::Table::try_from(drop_nulls(overrides))
        .map_err(|e| anyhow::anyhow!("the keyword overrides cannot be written as TOML: {e}"))?;
    merge(&mut table, overrides);
    let text = toml::to_string(&table).expect("a TOML table serializes");
    let where_ = config.map_or("the keyword arguments".to_string(), |p| {
        format!("{} with the keyword arguments", p.display())
    });
    toml::from_str::<RunConfig>(&text).map_err(|e| anyhow::anyhow!("the run configuration ({where_}) is invalid: {e}"))
}

fn drop_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

fn parse_device(device: &str) -> PyResult<DeviceChoice> {
    match device {
        "auto" => Ok(DeviceChoice::Auto),
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda),
        other => Err(PyValueError::new_err(format!(
            "device {other:?} is not one of \"auto\", \"cpu\", \"cuda\""
        ))),
    }
}

fn runtime_error(e: anyhow::Error) -> PyErr {
    PyRuntimeError::new_err(format!("{e:#}"))
}

/// One run designed from Python. Not thread-safe by design (one environment, one run); the GIL is
/// released while a child trains.
#[pyclass(module = "nas_host._native")]
struct Run {
    inner: std::sync::Mutex<ExternalRun>,
}

fn layer_dict<'py>(py: Python<'py>, layer: &Layer) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match *layer {
        Layer::Conv { filters, kernel } => {
            d.set_item("kind", "conv")?;
            d.set_item("filters", filters)?;
            d.set_item("kernel", kernel)?;
        }
        Layer::Pool { size, stride } => {
            d.set_item("kind", "pool")?;
            d.set_item("size", size)?;
            d.set_item("stride", stride)?;
        }
        Layer::Fc { units } => {
            d.set_item("kind", "fc")?;
            d.set_item("units", units)?;
        }
    }
    d.set_item("text", layer.to_string())?;
    Ok(d)
}

fn episode_dict<'py>(py: Python<'py>, run: i64, e: &EpisodeRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("run", run)?;
    d.set_item("episode", e.index)?;
    d.set_item("architecture", &e.architecture)?;
    d.set_item("reward", e.reward)?;
    d.set_item("accuracy", e.accuracy)?;
    d.set_item("params", e.params)?;
    d.set_item("depth", e.depth)?;
    d.set_item("cache_hit", e.cache_hit)?;
    d.set_item("failure", e.failure.clone())?;
    d.set_item("stopped", e.stopped)?;
    Ok(d)
}

impl Run {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, ExternalRun>> {
        self.inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("a previous step panicked; open a new environment"))
    }
}

#[pymethods]
impl Run {
    /// Starts a new run in the store. `config` is a TOML file or None; `overrides_json` a JSON
    /// object of configuration keys over it; `worker_exe` the nas-host binary for workers.
    #[new]
    #[pyo3(signature = (overrides_json, store, agent, config=None, data_dir=None, device="auto", no_cache=false, worker_exe=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        overrides_json: &str,
        store: PathBuf,
        agent: &str,
        config: Option<PathBuf>,
        data_dir: Option<PathBuf>,
        device: &str,
        no_cache: bool,
        worker_exe: Option<PathBuf>,
    ) -> PyResult<Run> {
        let config = run_config(config, overrides_json).map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
        let options = SearchOptions {
            data_dir,
            device: parse_device(device)?,
            no_cache,
            worker_exe,
            ..SearchOptions::new(store)
        };
        let run = py
            .detach(|| ExternalRun::start(config, agent, &options))
            .map_err(runtime_error)?;
        Ok(Run {
            inner: std::sync::Mutex::new(run),
        })
    }

    /// The run's id in the store.
    #[getter]
    fn run_id(&self) -> PyResult<i64> {
        Ok(self.lock()?.run())
    }

    /// The flat action list: dicts with the layer and `terminate`.
    #[getter]
    fn actions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let run = self.lock()?;
        let list = PyList::empty(py);
        for action in run.mdp().actions() {
            let d = layer_dict(py, &action.layer)?;
            d.set_item("terminate", action.terminate)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Length of the one-hot observation.
    #[getter]
    fn observation_len(&self) -> PyResult<usize> {
        Ok(self.lock()?.mdp().observation_len())
    }

    /// Sizes of the seven fields of the state tuple.
    #[getter]
    fn tuple_field_sizes(&self) -> PyResult<Vec<usize>> {
        Ok(self.lock()?.mdp().tuple_field_sizes().to_vec())
    }

    #[getter]
    fn episodes_done(&self) -> PyResult<usize> {
        Ok(self.lock()?.episodes_done())
    }

    /// The current state: (one-hot features, 7-field tuple, depth, image size).
    fn observe(&self) -> PyResult<(Vec<f32>, Vec<u32>, usize, u32)> {
        let run = self.lock()?;
        let state = run.state();
        Ok((
            run.mdp().observation(state),
            run.mdp().tuple(state).to_vec(),
            state.depth,
            state.image_size,
        ))
    }

    /// The exact mask over the action list.
    fn mask(&self) -> PyResult<Vec<bool>> {
        Ok(self.lock()?.mask())
    }

    /// Drops the network being designed and starts a new one.
    fn reset(&self) -> PyResult<()> {
        self.lock()?.reset();
        Ok(())
    }

    /// Takes an action. Returns None while the network goes on, else the committed episode as a
    /// dict. A masked action raises ValueError (nothing changes); a failing evaluation
    /// RuntimeError (the run is then marked failed; its committed episodes are kept).
    fn step<'py>(&self, py: Python<'py>, action: usize) -> PyResult<Option<Bound<'py, PyDict>>> {
        let mut run = self.lock()?;
        let id = run.run();
        if !run.mask().get(action).copied().unwrap_or(false) {
            // The host's message names the action, the rule it breaks and the allowed ones.
            return Err(PyValueError::new_err(format!("{:#}", run.step(action).unwrap_err())));
        }
        let run: &mut ExternalRun = &mut run;
        match py.detach(|| run.step(action)).map_err(runtime_error)? {
            Step::Continue => Ok(None),
            Step::Finished(record) => Ok(Some(episode_dict(py, id, &record)?)),
        }
    }

    /// Marks the run finished; later steps raise.
    fn close(&self) -> PyResult<()> {
        self.lock()?.close().map_err(runtime_error)
    }
}

/// Every run store table as columns (`{table: {column: [values]}}`): runs, episodes, evaluations
/// (each episode's evaluation) and curves (accuracy per epoch where an assessor watched).
#[pyfunction]
fn read_store<'py>(py: Python<'py>, url: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let tables = py.detach(|| read_tables(&url)).map_err(runtime_error)?;
    let out = PyDict::new(py);
    for (name, columns) in tables {
        let table = PyDict::new(py);
        for (column, values) in columns {
            table.set_item(column, values.into_pyobject(py)?)?;
        }
        out.set_item(name, table)?;
    }
    Ok(out)
}

/// A column's values.
enum Column {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<bool>),
}

impl<'py> IntoPyObject<'py> for Column {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Column::Int(v) => v.into_pyobject(py)?.into_any(),
            Column::Float(v) => v.into_pyobject(py)?.into_any(),
            Column::Text(v) => v.into_pyobject(py)?.into_any(),
            Column::Bool(v) => v.into_pyobject(py)?.into_any(),
        })
    }
}

type Table = Vec<(&'static str, Column)>;

fn read_tables(url: &std::path::Path) -> anyhow::Result<Vec<(&'static str, Table)>> {
    if let Some(file) = Store::sqlite_path(url)? {
        anyhow::ensure!(
            file.exists(),
            "there is no run store at {}: pass the file a search wrote (`--db`, default runs/nas.sqlite) or a postgres:// URL",
            file.display()
        );
    }
    let store = Store::open(url)?;
    let runs = store.runs()?;
    let mut run_cols = RunColumns::default();
    let mut ep = EpisodeColumns::default();
    let mut ev = EvaluationColumns::default();
    let (mut c_run, mut c_episode, mut c_eval, mut c_epoch, mut c_acc) = (vec![], vec![], vec![], vec![], vec![]);
    for r in &runs {
        run_cols.push(r);
        let episodes = store.episodes(r.id)?;
        let evaluations = store.episode_evaluations(r.id)?;
        for e in &episodes {
            ep.push(r.id, e);
            let Some(&id) = evaluations.get(&e.index) else {
                continue;
            };
            let outcome = store.evaluation(id)?.outcome;
            ev.run.push(Some(r.id));
            ev.episode.push(Some(e.index as i64));
            ev.evaluation.push(Some(id));
            ev.accuracy.push(Some(outcome.accuracy));
            ev.params.push(Some(outcome.params as i64));
            ev.seconds.push(Some(outcome.seconds));
            ev.failure.push(outcome.failure.clone());
            ev.transient.push(outcome.transient);
            ev.stopped.push(outcome.curve.stopped);
            ev.predicted.push(outcome.predicted);
            let cost = outcome.cost.as_ref();
            let latency = cost.and_then(|c| c.latency.as_ref());
            ev.mult_adds.push(cost.map(|c| c.mult_adds as i64));
            ev.activation_bytes.push(cost.map(|c| c.activation_bytes as i64));
            ev.latency_ms.push(latency.map(|l| l.median_ms));
            ev.latency_p90_ms.push(latency.map(|l| l.p90_ms));
            ev.latency_device.push(latency.map(|l| l.device.clone()));
            for (epoch, accuracy) in outcome.curve.accuracy.iter().enumerate() {
                c_run.push(Some(r.id));
                c_episode.push(Some(e.index as i64));
                c_eval.push(Some(id));
                c_epoch.push(Some(epoch as i64 + 1));
                c_acc.push(Some(*accuracy));
            }
        }
    }
    Ok(vec![
        ("runs", run_cols.table()),
        ("episodes", ep.table()),
        ("evaluations", ev.table()),
        (
            "curves",
            vec![
                ("run", Column::Int(c_run)),
                ("episode", Column::Int(c_episode)),
                ("evaluation", Column::Int(c_eval)),
                ("epoch", Column::Int(c_epoch)),
                ("accuracy", Column::Float(c_acc)),
            ],
        ),
    ])
}

#[derive(Default)]
struct RunColumns {
    id: Vec<Option<i64>>,
    created_at: Vec<Option<String>>,
    status: Vec<Option<String>>,
    error: Vec<Option<String>>,
    dataset: Vec<Option<String>>,
    evaluator: Vec<Option<String>>,
    seed: Vec<Option<i64>>,
    episodes_target: Vec<Option<i64>>,
    episodes_done: Vec<Option<i64>>,
    agent: Vec<Option<String>>,
    reward: Vec<Option<String>>,
    assessor: Vec<Option<String>>,
    device: Vec<Option<String>>,
    wall_seconds: Vec<Option<f64>>,
    config_toml: Vec<Option<String>>,
    table_sha256: Vec<Option<String>>,
    surrogate_quality: Vec<Option<String>>,
}

impl RunColumns {
    fn push(&mut self, r: &nas_store::RunRecord) {
        self.id.push(Some(r.id));
        self.created_at.push(Some(r.created_at.clone()));
        self.status.push(Some(r.status.clone()));
        self.error.push(r.error.clone());
        self.dataset.push(Some(r.dataset.clone()));
        self.evaluator.push(Some(r.evaluator.clone()));
        // Seeds are u64; beyond i64 they are shown as the same bits, as the store keeps them.
        self.seed.push(Some(r.seed as i64));
        self.episodes_target.push(Some(r.episodes_target as i64));
        self.episodes_done.push(Some(r.episodes_done as i64));
        self.agent.push(Some(r.agent.name.clone()));
        self.reward.push(Some(r.reward.name.clone()));
        self.assessor.push(r.assessor.as_ref().map(|a| a.name.clone()));
        self.device.push(r.device.clone());
        self.wall_seconds.push(Some(r.wall_seconds));
        self.config_toml.push(Some(r.config_toml.clone()));
        self.table_sha256.push(r.table.as_ref().map(|t| t.sha256.clone()));
        self.surrogate_quality
            .push(r.table.as_ref().and_then(|t| t.surrogate_quality.clone()));
    }

    fn table(self) -> Table {
        vec![
            ("run", Column::Int(self.id)),
            ("created_at", Column::Text(self.created_at)),
            ("status", Column::Text(self.status)),
            ("error", Column::Text(self.error)),
            ("dataset", Column::Text(self.dataset)),
            ("evaluator", Column::Text(self.evaluator)),
            ("seed", Column::Int(self.seed)),
            ("episodes_target", Column::Int(self.episodes_target)),
            ("episodes_done", Column::Int(self.episodes_done)),
            ("agent", Column::Text(self.agent)),
            ("reward", Column::Text(self.reward)),
            ("assessor", Column::Text(self.assessor)),
            ("device", Column::Text(self.device)),
            ("wall_seconds", Column::Float(self.wall_seconds)),
            ("config_toml", Column::Text(self.config_toml)),
            ("table_sha256", Column::Text(self.table_sha256)),
            ("surrogate_quality", Column::Text(self.surrogate_quality)),
        ]
    }
}

#[derive(Default)]
struct EpisodeColumns {
    run: Vec<Option<i64>>,
    episode: Vec<Option<i64>>,
    env: Vec<Option<i64>>,
    architecture: Vec<Option<String>>,
    reward: Vec<Option<f64>>,
    accuracy: Vec<Option<f64>>,
    params: Vec<Option<i64>>,
    depth: Vec<Option<i64>>,
    cache_hit: Vec<bool>,
    failure: Vec<Option<String>>,
    reported: Vec<Option<i64>>,
    stopped: Vec<bool>,
    metrics: Vec<Option<String>>,
}

impl EpisodeColumns {
    fn push(&mut self, run: i64, e: &EpisodeRecord) {
        self.run.push(Some(run));
        self.episode.push(Some(e.index as i64));
        self.env.push(Some(e.env as i64));
        self.architecture.push(Some(e.architecture.clone()));
        self.reward.push(Some(e.reward));
        self.accuracy.push(Some(e.accuracy));
        self.params.push(Some(e.params as i64));
        self.depth.push(Some(e.depth as i64));
        self.cache_hit.push(e.cache_hit);
        self.failure.push(e.failure.clone());
        self.reported.push(Some(e.reported as i64));
        self.stopped.push(e.stopped);
        self.metrics
            .push(Some(serde_json::Value::Object(e.metrics.clone()).to_string()));
    }

    fn table(self) -> Table {
        vec![
            ("run", Column::Int(self.run)),
            ("episode", Column::Int(self.episode)),
            ("env", Column::Int(self.env)),
            ("architecture", Column::Text(self.architecture)),
            ("reward", Column::Float(self.reward)),
            ("accuracy", Column::Float(self.accuracy)),
            ("params", Column::Int(self.params)),
            ("depth", Column::Int(self.depth)),
            ("cache_hit", Column::Bool(self.cache_hit)),
            ("failure", Column::Text(self.failure)),
            ("reported", Column::Int(self.reported)),
            ("stopped", Column::Bool(self.stopped)),
            ("metrics", Column::Text(self.metrics)),
        ]
    }
}

#[derive(Default)]
struct EvaluationColumns {
    run: Vec<Option<i64>>,
    episode: Vec<Option<i64>>,
    evaluation: Vec<Option<i64>>,
    accuracy: Vec<Option<f64>>,
    params: Vec<Option<i64>>,
    seconds: Vec<Option<f64>>,
    failure: Vec<Option<String>>,
    transient: Vec<bool>,
    stopped: Vec<bool>,
    predicted: Vec<bool>,
    mult_adds: Vec<Option<i64>>,
    activation_bytes: Vec<Option<i64>>,
    latency_ms: Vec<Option<f64>>,
    latency_p90_ms: Vec<Option<f64>>,
    latency_device: Vec<Option<String>>,
}

impl EvaluationColumns {
    fn table(self) -> Table {
        vec![
            ("run", Column::Int(self.run)),
            ("episode", Column::Int(self.episode)),
            ("evaluation", Column::Int(self.evaluation)),
            ("accuracy", Column::Float(self.accuracy)),
            ("params", Column::Int(self.params)),
            ("seconds", Column::Float(self.seconds)),
            ("failure", Column::Text(self.failure)),
            ("transient", Column::Bool(self.transient)),
            ("stopped", Column::Bool(self.stopped)),
            ("predicted", Column::Bool(self.predicted)),
            ("mult_adds", Column::Int(self.mult_adds)),
            ("activation_bytes", Column::Int(self.activation_bytes)),
            ("latency_ms", Column::Float(self.latency_ms)),
            ("latency_p90_ms", Column::Float(self.latency_p90_ms)),
            ("latency_device", Column::Text(self.latency_device)),
        ]
    }
}

/// Logs from the host go to stderr, filtered by `NAS_LOG` (warnings by default: a notebook wants
/// the host quiet unless something is wrong).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NAS_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    init_logging();
    m.add_class::<Run>()?;
    m.add_function(wrap_pyfunction!(read_store, m)?)?;
    m.add("TORCH_VERSION", "2.11.0")?;
    Ok(())
}
