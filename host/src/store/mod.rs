//! The run store: one SQLite database per workspace (default `runs/nas.sqlite`), or a PostgreSQL
//! database (`postgres.rs`) when workers on several machines share it.
//!
//! Schema (readable with the `sqlite3` shell or pandas):
//! - `runs`: one row per search run — its configuration (TOML), plugins (name, version, path,
//!   sha256), dataset, evaluator, seed, status (`running`, `finished`, `failed`), progress and times.
//! - `evaluations`: the architecture cache — one row per (architecture, dataset, evaluator, training
//!   protocol, training seed), shared by all runs.
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

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::evaluator::Outcome;

/// The schema, as ordered migrations: migration i takes a store from `PRAGMA user_version` i to
/// i + 1. A store written before versioning existed has version 0 and the tables of migration 0,
/// whose `IF NOT EXISTS` makes it a no-op there. Append new migrations; never edit old ones.
const MIGRATIONS: &[&str] = &[
    // 1: the first release's schema.
    r#"
CREATE TABLE IF NOT EXISTS runs (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT NOT NULL DEFAULT (datetime('now')),
    finished_at     TEXT,
    status          TEXT NOT NULL,            -- running | finished | failed
    error           TEXT,
    config_toml     TEXT NOT NULL,
    dataset         TEXT NOT NULL,
    evaluator       TEXT NOT NULL,
    seed            INTEGER NOT NULL,
    episodes_target INTEGER NOT NULL,
    agent_name      TEXT NOT NULL,
    agent_version   TEXT NOT NULL,
    agent_path      TEXT NOT NULL,
    agent_sha256    TEXT NOT NULL,
    reward_name     TEXT NOT NULL,
    reward_version  TEXT NOT NULL,
    reward_path     TEXT NOT NULL,
    reward_sha256   TEXT NOT NULL,
    wall_seconds    REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS evaluations (
    id           INTEGER PRIMARY KEY,
    cache_key    TEXT NOT NULL UNIQUE,
    architecture TEXT NOT NULL,
    dataset      TEXT NOT NULL,
    evaluator    TEXT NOT NULL,
    protocol     TEXT NOT NULL,               -- training protocol as JSON
    accuracy     REAL NOT NULL,
    params       INTEGER NOT NULL,
    depth        INTEGER NOT NULL,
    seconds      REAL NOT NULL,
    failure      TEXT,
    created_at   TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    idx           INTEGER NOT NULL,           -- 0-based episode index
    env           INTEGER NOT NULL,
    architecture  TEXT NOT NULL,
    reward        REAL NOT NULL,
    accuracy      REAL NOT NULL,
    params        INTEGER NOT NULL,
    depth         INTEGER NOT NULL,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),
    cache_hit     INTEGER NOT NULL,
    metrics       TEXT NOT NULL,              -- agent metrics as a JSON object
    created_at    TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id      INTEGER PRIMARY KEY REFERENCES runs(id),
    episodes    INTEGER NOT NULL,             -- episodes finished when the state was saved
    agent_state BLOB NOT NULL,
    saved_at    TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS eval_samples (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    sample        INTEGER NOT NULL,
    architecture  TEXT NOT NULL,
    accuracy      REAL NOT NULL,
    params        INTEGER NOT NULL,
    depth         INTEGER NOT NULL,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),
    cache_hit     INTEGER NOT NULL,
    PRIMARY KEY (run_id, sample)
);
"#,
    // 2: what a resumed run must match (device, cache use); transient failures are not served from
    // the cache; an evaluation remembers the episode that trained it; failures on episodes; the
    // training seed of each `eval` sample.
    r#"
ALTER TABLE runs ADD COLUMN device TEXT;
ALTER TABLE runs ADD COLUMN no_cache INTEGER NOT NULL DEFAULT 0;
ALTER TABLE evaluations ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;
ALTER TABLE evaluations ADD COLUMN origin_run INTEGER;
ALTER TABLE evaluations ADD COLUMN origin_episode INTEGER;
CREATE INDEX IF NOT EXISTS evaluations_origin ON evaluations (origin_run, origin_episode);
ALTER TABLE episodes ADD COLUMN failure TEXT;
ALTER TABLE eval_samples ADD COLUMN train_seed INTEGER;
ALTER TABLE eval_samples ADD COLUMN failure TEXT;
"#,
    // 3: the trained weights of a run's best children (`keep_weights`), for `export`.
    r#"
CREATE TABLE IF NOT EXISTS kept_weights (
    evaluation_id INTEGER PRIMARY KEY REFERENCES evaluations(id),
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    safetensors   BLOB NOT NULL
);
"#,
    // 4: parallel search — the queue of children for workers (with leases), the workers seen, the
    // designs in flight of an `async` run, and the order in which rewards were reported.
    r#"
ALTER TABLE episodes ADD COLUMN reported INTEGER;
CREATE TABLE IF NOT EXISTS in_flight (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    idx          INTEGER NOT NULL,            -- the episode this design belongs to
    env          INTEGER NOT NULL,
    architecture TEXT NOT NULL,
    metrics      TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS queue (
    id             INTEGER PRIMARY KEY,
    cache_key      TEXT NOT NULL UNIQUE,      -- one training per key, however many wait on it
    architecture   TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    evaluator      TEXT NOT NULL,
    protocol       TEXT NOT NULL,
    device         TEXT NOT NULL,             -- cpu | cuda | none (any worker)
    origin_run     INTEGER,
    origin_episode INTEGER,
    keep_weights   INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL,             -- pending | running | done
    owner          TEXT,                      -- the worker holding the lease
    attempt        INTEGER NOT NULL DEFAULT 0,
    lease_until    REAL,                      -- unix seconds
    evaluation_id  INTEGER REFERENCES evaluations(id),
    weights        BLOB,                      -- safetensors, until the search takes them
    last_error     TEXT,
    queued_at      REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL
);
CREATE INDEX IF NOT EXISTS queue_status ON queue (status, id);
CREATE TABLE IF NOT EXISTS workers (
    name       TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    device     TEXT NOT NULL,
    threads    INTEGER NOT NULL,
    started_at REAL NOT NULL,
    seen_at    REAL NOT NULL,                 -- unix seconds of its last sign of life
    job_id     INTEGER,                       -- the child it trains now
    trained    INTEGER NOT NULL DEFAULT 0,
    stopped    INTEGER NOT NULL DEFAULT 0
);
"#,
    // 5: the checksum of the data a child must be trained on, so a worker with other data is
    // refused.
    r#"
ALTER TABLE queue ADD COLUMN data_sha256 TEXT NOT NULL DEFAULT '';
"#,
    // 6: assessors: a child's learning curve, whether the assessor stopped it (such an evaluation
    // is stored under a key of its own episode, so it is never a cache hit) and what measuring
    // the curve cost; the run's assessor plugin.
    r#"
ALTER TABLE evaluations ADD COLUMN curve TEXT;               -- JSON list, accuracy per epoch; NULL unwatched
ALTER TABLE evaluations ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE evaluations ADD COLUMN measure_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN assessor_name TEXT;
ALTER TABLE runs ADD COLUMN assessor_version TEXT;
ALTER TABLE runs ADD COLUMN assessor_path TEXT;
ALTER TABLE runs ADD COLUMN assessor_sha256 TEXT;
"#,
    // 7: assessors with workers: a watched child is its run's own job (its queue key carries the
    // run; `evaluation_key` is the key it is recorded under), its worker posts the curve after
    // every epoch and waits for the search's verdict on it.
    r#"
ALTER TABLE queue ADD COLUMN evaluation_key TEXT;             -- NULL: the queue's cache_key
ALTER TABLE queue ADD COLUMN watch_epochs INTEGER;             -- the protocol's epochs when watched
ALTER TABLE queue ADD COLUMN curve TEXT;                       -- JSON, accuracy per epoch of this attempt
ALTER TABLE queue ADD COLUMN verdict_epochs INTEGER NOT NULL DEFAULT 0; -- the curve length last judged
ALTER TABLE queue ADD COLUMN verdict_stop INTEGER NOT NULL DEFAULT 0;
"#,
];

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
pub(crate) fn curve_from(text: Option<String>, stopped: bool, measure_seconds: f64) -> crate::train::Curve {
    crate::train::Curve {
        accuracy: text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
        stopped,
        measure_seconds,
    }
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    pub index: usize,
    pub env: u32,
    pub architecture: String,
    pub reward: f64,
    pub accuracy: f64,
    pub params: u64,
    pub depth: usize,
    pub cache_hit: bool,
    /// Why the child failed, if it did (a transient failure is recorded here but not cached).
    #[serde(default)]
    pub failure: Option<String>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// The position of this episode's reward among the rewards the agent was told (0-based). The
    /// episode index is the order of design; with the `async` schedule, rewards arrive in the
    /// order children finish.
    #[serde(default)]
    pub reported: usize,
    /// The run's assessor stopped its child early: `accuracy` is the last one measured, not the
    /// full protocol's.
    #[serde(default)]
    pub stopped: bool,
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

/// One architecture sampled from a frozen policy by `nas-host eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSampleRow {
    pub architecture: String,
    pub accuracy: f64,
    pub params: u64,
    pub depth: usize,
    pub evaluation_id: i64,
    pub cache_hit: bool,
    /// The training seed of this sample (`None`: the run's own, through the cache).
    #[serde(default)]
    pub train_seed: Option<u64>,
    #[serde(default)]
    pub failure: Option<String>,
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
    fn add_wall_seconds(&self, run: i64, seconds: f64) -> anyhow::Result<()>;
    /// Looks an architecture up in the cache. Transient failures are not served: the
    /// architecture is trained again.
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
    /// Records a finished evaluation (replacing an older one with the same key); returns its id.
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
    /// The evaluation behind each committed episode of a run, by episode index.
    fn episode_evaluations(&self, run: i64) -> anyhow::Result<Vec<i64>>;
    /// Keeps the trained weights (safetensors) of an evaluation for `run`.
    fn keep_weights(&self, run: i64, evaluation_id: i64, safetensors: &[u8]) -> anyhow::Result<()>;
    /// Forgets the weights kept for `run` except those of `keep`.
    fn prune_weights(&self, run: i64, keep: &[i64]) -> anyhow::Result<()>;
    /// The weights kept for an evaluation, if any.
    fn kept_weights(&self, evaluation_id: i64) -> anyhow::Result<Option<Vec<u8>>>;
}

pub mod postgres;
pub mod queue;
pub use queue::{Awaited, ClaimedJob, CurveToJudge, JobQueue, JobState, NewJob, QueueCounts, WorkerRow};

/// An open run store, whatever its backend; derefs to [`RunStore`].
pub struct Store(Box<dyn RunStore>);

impl Store {
    /// Opens the store `db` names and brings its schema up to date: a PostgreSQL database
    /// (`postgres://USER@HOST/DB`), else a SQLite file, created if needed (":memory:" gives a
    /// throwaway store).
    pub fn open(db: &Path) -> anyhow::Result<Store> {
        match db.to_str().filter(|url| postgres::is_postgres_url(url)) {
            Some(url) => Ok(Store(Box::new(postgres::PgStore::connect(url)?))),
            None => Ok(Store(Box::new(SqliteStore::open(db)?))),
        }
    }

    /// How to name the store `db` in messages: a PostgreSQL URL without its password.
    pub fn describe(db: &Path) -> String {
        postgres::redact(&db.display().to_string())
    }

    /// Whether `db` is a PostgreSQL store.
    pub fn is_postgres(db: &Path) -> bool {
        db.to_str().is_some_and(postgres::is_postgres_url)
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

/// The SQLite run store (WAL mode), the zero-setup default.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date;
    /// ":memory:" gives a throwaway store.
    pub fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening the run store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // WAL keeps readers (runs, report) off the writer's back; NORMAL sync is crash-safe for a
        // killed process, which is what resume protects against.
        let not_a_store = || format!("{} is not a nas-host run store (or is corrupt)", path.display());
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(not_a_store)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = SqliteStore { conn };
        store.migrate().with_context(not_a_store)?;
        Ok(store)
    }

    /// Applies the migrations this store lacks, each in its own transaction with its version bump.
    fn migrate(&mut self) -> anyhow::Result<()> {
        let current = self.schema_version()?;
        anyhow::ensure!(
            current <= SCHEMA_VERSION,
            "the store has schema version {current}, newer than this nas-host's {SCHEMA_VERSION}; use a newer nas-host"
        );
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)
                .with_context(|| format!("migrating the store to schema version {}", version + 1))?;
            tx.pragma_update(None, "user_version", (version + 1) as i64)?;
            tx.commit()?;
            tracing::debug!("store migrated to schema version {}", version + 1);
        }
        Ok(())
    }

    fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
        let plugin = |prefix: &str| -> rusqlite::Result<PluginRecord> {
            Ok(PluginRecord {
                name: row.get(format!("{prefix}_name").as_str())?,
                version: row.get(format!("{prefix}_version").as_str())?,
                path: row.get(format!("{prefix}_path").as_str())?,
                sha256: row.get(format!("{prefix}_sha256").as_str())?,
            })
        };
        Ok(RunRecord {
            id: row.get("id")?,
            created_at: row.get("created_at")?,
            status: row.get("status")?,
            error: row.get("error")?,
            config_toml: row.get("config_toml")?,
            dataset: row.get("dataset")?,
            evaluator: row.get("evaluator")?,
            seed: row.get::<_, i64>("seed")? as u64,
            episodes_target: row.get::<_, i64>("episodes_target")? as usize,
            agent: plugin("agent")?,
            reward: plugin("reward")?,
            assessor: match row.get::<_, Option<String>>("assessor_name")? {
                Some(_) => Some(plugin("assessor")?),
                None => None,
            },
            wall_seconds: row.get("wall_seconds")?,
            episodes_done: row.get::<_, i64>("episodes_done")? as usize,
            device: row.get("device")?,
            no_cache: row.get("no_cache")?,
        })
    }

    const RUN_COLUMNS: &'static str = "*, (SELECT COUNT(*) FROM episodes e WHERE e.run_id = runs.id) AS episodes_done";

    fn evaluation_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CachedEvaluation> {
        Ok(CachedEvaluation {
            id: row.get("id")?,
            outcome: Outcome {
                accuracy: row.get("accuracy")?,
                params: row.get::<_, i64>("params")? as u64,
                seconds: row.get("seconds")?,
                failure: row.get("failure")?,
                transient: row.get("transient")?,
                curve: curve_from(row.get("curve")?, row.get("stopped")?, row.get("measure_seconds")?),
            },
        })
    }
}

