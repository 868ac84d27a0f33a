//! The SQLite run store (WAL mode), the zero-setup default: one file per workspace.

mod queue;
mod schema;

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use nas_core::record::{EpisodeRecord, EvalSampleRow, Outcome};

pub(crate) use schema::MIGRATIONS;

use crate::{
    cost_columns, cost_from, cost_text, curve_from, curve_text, stopped_key, stored_key, CachedEvaluation,
    EpisodeEvaluations, InFlightDesign, NewEvaluation, NewRun, PluginRecord, RunRecord, RunStore, TableRecord,
    SCHEMA_VERSION,
};

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Switches `conn`'s file to WAL. Switching a file that is not in WAL mode yet takes an exclusive
/// lock and reports "database is locked" without waiting while another process opens it, so that
/// is retried for up to [`BUSY_TIMEOUT`]; a file already in WAL mode only reads its mode.
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
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
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL keeps readers (runs, report) off the writer's back; NORMAL sync is crash-safe for a
        // killed process, which is what resume protects against.
        let not_a_store = || format!("{} is not a nas-host run store (or is corrupt)", path.display());
        set_wal(&conn).with_context(not_a_store)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Off while migrating (the bundled SQLite turns them on by default): see `migrate`.
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        let mut store = SqliteStore { conn };
        store
            .migrate()
            .with_context(|| format!("preparing the run store {}", path.display()))?;
        store.conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(store)
    }

    /// Applies the migrations this store lacks, each in its own transaction with its version bump.
    /// Processes that open a store at once (workers starting together) migrate it once: each
    /// migration runs under `BEGIN IMMEDIATE`, which waits for (`busy_timeout`) and then holds the
    /// write lock, and re-reads the version inside, so a migration another process applied in the
    /// meantime is not applied again.
    ///
    /// Foreign keys are off while migrating (the connection turns them on after), as SQLite's
    /// procedure for rebuilding a table requires; each migration checks them before it commits.
    fn migrate(&mut self) -> anyhow::Result<()> {
        loop {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
            anyhow::ensure!(
                current <= SCHEMA_VERSION,
                "the store has schema version {current}, newer than this nas-host's {SCHEMA_VERSION}; use a newer nas-host"
            );
            if current == SCHEMA_VERSION {
                // Nothing to write: ends the transaction without touching the file.
                tx.rollback()?;
                return Ok(());
            }
            tx.execute_batch(MIGRATIONS[current])
                .with_context(|| format!("migrating the store to schema version {}", current + 1))?;
            let broken: Option<String> = tx.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).optional()?;
            anyhow::ensure!(
                broken.is_none(),
                "migrating the store to schema version {} broke a reference from table {}",
                current + 1,
                broken.unwrap_or_default()
            );
            tx.pragma_update(None, "user_version", (current + 1) as i64)?;
            tx.commit()?;
            tracing::debug!("store migrated to schema version {}", current + 1);
        }
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
            table: match row.get::<_, Option<String>>("table_sha256")? {
                Some(sha256) => Some(TableRecord {
                    sha256,
                    surrogate_quality: row.get("surrogate_quality")?,
                }),
                None => None,
            },
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
                predicted: row.get("predicted")?,
                cost: cost_from(row.get("cost")?),
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
            table,
        } = *run;
        self.conn.execute(
            "INSERT INTO runs (status, config_toml, dataset, evaluator, seed, episodes_target,
                agent_name, agent_version, agent_path, agent_sha256,
                reward_name, reward_version, reward_path, reward_sha256, device, no_cache,
                assessor_name, assessor_version, assessor_path, assessor_sha256, table_sha256, surrogate_quality)
             VALUES ('running', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
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
                assessor.map(|a| &a.sha256),
                table.map(|t| &t.sha256),
                table.and_then(|t| t.surrogate_quality.as_ref())
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

    fn set_run_table(&self, run: i64, table: &TableRecord) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE runs SET table_sha256 = ?2, surrogate_quality = ?3 WHERE id = ?1",
            params![run, table.sha256, table.surrogate_quality],
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
                "SELECT * FROM evaluations WHERE cache_key = ?1 AND transient = 0 AND stopped = 0
                 ORDER BY id DESC LIMIT 1",
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
                "SELECT * FROM evaluations WHERE cache_key IN (?1, ?4) AND origin_run = ?2 AND origin_episode = ?3
                 ORDER BY id DESC LIMIT 1",
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

    fn episode_evaluations(&self, run: i64) -> anyhow::Result<EpisodeEvaluations> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, evaluation_id FROM episodes WHERE run_id = ?1")?;
        let ids = stmt
            .query_map([run], |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?)))?
            .collect::<Result<EpisodeEvaluations, _>>()?;
        Ok(ids)
    }

    fn keep_weights(&self, run: i64, evaluation_id: i64, safetensors: &[u8]) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO kept_weights (evaluation_id, run_id, safetensors) VALUES (?1, ?2, ?3)
             ON CONFLICT (run_id, evaluation_id) DO UPDATE SET safetensors = excluded.safetensors",
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

    fn kept_weights(&self, run: i64, evaluation_id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT safetensors FROM kept_weights WHERE run_id = ?1 AND evaluation_id = ?2",
                [run, evaluation_id],
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

/// Records a finished evaluation on `conn` (a transaction, or the store's connection) as a new
/// row: evaluations are immutable once written.
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
    let (mult_adds, activation_bytes, latency_ms, latency_p90_ms) = cost_columns(outcome);
    conn.execute(
        "INSERT INTO evaluations (cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth, seconds, failure, transient, origin_run, origin_episode, curve, stopped, measure_seconds, predicted, mult_adds, activation_bytes, latency_ms, latency_p90_ms, cost)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
        params![
            cache_key, architecture, dataset, evaluator, protocol_json, outcome.accuracy,
            outcome.params as i64, depth as i64, outcome.seconds, outcome.failure, outcome.transient,
            origin_run, origin_episode, curve_text(outcome), outcome.curve.stopped, outcome.curve.measure_seconds,
            outcome.predicted, mult_adds, activation_bytes, latency_ms, latency_p90_ms, cost_text(outcome)
        ],
    )?;
    Ok(conn.last_insert_rowid())
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
    use crate::Store;

    fn outcome(failure: Option<&str>, transient: bool) -> Outcome {
        Outcome {
            accuracy: 0.0,
            params: 10,
            seconds: 1.0,
            failure: failure.map(String::from),
            transient,
            curve: Default::default(),
            predicted: false,
            cost: None,
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
        // A retry that succeeds is a new row, and the cache serves it.
        let ok = Outcome {
            accuracy: 0.9,
            ..outcome(None, false)
        };
        store.insert_evaluation(&evaluation("oom", &ok, Some((2, 0)))).unwrap();
        assert_eq!(store.cached_evaluation("oom").unwrap().unwrap().outcome, ok);
    }

    /// A fresh directory for a store file.
    pub(crate) fn temp_dir(what: &str) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nas-store-unit-{what}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A store file with only the first `version` migrations, as an older nas-host left it.
    pub(crate) fn old_store(path: &Path, version: usize) {
        let conn = Connection::open(path).unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64).unwrap();
    }

    /// Opens the store at `path` from `threads` threads at once; every open must succeed.
    fn open_at_once(path: &Path, threads: usize) {
        let start = std::sync::Barrier::new(threads);
        let opened: Vec<anyhow::Result<usize>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        SqliteStore::open(path)?.schema_version()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for result in opened {
            assert_eq!(result.map_err(|e| format!("{e:#}")).unwrap(), SCHEMA_VERSION);
        }
    }

    #[test]
    fn concurrent_opens_of_a_new_store_all_succeed() {
        let dir = temp_dir("fresh");
        for round in 0..6 {
            open_at_once(&dir.join(format!("new-{round}.sqlite")), 8);
        }
    }

    #[test]
    fn concurrent_opens_of_an_old_store_all_succeed() {
        let dir = temp_dir("old");
        for version in 0..SCHEMA_VERSION {
            let path = dir.join(format!("v{version}.sqlite"));
            old_store(&path, version);
            open_at_once(&path, 8);
        }
    }

    #[test]
    fn immutable_evaluations_migrate_with_their_ids_and_references() {
        let path = temp_dir("v7").join("v7.sqlite");
        old_store(&path, 7);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "INSERT INTO runs (id, status, config_toml, dataset, evaluator, seed, episodes_target,
                    agent_name, agent_version, agent_path, agent_sha256, reward_name, reward_version, reward_path, reward_sha256)
                 VALUES (1, 'finished', '', 'mnist3', 'train', 1, 1, 'a', '1', 'a.wasm', 'x', 'r', '1', 'r.wasm', 'y');
                 INSERT INTO evaluations (id, cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth, seconds, origin_run, origin_episode)
                 VALUES (5, 'k', 'conv(10,3)', 'mnist3', 'train', '{}', 0.9, 10, 1, 1.0, 1, 0);
                 INSERT INTO episodes (run_id, idx, env, architecture, reward, accuracy, params, depth, evaluation_id, cache_hit, metrics)
                 VALUES (1, 0, 0, 'conv(10,3)', 0.9, 0.9, 10, 1, 5, 0, '{}');
                 INSERT INTO kept_weights (evaluation_id, run_id, safetensors) VALUES (5, 1, x'0102');
                 INSERT INTO queue (id, cache_key, architecture, dataset, evaluator, protocol, device, status, queued_at, evaluation_id, weights)
                 VALUES (3, 'k', 'conv(10,3)', 'mnist3', 'train', '{}', 'cpu', 'done', 0, 5, x'0304');",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).map_err(|e| format!("{e:#}")).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.cached_evaluation("k").unwrap().unwrap().id, 5);
        assert_eq!(store.episode_evaluations(1).unwrap(), [(0, 5)].into());
        assert_eq!(store.kept_weights(1, 5).unwrap(), Some(vec![1, 2]));
        use crate::JobQueue;
        assert_eq!(
            store.job_states(&[3]).unwrap(),
            vec![(3, crate::JobState::Done { evaluation_id: 5 })]
        );
        assert_eq!(store.take_job_weights(3).unwrap(), Some(vec![3, 4]));
        // The live-key index is the rule's.
        assert!(MIGRATIONS[8].contains(&format!("WHERE {}", crate::queue::rules::LIVE)));
        let ok = Outcome {
            accuracy: 0.8,
            ..outcome(None, false)
        };
        let newer = store.insert_evaluation(&evaluation("k", &ok, Some((1, 1)))).unwrap();
        assert!(newer > 5);
        assert_eq!(store.evaluation(5).unwrap().outcome.accuracy, 0.9);
        // The references still hold, and are enforced.
        let broken: Option<String> = store
            .conn
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(broken, None);
        assert!(store
            .conn
            .execute(
                "INSERT INTO kept_weights (evaluation_id, run_id, safetensors) VALUES (999, 1, x'00')",
                []
            )
            .is_err());
    }
}
