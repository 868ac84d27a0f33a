//! The run store: one SQLite database per workspace (default `runs/nas.sqlite`), or a PostgreSQL
//! database (`postgres.rs`) when workers on several machines share it.
//!
//! Schema (readable with the `sqlite3` shell or pandas):
//! - `runs`: one row per search run — its configuration (TOML), plugins (name, version, path,
//!   sha256), dataset, evaluator, seed, status (`running`, `finished`, `failed`), progress and times.
//! - `evaluations`: the architecture cache, shared by all runs — one row per result for an
//!   (architecture, dataset, evaluator, training protocol, training seed) key. Rows are immutable:
//!   a new result (a retry after a transient failure, a `--no-cache` retrain) is a new row, and
//!   the cache serves the newest one that is not transient.
//!   Its cost (`[cost]`): `mult_adds`, `activation_bytes`, `latency_ms` (median) and
//!   `latency_p90_ms`, with the whole measurement (device, batch, runs, throughput) as JSON in `cost`.
//! - `episodes`: one row per finished episode of a run — architecture, reward, accuracy, params,
//!   depth, whether the evaluation was a cache hit, the agent's metrics (JSON).
//! - `checkpoints`: the latest agent state (`save()` bytes) of each run and the episode it follows.
//! - `eval_samples`: architectures sampled from a run's frozen final policy by `nas-host eval`.
//!
//! The schema is versioned (`PRAGMA user_version`): opening a store applies the migrations it
//! lacks, in order, so a store written by an older nas-host keeps its runs and resumes them.
//!
//! An evaluation is written as soon as it finishes; the episode, its link to the evaluation and the
//! agent checkpoint are then written in one transaction, so a run killed at any point resumes from
//! its last committed episode and never trains a finished architecture again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use nas_core::record::{EpisodeRecord, EvalSampleRow, Outcome};

/// Where an evaluation is stored: a stopped child under a key of the episode that stopped it, so
/// that a run which would train the architecture fully never finds it in the cache, while the
/// episode itself (redone after a kill) still does.
pub(crate) fn stored_key<'a>(
    cache_key: &'a str,
    outcome: &Outcome,
    origin: Option<(i64, usize)>,
) -> std::borrow::Cow<'a, str> {
    match (outcome.curve.stopped, origin) {
        (true, Some((run, episode))) => stopped_key(cache_key, run, episode).into(),
        (true, None) => format!("{cache_key}#stopped").into(),
        (false, _) => cache_key.into(),
    }
}

/// The key of a child that episode `episode` of `run` stopped early.
pub(crate) fn stopped_key(cache_key: &str, run: i64, episode: usize) -> String {
    format!("{cache_key}#stopped:{run}:{episode}")
}

/// A learning curve as stored (JSON), `None` when none was measured.
pub(crate) fn curve_text(outcome: &Outcome) -> Option<String> {
    outcome
        .curve
        .is_measured()
        .then(|| serde_json::to_string(&outcome.curve.accuracy).expect("numbers serialize"))
}

/// The learning curve stored as `text` (as [`curve_text`] wrote it).
pub(crate) fn curve_from(text: Option<String>, stopped: bool, measure_seconds: f64) -> nas_core::record::Curve {
    nas_core::record::Curve {
        accuracy: text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
        stopped,
        measure_seconds,
    }
}

/// A child's cost as stored (JSON, the whole [`Cost`](nas_core::record::Cost)), `None` when
/// unmeasured. Its main figures are also columns of their own, for SQL readers.
pub(crate) fn cost_text(outcome: &Outcome) -> Option<String> {
    outcome
        .cost
        .as_ref()
        .map(|c| serde_json::to_string(c).expect("costs serialize"))
}