impl RunStore for SqliteStore {
    fn schema_version(&self) -> anyhow::Result<usize> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize)
    }

    fn create_run(&self, run: &NewRun<'_>) -> anyhow::Result<i64> {
        let NewRun {
            config_toml,
            dataset,
            evaluator,
            seed,
            episodes_target,
            agent,
            reward,
            assessor,
            device,
            no_cache,
        } = *run;
        self.conn.execute(
            "INSERT INTO runs (status, config_toml, dataset, evaluator, seed, episodes_target,
                agent_name, agent_version, agent_path, agent_sha256,
                reward_name, reward_version, reward_path, reward_sha256, device, no_cache,
                assessor_name, assessor_version, assessor_path, assessor_sha256)
             VALUES ('running', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            params![
                config_toml,
                dataset,
                evaluator,
                seed as i64,
                episodes_target as i64,
                agent.name,
                agent.version,
                agent.path,
                agent.sha256,
                reward.name,
                reward.version,
                reward.path,
                reward.sha256,
                device,
                no_cache,
                assessor.map(|a| &a.name),
                assessor.map(|a| &a.version),
                assessor.map(|a| &a.path),
                assessor.map(|a| &a.sha256)
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn run(&self, id: i64) -> anyhow::Result<RunRecord> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM runs WHERE id = ?1", Self::RUN_COLUMNS),
                [id],
                Self::run_from_row,
            )
            .optional()?
            .ok_or_else(|| anyhow::anyhow!("no run {id} in this store; `nas-host runs` lists the runs"))
    }

    fn runs(&self) -> anyhow::Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {} FROM runs ORDER BY id", Self::RUN_COLUMNS))?;
        let rows = stmt.query_map([], Self::run_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_status(&self, run: i64, status: &str, error: Option<&str>) -> anyhow::Result<()> {
        let finished = if status == "running" { None } else { Some(()) };
        self.conn.execute(
            "UPDATE runs SET status = ?2, error = ?3, finished_at = CASE WHEN ?4 THEN datetime('now') ELSE NULL END WHERE id = ?1",
            params![run, status, error, finished.is_some()],
        )?;
        Ok(())
    }

    fn set_episodes_target(&self, run: i64, episodes: usize) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE runs SET episodes_target = ?2 WHERE id = ?1",
            params![run, episodes as i64],
        )?;
        Ok(())
    }

    fn set_run_environment(&self, run: i64, device: &str, no_cache: bool) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE runs SET device = ?2, no_cache = ?3 WHERE id = ?1",
            params![run, device, no_cache],
        )?;
        Ok(())
    }

    fn add_wall_seconds(&self, run: i64, seconds: f64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE runs SET wall_seconds = wall_seconds + ?2 WHERE id = ?1",
            params![run, seconds],
        )?;
        Ok(())
    }

    fn cached_evaluation(&self, cache_key: &str) -> anyhow::Result<Option<CachedEvaluation>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM evaluations WHERE cache_key = ?1 AND transient = 0 AND stopped = 0",
                [cache_key],
                Self::evaluation_from_row,
            )
            .optional()?)
    }

    fn evaluation_of_episode(
        &self,
        cache_key: &str,
        run: i64,
        episode: usize,
    ) -> anyhow::Result<Option<CachedEvaluation>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM evaluations WHERE cache_key IN (?1, ?4) AND origin_run = ?2 AND origin_episode = ?3",
                params![cache_key, run, episode as i64, stopped_key(cache_key, run, episode)],
                Self::evaluation_from_row,
            )
            .optional()?)
    }

    fn evaluation(&self, id: i64) -> anyhow::Result<CachedEvaluation> {
        self.conn
            .query_row(
                "SELECT * FROM evaluations WHERE id = ?1",
                [id],
                Self::evaluation_from_row,
            )
            .optional()?
            .ok_or_else(|| anyhow::anyhow!("no evaluation {id} in this store"))
    }

    fn insert_evaluation(&self, evaluation: &NewEvaluation<'_>) -> anyhow::Result<i64> {
        insert_evaluation_on(&self.conn, evaluation)
    }

    fn commit_episodes(
        &mut self,
        run: i64,
        episodes: &[(EpisodeRecord, i64)],
        agent_state: &[u8],
        designed: usize,
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        for (episode, evaluation_id) in episodes {
            tx.execute(
                "INSERT INTO episodes (run_id, idx, env, architecture, reward, accuracy, params, depth, evaluation_id, cache_hit, metrics, failure, reported)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    run, episode.index as i64, episode.env, episode.architecture, episode.reward, episode.accuracy,
                    episode.params as i64, episode.depth as i64, evaluation_id, episode.cache_hit,
                    serde_json::Value::Object(episode.metrics.clone()).to_string(), episode.failure,
                    episode.reported as i64
                ],
            )?;
            tx.execute(
                "DELETE FROM in_flight WHERE run_id = ?1 AND idx = ?2",
                params![run, episode.index as i64],
            )?;
        }
        save_checkpoint(&tx, run, agent_state, designed)?;
        tx.commit()?;
        Ok(())
    }

    fn commit_design(
        &mut self,
        run: i64,
        design: &InFlightDesign,
        agent_state: &[u8],
        designed: usize,
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO in_flight (run_id, idx, env, architecture, metrics) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                run,
                design.episode as i64,
                design.env,
                design.architecture,
                serde_json::Value::Object(design.metrics.clone()).to_string()
            ],
        )?;
        save_checkpoint(&tx, run, agent_state, designed)?;
        tx.commit()?;
        Ok(())
    }

    fn in_flight(&self, run: i64) -> anyhow::Result<Vec<InFlightDesign>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM in_flight WHERE run_id = ?1 ORDER BY idx")?;
        let rows = stmt.query_map([run], |r| {
            let metrics: String = r.get("metrics")?;
            Ok(InFlightDesign {
                episode: r.get::<_, i64>("idx")? as usize,
                env: r.get("env")?,
                architecture: r.get("architecture")?,
                metrics: serde_json::from_str(&metrics).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn episode_evaluations(&self, run: i64) -> anyhow::Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT evaluation_id FROM episodes WHERE run_id = ?1 ORDER BY idx")?;
        let ids = stmt.query_map([run], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
        Ok(ids)
    }

    fn keep_weights(&self, run: i64, evaluation_id: i64, safetensors: &[u8]) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO kept_weights (evaluation_id, run_id, safetensors) VALUES (?1, ?2, ?3)",
            params![evaluation_id, run, safetensors],
        )?;
        Ok(())
    }

    fn prune_weights(&self, run: i64, keep: &[i64]) -> anyhow::Result<()> {
        let kept: Vec<String> = keep.iter().map(i64::to_string).collect();
        self.conn.execute(
            &format!(
                "DELETE FROM kept_weights WHERE run_id = ?1 AND evaluation_id NOT IN ({})",
                kept.join(",")
            ),
            [run],
        )?;
        Ok(())
    }

    fn kept_weights(&self, evaluation_id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT safetensors FROM kept_weights WHERE evaluation_id = ?1",
                [evaluation_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn checkpoint(&self, run: i64) -> anyhow::Result<Option<(usize, Vec<u8>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT episodes, agent_state FROM checkpoints WHERE run_id = ?1",
                [run],
                |r| Ok((r.get::<_, i64>("episodes")? as usize, r.get("agent_state")?)),
            )
            .optional()?)
    }

    fn episodes(&self, run: i64) -> anyhow::Result<Vec<EpisodeRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT e.*, COALESCE(v.stopped, 0) AS child_stopped FROM episodes e
                 LEFT JOIN evaluations v ON v.id = e.evaluation_id WHERE e.run_id = ?1 ORDER BY e.idx",
        )?;
        let rows = stmt.query_map([run], |r| {
            let metrics: String = r.get("metrics")?;
            Ok(EpisodeRecord {
                index: r.get::<_, i64>("idx")? as usize,
                env: r.get("env")?,
                architecture: r.get("architecture")?,
                reward: r.get("reward")?,
                accuracy: r.get("accuracy")?,
                params: r.get::<_, i64>("params")? as u64,
                depth: r.get::<_, i64>("depth")? as usize,
                cache_hit: r.get("cache_hit")?,
                failure: r.get("failure")?,
                metrics: serde_json::from_str(&metrics).unwrap_or_default(),
                reported: r
                    .get::<_, Option<i64>>("reported")?
                    .map_or_else(|| r.get::<_, i64>("idx"), Ok)? as usize,
                stopped: r.get("child_stopped")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn replace_eval_samples(&mut self, run: i64, samples: &[EvalSampleRow]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM eval_samples WHERE run_id = ?1", [run])?;
        for (i, sample) in samples.iter().enumerate() {
            tx.execute(
                "INSERT INTO eval_samples (run_id, sample, architecture, accuracy, params, depth, evaluation_id, cache_hit, train_seed, failure)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    run,
                    i as i64,
                    sample.architecture,
                    sample.accuracy,
                    sample.params as i64,
                    sample.depth as i64,
                    sample.evaluation_id,
                    sample.cache_hit,
                    sample.train_seed.map(|s| s as i64),
                    sample.failure
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn eval_samples(&self, run: i64) -> anyhow::Result<Vec<EvalSampleRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM eval_samples WHERE run_id = ?1 ORDER BY sample")?;
        let rows = stmt.query_map([run], |r| {
            Ok(EvalSampleRow {
                architecture: r.get("architecture")?,
                accuracy: r.get("accuracy")?,
                params: r.get::<_, i64>("params")? as u64,
                depth: r.get::<_, i64>("depth")? as usize,
                evaluation_id: r.get("evaluation_id")?,
                cache_hit: r.get("cache_hit")?,
                train_seed: r.get::<_, Option<i64>>("train_seed")?.map(|s| s as u64),
                failure: r.get("failure")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Records a finished evaluation on `conn` (a transaction, or the store's connection).
fn insert_evaluation_on(conn: &Connection, evaluation: &NewEvaluation<'_>) -> anyhow::Result<i64> {
    let NewEvaluation {
        cache_key,
        architecture,
        dataset,
        evaluator,
        protocol_json,
        depth,
        outcome,
        origin,
    } = *evaluation;
    let (origin_run, origin_episode) = (origin.map(|o| o.0), origin.map(|o| o.1 as i64));
    let cache_key = &*stored_key(cache_key, outcome, origin);
    conn.execute(
        "INSERT INTO evaluations (cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth, seconds, failure, transient, origin_run, origin_episode, curve, stopped, measure_seconds)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT(cache_key) DO UPDATE SET accuracy = excluded.accuracy, params = excluded.params,
            seconds = excluded.seconds, failure = excluded.failure, transient = excluded.transient,
            origin_run = excluded.origin_run, origin_episode = excluded.origin_episode,
            curve = excluded.curve, stopped = excluded.stopped, measure_seconds = excluded.measure_seconds,
            created_at = datetime('now')",
        params![
            cache_key, architecture, dataset, evaluator, protocol_json, outcome.accuracy,
            outcome.params as i64, depth as i64, outcome.seconds, outcome.failure, outcome.transient,
            origin_run, origin_episode, curve_text(outcome), outcome.curve.stopped, outcome.curve.measure_seconds
        ],
    )?;
    Ok(
        conn.query_row("SELECT id FROM evaluations WHERE cache_key = ?1", [cache_key], |r| {
            r.get(0)
        })?,
    )
}

/// Writes the agent checkpoint of `run` (within the caller's transaction).
fn save_checkpoint(conn: &Connection, run: i64, agent_state: &[u8], designed: usize) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO checkpoints (run_id, episodes, agent_state) VALUES (?1, ?2, ?3)
         ON CONFLICT(run_id) DO UPDATE SET episodes = excluded.episodes, agent_state = excluded.agent_state, saved_at = datetime('now')",
        params![run, designed as i64, agent_state],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(failure: Option<&str>, transient: bool) -> Outcome {
        Outcome {
            accuracy: 0.0,
            params: 10,
            seconds: 1.0,
            failure: failure.map(String::from),
            transient,
            curve: Default::default(),
        }
    }

    fn evaluation<'a>(key: &'a str, outcome: &'a Outcome, origin: Option<(i64, usize)>) -> NewEvaluation<'a> {
        NewEvaluation {
            cache_key: key,
            architecture: "conv(10,3)",
            dataset: "mnist3",
            evaluator: "train",
            protocol_json: "{}",
            depth: 1,
            outcome,
            origin,
        }
    }

    #[test]
    fn transient_failures_are_not_served_from_the_cache() {
        let store = Store::open(Path::new(":memory:")).unwrap();
        let oom = outcome(Some("out of memory: CUDA"), true);
        store.insert_evaluation(&evaluation("oom", &oom, Some((1, 4)))).unwrap();
        assert_eq!(store.cached_evaluation("oom").unwrap(), None);
        // The episode that met it still finds it when it is redone after a kill.
        let mine = store.evaluation_of_episode("oom", 1, 4).unwrap().unwrap();
        assert!(mine.outcome.transient);
        assert_eq!(store.evaluation_of_episode("oom", 1, 5).unwrap(), None);
        // Divergence is a property of the architecture: cached.
        let nan = outcome(Some("diverged: the training loss became NaN in epoch 1"), false);
        store.insert_evaluation(&evaluation("nan", &nan, None)).unwrap();
        assert_eq!(store.cached_evaluation("nan").unwrap().unwrap().outcome, nan);
        // A retry that succeeds replaces the transient row and is then cached.
        let ok = Outcome {
            accuracy: 0.9,
            ..outcome(None, false)
        };
        store.insert_evaluation(&evaluation("oom", &ok, Some((2, 0)))).unwrap();
        assert_eq!(store.cached_evaluation("oom").unwrap().unwrap().outcome, ok);
    }
}
