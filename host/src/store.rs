//! The run store: one SQLite database per workspace (default `runs/nas.sqlite`).
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
//! An evaluation is written as soon as it finishes; the episode, its link to the evaluation and the
//! agent checkpoint are then written in one transaction, so a run killed at any point resumes from
//! its last committed episode and never trains a finished architecture again.

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::train::TrainOutcome;

const SCHEMA: &str = r#"
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
"#;

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
    pub wall_seconds: f64,
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
    pub outcome: &'a TrainOutcome,
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
}

/// A cached evaluation and its row id.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEvaluation {
    pub id: i64,
    pub outcome: TrainOutcome,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`; ":memory:" gives a throwaway store.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening the run store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // WAL keeps readers (runs, report) off the writer's back; NORMAL sync is crash-safe for a
        // killed process, which is what resume protects against.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("{} is not a nas-host run store (or is corrupt)", path.display()))?;
        Ok(Store { conn })
    }

    pub fn create_run(&self, run: &NewRun<'_>) -> anyhow::Result<i64> {
        let NewRun {
            config_toml,
            dataset,
            evaluator,
            seed,
            episodes_target,
            agent,
            reward,
        } = *run;
        self.conn.execute(
            "INSERT INTO runs (status, config_toml, dataset, evaluator, seed, episodes_target,
                agent_name, agent_version, agent_path, agent_sha256,
                reward_name, reward_version, reward_path, reward_sha256)
             VALUES ('running', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
                reward.sha256
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
        let plugin = |prefix: usize| -> rusqlite::Result<PluginRecord> {
            Ok(PluginRecord {
                name: row.get(prefix)?,
                version: row.get(prefix + 1)?,
                path: row.get(prefix + 2)?,
                sha256: row.get(prefix + 3)?,
            })
        };
        Ok(RunRecord {
            id: row.get(0)?,
            created_at: row.get(1)?,
            status: row.get(2)?,
            error: row.get(3)?,
            config_toml: row.get(4)?,
            dataset: row.get(5)?,
            evaluator: row.get(6)?,
            seed: row.get::<_, i64>(7)? as u64,
            episodes_target: row.get::<_, i64>(8)? as usize,
            agent: plugin(9)?,
            reward: plugin(13)?,
            wall_seconds: row.get(17)?,
            episodes_done: row.get::<_, i64>(18)? as usize,
        })
    }

    const RUN_COLUMNS: &'static str =
        "id, created_at, status, error, config_toml, dataset, evaluator, seed, episodes_target,
        agent_name, agent_version, agent_path, agent_sha256, reward_name, reward_version, reward_path, reward_sha256,
        wall_seconds, (SELECT COUNT(*) FROM episodes e WHERE e.run_id = runs.id)";

    pub fn run(&self, id: i64) -> anyhow::Result<RunRecord> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM runs WHERE id = ?1", Self::RUN_COLUMNS),
                [id],
                Self::run_from_row,
            )
            .optional()?
            .ok_or_else(|| anyhow::anyhow!("no run {id} in this store; `nas-host runs` lists the runs"))
    }

    pub fn runs(&self) -> anyhow::Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {} FROM runs ORDER BY id", Self::RUN_COLUMNS))?;
        let rows = stmt.query_map([], Self::run_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_status(&self, run: i64, status: &str, error: Option<&str>) -> anyhow::Result<()> {
        let finished = if status == "running" { None } else { Some(()) };
        self.conn.execute(
            "UPDATE runs SET status = ?2, error = ?3, finished_at = CASE WHEN ?4 THEN datetime('now') ELSE NULL END WHERE id = ?1",
            params![run, status, error, finished.is_some()],
        )?;
        Ok(())
    }

    pub fn set_episodes_target(&self, run: i64, episodes: usize) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE runs SET episodes_target = ?2 WHERE id = ?1",
            params![run, episodes as i64],
        )?;
        Ok(())
    }

    pub fn add_wall_seconds(&self, run: i64, seconds: f64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE runs SET wall_seconds = wall_seconds + ?2 WHERE id = ?1",
            params![run, seconds],
        )?;
        Ok(())
    }

    /// Looks an architecture up in the cache.
    pub fn cached_evaluation(&self, cache_key: &str) -> anyhow::Result<Option<CachedEvaluation>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, accuracy, params, seconds, failure FROM evaluations WHERE cache_key = ?1",
                [cache_key],
                |row| {
                    let seconds: f64 = row.get(3)?;
                    Ok(CachedEvaluation {
                        id: row.get(0)?,
                        outcome: TrainOutcome {
                            accuracy: row.get(1)?,
                            params: row.get::<_, i64>(2)? as u64,
                            seconds,
                            seconds_per_epoch: 0.0,
                            failure: row.get(4)?,
                        },
                    })
                },
            )
            .optional()?)
    }

    /// Records a finished evaluation (replacing an older one with the same key); returns its id.
    pub fn insert_evaluation(&self, evaluation: &NewEvaluation<'_>) -> anyhow::Result<i64> {
        let NewEvaluation {
            cache_key,
            architecture,
            dataset,
            evaluator,
            protocol_json,
            depth,
            outcome,
        } = *evaluation;
        self.conn.execute(
            "INSERT INTO evaluations (cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth, seconds, failure)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(cache_key) DO UPDATE SET accuracy = excluded.accuracy, params = excluded.params,
                seconds = excluded.seconds, failure = excluded.failure, created_at = datetime('now')",
            params![
                cache_key, architecture, dataset, evaluator, protocol_json, outcome.accuracy,
                outcome.params as i64, depth as i64, outcome.seconds, outcome.failure
            ],
        )?;
        Ok(self
            .conn
            .query_row("SELECT id FROM evaluations WHERE cache_key = ?1", [cache_key], |r| {
                r.get(0)
            })?)
    }

    /// Writes a finished episode and the agent checkpoint taken after it, in one transaction.
    pub fn commit_episode(
        &mut self,
        run: i64,
        episode: &EpisodeRecord,
        evaluation_id: i64,
        agent_state: &[u8],
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO episodes (run_id, idx, env, architecture, reward, accuracy, params, depth, evaluation_id, cache_hit, metrics)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                run, episode.index as i64, episode.env, episode.architecture, episode.reward, episode.accuracy,
                episode.params as i64, episode.depth as i64, evaluation_id, episode.cache_hit,
                serde_json::Value::Object(episode.metrics.clone()).to_string()
            ],
        )?;
        tx.execute(
            "INSERT INTO checkpoints (run_id, episodes, agent_state) VALUES (?1, ?2, ?3)
             ON CONFLICT(run_id) DO UPDATE SET episodes = excluded.episodes, agent_state = excluded.agent_state, saved_at = datetime('now')",
            params![run, (episode.index + 1) as i64, agent_state],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The latest checkpoint: (episodes finished, agent state).
    pub fn checkpoint(&self, run: i64) -> anyhow::Result<Option<(usize, Vec<u8>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT episodes, agent_state FROM checkpoints WHERE run_id = ?1",
                [run],
                |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn episodes(&self, run: i64) -> anyhow::Result<Vec<EpisodeRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT idx, env, architecture, reward, accuracy, params, depth, cache_hit, metrics FROM episodes WHERE run_id = ?1 ORDER BY idx",
        )?;
        let rows = stmt.query_map([run], |r| {
            let metrics: String = r.get(8)?;
            Ok(EpisodeRecord {
                index: r.get::<_, i64>(0)? as usize,
                env: r.get(1)?,
                architecture: r.get(2)?,
                reward: r.get(3)?,
                accuracy: r.get(4)?,
                params: r.get::<_, i64>(5)? as u64,
                depth: r.get::<_, i64>(6)? as usize,
                cache_hit: r.get(7)?,
                metrics: serde_json::from_str(&metrics).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn replace_eval_samples(&mut self, run: i64, samples: &[EvalSampleRow]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM eval_samples WHERE run_id = ?1", [run])?;
        for (i, sample) in samples.iter().enumerate() {
            tx.execute(
                "INSERT INTO eval_samples (run_id, sample, architecture, accuracy, params, depth, evaluation_id, cache_hit)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run,
                    i as i64,
                    sample.architecture,
                    sample.accuracy,
                    sample.params as i64,
                    sample.depth as i64,
                    sample.evaluation_id,
                    sample.cache_hit
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored `eval` samples of a run.
    pub fn eval_samples(&self, run: i64) -> anyhow::Result<Vec<EvalSampleRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT architecture, accuracy, params, depth, evaluation_id, cache_hit FROM eval_samples WHERE run_id = ?1 ORDER BY sample",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(EvalSampleRow {
                architecture: r.get(0)?,
                accuracy: r.get(1)?,
                params: r.get::<_, i64>(2)? as u64,
                depth: r.get::<_, i64>(3)? as usize,
                evaluation_id: r.get(4)?,
                cache_hit: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