/// The cost stored as `text` (as [`cost_text`] wrote it).
pub(crate) fn cost_from(text: Option<String>) -> Option<nas_core::record::Cost> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// The cost columns beside the JSON: multiply-adds, activation bytes, median and p90 latency.
pub(crate) fn cost_columns(outcome: &Outcome) -> (Option<i64>, Option<i64>, Option<f64>, Option<f64>) {
    match &outcome.cost {
        Some(c) => (
            Some(c.mult_adds as i64),
            Some(c.activation_bytes as i64),
            c.latency.as_ref().map(|l| l.median_ms),
            c.latency.as_ref().map(|l| l.p90_ms),
        ),
        None => (None, None, None, None),
    }
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = sqlite::MIGRATIONS.len();

/// Episode index → the id of its evaluation.
pub type EpisodeEvaluations = std::collections::BTreeMap<usize, i64>;

/// A plugin as recorded with a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub name: String,
    pub version: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: i64,
    pub created_at: String,
    pub status: String,
    pub error: Option<String>,
    pub config_toml: String,
    pub dataset: String,
    pub evaluator: String,
    pub seed: u64,
    pub episodes_target: usize,
    pub episodes_done: usize,
    pub agent: PluginRecord,
    pub reward: PluginRecord,
    /// The run's assessor, if one watched its children.
    #[serde(default)]
    pub assessor: Option<PluginRecord>,
    pub wall_seconds: f64,
    /// The device kind children were trained on (`cpu`, `cuda`); `None` for runs stored before
    /// it was recorded.
    pub device: Option<String>,
    /// The run trains every architecture, even those in the cache.
    pub no_cache: bool,
    /// The benchmark table a table run answers from; `None` for other evaluators and for runs
    /// stored before it was recorded (schema version 16).
    #[serde(default)]
    pub table: Option<TableRecord>,
}

/// Which benchmark table a run answers its children from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRecord {
    /// SHA-256 of the table file's bytes as the run loaded them.
    pub sha256: String,
    /// The surrogate's held-out quality as measured when the run loaded the table ("surrogate
    /// held-out Kendall τ …"); `None` when the table was too small for a surrogate.
    pub surrogate_quality: Option<String>,
}

/// A design of an `async` run whose child is still being trained: the agent's checkpoint holds
/// its half-finished episode, so a resumed run waits for this child instead of designing again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlightDesign {
    pub episode: usize,
    pub env: u32,
    pub architecture: String,
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

/// What a new run records about itself.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    pub config_toml: &'a str,
    pub dataset: &'a str,
    pub evaluator: &'a str,
    pub seed: u64,
    pub episodes_target: usize,
    pub agent: &'a PluginRecord,
    pub reward: &'a PluginRecord,
    pub assessor: Option<&'a PluginRecord>,
    pub device: &'a str,
    pub no_cache: bool,
    /// The benchmark table, for a table run.
    pub table: Option<&'a TableRecord>,
}

/// A finished evaluation for the architecture cache.
#[derive(Debug, Clone, Copy)]
pub struct NewEvaluation<'a> {
    pub cache_key: &'a str,
    pub architecture: &'a str,
    pub dataset: &'a str,
    pub evaluator: &'a str,
    /// The training protocol (or synthetic settings) as JSON.
    pub protocol_json: &'a str,
    pub depth: usize,
    pub outcome: &'a Outcome,
    /// The (run, episode) whose design it evaluates, so a redone episode finds it.
    pub origin: Option<(i64, usize)>,
}

/// A cached evaluation and its row id.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEvaluation {
    pub id: i64,
    pub outcome: Outcome,
}

/// What the rest of the host asks of a run store: runs, the architecture cache, episodes with
/// checkpoints, and `eval` samples. SQLite implements it ([`SqliteStore`]); another backend is a
/// second implementation of this trait, not a second copy of its callers.
pub trait RunStore: JobQueue + Send {
    /// The store's schema version.
    fn schema_version(&self) -> anyhow::Result<usize>;
    fn create_run(&self, run: &NewRun<'_>) -> anyhow::Result<i64>;
    fn run(&self, id: i64) -> anyhow::Result<RunRecord>;
    fn runs(&self) -> anyhow::Result<Vec<RunRecord>>;
    fn set_status(&self, run: i64, status: &str, error: Option<&str>) -> anyhow::Result<()>;
    fn set_episodes_target(&self, run: i64, episodes: usize) -> anyhow::Result<()>;
    /// Records what a resumed run now uses (after the user accepted a change with `--force`).
    fn set_run_environment(&self, run: i64, device: &str, no_cache: bool) -> anyhow::Result<()>;
    /// Records the table a resumed table run now answers from (after the user accepted a changed
    /// table with `--force`).
    fn set_run_table(&self, run: i64, table: &TableRecord) -> anyhow::Result<()>;
    fn add_wall_seconds(&self, run: i64, seconds: f64) -> anyhow::Result<()>;
    /// Looks an architecture up in the cache: its newest evaluation that is not a transient
    /// failure (those are not served: the architecture is trained again) nor a stopped child.
    fn cached_evaluation(&self, cache_key: &str) -> anyhow::Result<Option<CachedEvaluation>>;
    /// The evaluation stored for episode `episode` of `run` under `cache_key`, if that episode
    /// evaluated it before it was committed (a run killed in between). Served even when
    /// transient, so the redone episode is recorded as the first attempt would have been.
    fn evaluation_of_episode(
        &self,
        cache_key: &str,
        run: i64,
        episode: usize,
    ) -> anyhow::Result<Option<CachedEvaluation>>;
    /// The evaluation with row id `id`.
    fn evaluation(&self, id: i64) -> anyhow::Result<CachedEvaluation>;
    /// Records a finished evaluation as a new row and returns its id. Evaluations are immutable:
    /// an older one with the same key keeps its id and outcome (episodes point at it).
    fn insert_evaluation(&self, evaluation: &NewEvaluation<'_>) -> anyhow::Result<i64>;
    /// Writes finished episodes (each with its evaluation) and the agent checkpoint taken after
    /// them, atomically; `designed` is the number of episodes the agent has designed by then (the
    /// next episode index). Their in-flight designs, if any, go with it.
    fn commit_episodes(
        &mut self,
        run: i64,
        episodes: &[(EpisodeRecord, i64)],
        agent_state: &[u8],
        designed: usize,
    ) -> anyhow::Result<()>;
    /// Records a design whose child is now in flight and the agent checkpoint taken after it,
    /// atomically (the `async` schedule).
    fn commit_design(
        &mut self,
        run: i64,
        design: &InFlightDesign,
        agent_state: &[u8],
        designed: usize,
    ) -> anyhow::Result<()>;
    /// The designs of `run` whose episodes are not committed yet, by episode.
    fn in_flight(&self, run: i64) -> anyhow::Result<Vec<InFlightDesign>>;
    /// The latest checkpoint: (episodes designed, agent state). Without designs in flight, every
    /// designed episode is committed.
    fn checkpoint(&self, run: i64) -> anyhow::Result<Option<(usize, Vec<u8>)>>;
    fn episodes(&self, run: i64) -> anyhow::Result<Vec<EpisodeRecord>>;
    fn replace_eval_samples(&mut self, run: i64, samples: &[EvalSampleRow]) -> anyhow::Result<()>;
    /// The stored `eval` samples of a run.
    fn eval_samples(&self, run: i64) -> anyhow::Result<Vec<EvalSampleRow>>;
    /// The evaluation behind each committed episode of a run, keyed by episode index: an `async`
    /// run commits episodes as their children finish, so the indices can have gaps.
    fn episode_evaluations(&self, run: i64) -> anyhow::Result<EpisodeEvaluations>;
    /// Keeps the trained weights (safetensors) of an evaluation for `run` (replacing what `run`
    /// kept for it before; another run's copy stays that run's).
    fn keep_weights(&self, run: i64, evaluation_id: i64, safetensors: &[u8]) -> anyhow::Result<()>;
    /// Forgets the weights kept for `run` except those of `keep` (other runs' stay).
    fn prune_weights(&self, run: i64, keep: &[i64]) -> anyhow::Result<()>;
    /// The weights `run` kept for an evaluation, if any.
    fn kept_weights(&self, run: i64, evaluation_id: i64) -> anyhow::Result<Option<Vec<u8>>>;
}

pub mod postgres;
pub mod queue;
mod sqlite;

pub use postgres::redact;
pub use queue::{Awaited, ClaimedJob, CurveToJudge, JobQueue, JobState, NewJob, OwnerGone, QueueCounts, WorkerRow};
pub use sqlite::SqliteStore;

/// What `--db` names: a SQLite file or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (":memory:" for a throwaway store).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

/// What `--db` accepts, for the error on anything else.
const ACCEPTED: &str = "a path or a sqlite: URL (runs/nas.sqlite, sqlite:runs/nas.sqlite, sqlite:///abs/path.sqlite) \
    names a SQLite store, a postgres:// or postgresql:// URL (postgres://USER@HOST/DB) a PostgreSQL one";

impl Location {
    /// Reads `db`: a PostgreSQL URL, a `sqlite:` URL (`sqlite:relative/path`, `sqlite:/abs/path`,
    /// `sqlite:///abs/path`, `sqlite::memory:`) or a plain path. Any other `scheme://` URL, and a
    /// libpq connection string (`host=… dbname=…`), is an error rather than a file named after it
    /// (with the password in its name); the error never shows a password.
    pub fn parse(db: &Path) -> anyhow::Result<Location> {
        let Some(text) = db.to_str() else {
            // Not UTF-8: only a path can be.
            return Ok(Location::Sqlite(db.to_path_buf()));
        };
        if postgres::is_postgres_url(text) {
            return Ok(Location::Postgres(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let path = match rest.strip_prefix("//") {
                Some(absolute) if absolute.starts_with('/') => absolute,
                Some(_) => anyhow::bail!(
                    "{} is not a store location: a sqlite:// URL takes an absolute path (sqlite:///abs/path.sqlite); {ACCEPTED}",
                    redact(text)
                ),
                None => rest,
            };
            anyhow::ensure!(!path.is_empty(), "{text} names no file; {ACCEPTED}");
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if let Some(scheme) = url_scheme(text) {
            anyhow::bail!(
                "{} is not a store location: `{scheme}://` is neither sqlite: nor postgres://; {ACCEPTED}",
                redact(text)
            );
        }
        if let Some(setting) = text.split_whitespace().find_map(conninfo_key) {
            anyhow::bail!(
                "{} is not a store location: it looks like a libpq connection string (`{setting}=…`), which --db does not take; \
                 write it as a URL (postgres://USER:PASSWORD@HOST:PORT/DB, or postgresql:///DB?host=/socket/dir), or name a file \
                 with a `=` in its name as sqlite:PATH; {ACCEPTED}",
                redact(text)
            );
        }
        Ok(Location::Sqlite(db.to_path_buf()))
    }
}

/// The scheme of `text` when it starts like a URL (`scheme://`).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some(scheme)
}

/// The key of a `key=value` libpq setting.
fn conninfo_key(word: &str) -> Option<&str> {
    let (key, _) = word.split_once('=')?;
    let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(key)
}

/// An open run store, whatever its backend; derefs to [`RunStore`].
pub struct Store(Box<dyn RunStore>);

impl Store {
    /// Opens the store `db` names ([`Location::parse`]) and brings its schema up to date: a
    /// PostgreSQL database (`postgres://USER@HOST/DB`), else a SQLite file (a path or a `sqlite:`
    /// URL), created if needed (":memory:" gives a throwaway store).
    pub fn open(db: &Path) -> anyhow::Result<Store> {
        match Location::parse(db)? {
            Location::Postgres(url) => Ok(Store(Box::new(postgres::PgStore::connect(&url)?))),
            Location::Sqlite(path) => Ok(Store(Box::new(SqliteStore::open(&path)?))),
        }
    }

    /// How to name the store `db` in messages: without its password.
    pub fn describe(db: &Path) -> String {
        redact(&db.display().to_string())
    }

    /// Whether `db` is a PostgreSQL store.
    pub fn is_postgres(db: &Path) -> bool {
        db.to_str().is_some_and(postgres::is_postgres_url)
    }

    /// The file of a SQLite store (`None` for PostgreSQL): what a `sqlite:` URL names.
    pub fn sqlite_path(db: &Path) -> anyhow::Result<Option<PathBuf>> {
        Ok(match Location::parse(db)? {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        })
    }
}

impl std::ops::Deref for Store {
    type Target = dyn RunStore;
    fn deref(&self) -> &(dyn RunStore + 'static) {
        &*self.0
    }
}

impl std::ops::DerefMut for Store {
    fn deref_mut(&mut self) -> &mut (dyn RunStore + 'static) {
        &mut *self.0
    }
}
