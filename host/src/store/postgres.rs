//! The PostgreSQL run store (`--db postgres://USER@HOST/DB`): the SQLite store's schema and
//! migrations in PostgreSQL's dialect, for searches whose workers run on several machines (as
//! Optuna's RDB storage serves distributed studies). Workers claim children with row locks that
//! skip locked rows (`FOR UPDATE SKIP LOCKED`); everything else matches the SQLite store.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use postgres::{Client, NoTls, Row, Transaction};

use super::queue::{curves_waiting, given_up, unix_now, Awaited, CurveToJudge, MAX_ATTEMPTS};
use super::{
    CachedEvaluation, ClaimedJob, EpisodeRecord, EvalSampleRow, InFlightDesign, JobQueue, JobState, NewEvaluation,
    NewJob, NewRun, PluginRecord, QueueCounts, RunRecord, RunStore, WorkerRow, SCHEMA_VERSION,
};
use crate::evaluator::Outcome;

/// SQLite's `datetime('now')` format, so both stores show times alike.
const NOW: &str = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')";

/// The migrations of `super::MIGRATIONS`, version for version, in PostgreSQL's types.
fn migrations() -> Vec<String> {
    vec![
        format!(
            r#"
CREATE TABLE IF NOT EXISTS runs (
    id BIGSERIAL PRIMARY KEY, created_at TEXT NOT NULL DEFAULT {NOW}, finished_at TEXT,
    status TEXT NOT NULL, error TEXT, config_toml TEXT NOT NULL, dataset TEXT NOT NULL,
    evaluator TEXT NOT NULL, seed BIGINT NOT NULL, episodes_target BIGINT NOT NULL,
    agent_name TEXT NOT NULL, agent_version TEXT NOT NULL, agent_path TEXT NOT NULL, agent_sha256 TEXT NOT NULL,
    reward_name TEXT NOT NULL, reward_version TEXT NOT NULL, reward_path TEXT NOT NULL, reward_sha256 TEXT NOT NULL,
    wall_seconds DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS evaluations (
    id BIGSERIAL PRIMARY KEY, cache_key TEXT NOT NULL UNIQUE, architecture TEXT NOT NULL,
    dataset TEXT NOT NULL, evaluator TEXT NOT NULL, protocol TEXT NOT NULL,
    accuracy DOUBLE PRECISION NOT NULL, params BIGINT NOT NULL, depth BIGINT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL, failure TEXT, created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id BIGINT NOT NULL REFERENCES runs(id), idx BIGINT NOT NULL, env BIGINT NOT NULL,
    architecture TEXT NOT NULL, reward DOUBLE PRECISION NOT NULL, accuracy DOUBLE PRECISION NOT NULL,
    params BIGINT NOT NULL, depth BIGINT NOT NULL, evaluation_id BIGINT NOT NULL REFERENCES evaluations(id),
    cache_hit BOOLEAN NOT NULL, metrics TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT {NOW},
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id BIGINT PRIMARY KEY REFERENCES runs(id), episodes BIGINT NOT NULL, agent_state BYTEA NOT NULL,
    saved_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE TABLE IF NOT EXISTS eval_samples (
    run_id BIGINT NOT NULL REFERENCES runs(id), sample BIGINT NOT NULL, architecture TEXT NOT NULL,
    accuracy DOUBLE PRECISION NOT NULL, params BIGINT NOT NULL, depth BIGINT NOT NULL,
    evaluation_id BIGINT NOT NULL REFERENCES evaluations(id), cache_hit BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, sample)
);
"#
        ),
        r#"
ALTER TABLE runs ADD COLUMN device TEXT;
ALTER TABLE runs ADD COLUMN no_cache BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE evaluations ADD COLUMN transient BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE evaluations ADD COLUMN origin_run BIGINT;
ALTER TABLE evaluations ADD COLUMN origin_episode BIGINT;
CREATE INDEX IF NOT EXISTS evaluations_origin ON evaluations (origin_run, origin_episode);
ALTER TABLE episodes ADD COLUMN failure TEXT;
ALTER TABLE eval_samples ADD COLUMN train_seed BIGINT;
ALTER TABLE eval_samples ADD COLUMN failure TEXT;
"#
        .into(),
        r#"
CREATE TABLE IF NOT EXISTS kept_weights (
    evaluation_id BIGINT PRIMARY KEY REFERENCES evaluations(id),
    run_id BIGINT NOT NULL REFERENCES runs(id), safetensors BYTEA NOT NULL
);
"#
        .into(),
        r#"
ALTER TABLE episodes ADD COLUMN reported BIGINT;
CREATE TABLE IF NOT EXISTS in_flight (
    run_id BIGINT NOT NULL REFERENCES runs(id), idx BIGINT NOT NULL, env BIGINT NOT NULL,
    architecture TEXT NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS queue (
    id BIGSERIAL PRIMARY KEY, cache_key TEXT NOT NULL UNIQUE, architecture TEXT NOT NULL,
    dataset TEXT NOT NULL, evaluator TEXT NOT NULL, protocol TEXT NOT NULL, device TEXT NOT NULL,
    origin_run BIGINT, origin_episode BIGINT, keep_weights BOOLEAN NOT NULL DEFAULT false,
    status TEXT NOT NULL, owner TEXT, attempt BIGINT NOT NULL DEFAULT 0, lease_until DOUBLE PRECISION,
    evaluation_id BIGINT REFERENCES evaluations(id), weights BYTEA, last_error TEXT,
    queued_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS queue_status ON queue (status, id);
CREATE TABLE IF NOT EXISTS workers (
    name TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL, device TEXT NOT NULL,
    threads BIGINT NOT NULL, started_at DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL,
    job_id BIGINT, trained BIGINT NOT NULL DEFAULT 0, stopped BOOLEAN NOT NULL DEFAULT false
);
"#
        .into(),
        "ALTER TABLE queue ADD COLUMN data_sha256 TEXT NOT NULL DEFAULT '';".into(),
        r#"
ALTER TABLE evaluations ADD COLUMN curve TEXT;
ALTER TABLE evaluations ADD COLUMN stopped BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE evaluations ADD COLUMN measure_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN assessor_name TEXT;
ALTER TABLE runs ADD COLUMN assessor_version TEXT;
ALTER TABLE runs ADD COLUMN assessor_path TEXT;
ALTER TABLE runs ADD COLUMN assessor_sha256 TEXT;
"#
        .into(),
        r#"
ALTER TABLE queue ADD COLUMN evaluation_key TEXT;
ALTER TABLE queue ADD COLUMN watch_epochs BIGINT;
ALTER TABLE queue ADD COLUMN curve TEXT;
ALTER TABLE queue ADD COLUMN verdict_epochs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN verdict_stop BOOLEAN NOT NULL DEFAULT false;
"#
        .into(),
    ]
}

/// Whether `--db` names a PostgreSQL store rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL without its password (`user:secret@host` → `user:***@host`, `password=…` → `***`),
/// for messages and logs.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find('/').map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(start) = out.find("password=") {
        let value_start = start + "password=".len();
        let value_end = out[value_start..].find('&').map_or(out.len(), |i| value_start + i);
        out.replace_range(value_start..value_end, "***");
    }
    out
}

/// Connection attempts, with the wait before each retry.
const RETRY_WAITS: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

pub struct PgStore {
    client: Mutex<Client>,
}

impl PgStore {
    /// Connects (retrying with backoff for about 8 s) and brings the schema up to date.
    pub fn connect(url: &str) -> anyhow::Result<PgStore> {
        let config: postgres::Config = url
            .parse()
            .with_context(|| format!("{} is not a valid PostgreSQL URL", redact(url)))?;
        let mut attempt = 0;
        let client = loop {
            match config.connect(NoTls) {
                Ok(client) => break client,
                Err(e) if attempt < RETRY_WAITS.len() => {
                    tracing::debug!("connecting to {}: {e}; retrying", redact(url));
                    std::thread::sleep(RETRY_WAITS[attempt]);
                    attempt += 1;
                }
                Err(e) => anyhow::bail!(
                    "cannot connect to the PostgreSQL store {} after {} attempts: {e}; check that the server runs, the database exists (createdb) and the URL is right",
                    redact(url),
                    attempt + 1
                ),
            }
        };
        let store = PgStore {
            client: Mutex::new(client),
        };
        store
            .migrate()
            .with_context(|| format!("preparing the PostgreSQL store {}", redact(url)))?;
        Ok(store)
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies the migrations this database lacks, under an advisory lock so that workers
    /// starting together migrate once.
    fn migrate(&self) -> anyhow::Result<()> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(7460521)", &[])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS nas_schema_version (version BIGINT NOT NULL)")?;
        let current: i64 = match tx.query_opt("SELECT version FROM nas_schema_version", &[])? {
            Some(row) => row.get(0),
            None => {
                tx.execute("INSERT INTO nas_schema_version VALUES (0)", &[])?;
                0
            }
        };
        anyhow::ensure!(
            current as usize <= SCHEMA_VERSION,
            "the store has schema version {current}, newer than this nas-host's {SCHEMA_VERSION}; use a newer nas-host"
        );
        for (version, sql) in migrations().iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql)
                .with_context(|| format!("migrating the store to schema version {}", version + 1))?;
            tx.execute("UPDATE nas_schema_version SET version = $1", &[&(version as i64 + 1)])?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn run_from_row(row: &Row) -> RunRecord {
    let plugin = |prefix: &str| PluginRecord {
        name: row.get(format!("{prefix}_name").as_str()),
        version: row.get(format!("{prefix}_version").as_str()),
        path: row.get(format!("{prefix}_path").as_str()),
        sha256: row.get(format!("{prefix}_sha256").as_str()),
    };
    RunRecord {
        id: row.get("id"),
        created_at: row.get("created_at"),
        status: row.get("status"),
        error: row.get("error"),
        config_toml: row.get("config_toml"),
        dataset: row.get("dataset"),
        evaluator: row.get("evaluator"),
        seed: row.get::<_, i64>("seed") as u64,
        episodes_target: row.get::<_, i64>("episodes_target") as usize,
        episodes_done: row.get::<_, i64>("episodes_done") as usize,
        agent: plugin("agent"),
        reward: plugin("reward"),
        assessor: row
            .get::<_, Option<String>>("assessor_name")
            .map(|_| plugin("assessor")),
        wall_seconds: row.get("wall_seconds"),
        device: row.get("device"),
        no_cache: row.get("no_cache"),
    }
}

const RUN_COLUMNS: &str = "*, (SELECT COUNT(*) FROM episodes e WHERE e.run_id = runs.id) AS episodes_done";

fn evaluation_from_row(row: &Row) -> CachedEvaluation {
    CachedEvaluation {
        id: row.get("id"),
        outcome: Outcome {
            accuracy: row.get("accuracy"),
            params: row.get::<_, i64>("params") as u64,
            seconds: row.get("seconds"),
            failure: row.get("failure"),
            transient: row.get("transient"),
            curve: super::curve_from(row.get("curve"), row.get("stopped"), row.get("measure_seconds")),
        },
    }
}

fn metrics_text(metrics: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Object(metrics.clone()).to_string()
}

fn insert_evaluation_on(tx: &mut impl postgres::GenericClient, e: &NewEvaluation<'_>) -> anyhow::Result<i64> {
    let (origin_run, origin_episode) = (e.origin.map(|o| o.0), e.origin.map(|o| o.1 as i64));
    let cache_key = super::stored_key(e.cache_key, e.outcome, e.origin);
    let row = tx.query_one(
        &format!(
            "INSERT INTO evaluations (cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth, seconds, failure, transient, origin_run, origin_episode, curve, stopped, measure_seconds)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (cache_key) DO UPDATE SET accuracy = excluded.accuracy, params = excluded.params,
                seconds = excluded.seconds, failure = excluded.failure, transient = excluded.transient,
                origin_run = excluded.origin_run, origin_episode = excluded.origin_episode,
                curve = excluded.curve, stopped = excluded.stopped, measure_seconds = excluded.measure_seconds,
                created_at = {NOW}
             RETURNING id"
        ),
        &[
            &&*cache_key,
            &e.architecture,
            &e.dataset,
            &e.evaluator,
            &e.protocol_json,
            &e.outcome.accuracy,
            &(e.outcome.params as i64),
            &(e.depth as i64),
            &e.outcome.seconds,
            &e.outcome.failure,
            &e.outcome.transient,
            &origin_run,
            &origin_episode,
            &super::curve_text(e.outcome),
            &e.outcome.curve.stopped,
            &e.outcome.curve.measure_seconds,
        ],
    )?;
    Ok(row.get(0))
}

fn save_checkpoint(tx: &mut Transaction<'_>, run: i64, agent_state: &[u8], designed: usize) -> anyhow::Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO checkpoints (run_id, episodes, agent_state) VALUES ($1, $2, $3)
             ON CONFLICT (run_id) DO UPDATE SET episodes = excluded.episodes, agent_state = excluded.agent_state, saved_at = {NOW}"
        ),
        &[&run, &(designed as i64), &agent_state],
    )?;
    Ok(())
}

impl RunStore for PgStore {
    fn schema_version(&self) -> anyhow::Result<usize> {
        let row = self.client().query_one("SELECT version FROM nas_schema_version", &[])?;
        Ok(row.get::<_, i64>(0) as usize)
    }

    fn create_run(&self, run: &NewRun<'_>) -> anyhow::Result<i64> {
        let row = self.client().query_one(
            "INSERT INTO runs (status, config_toml, dataset, evaluator, seed, episodes_target,
                agent_name, agent_version, agent_path, agent_sha256,
                reward_name, reward_version, reward_path, reward_sha256, device, no_cache,
                assessor_name, assessor_version, assessor_path, assessor_sha256)
             VALUES ('running', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id",
            &[
                &run.config_toml,
                &run.dataset,
                &run.evaluator,
                &(run.seed as i64),
                &(run.episodes_target as i64),
                &run.agent.name,
                &run.agent.version,
                &run.agent.path,
                &run.agent.sha256,
                &run.reward.name,
                &run.reward.version,
                &run.reward.path,
                &run.reward.sha256,
                &run.device,
                &run.no_cache,
                &run.assessor.map(|a| &a.name),
                &run.assessor.map(|a| &a.version),
                &run.assessor.map(|a| &a.path),
                &run.assessor.map(|a| &a.sha256),
            ],
        )?;
        Ok(row.get(0))
    }

    fn run(&self, id: i64) -> anyhow::Result<RunRecord> {
        self.client()
            .query_opt(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"), &[&id])?
            .map(|row| run_from_row(&row))
            .ok_or_else(|| anyhow::anyhow!("no run {id} in this store; `nas-host runs` lists the runs"))
    }

    fn runs(&self) -> anyhow::Result<Vec<RunRecord>> {
        let rows = self
            .client()
            .query(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"), &[])?;
        Ok(rows.iter().map(run_from_row).collect())
    }

    fn set_status(&self, run: i64, status: &str, error: Option<&str>) -> anyhow::Result<()> {
        let finished = status != "running";
        self.client().execute(
            &format!(
                "UPDATE runs SET status = $2, error = $3, finished_at = CASE WHEN $4 THEN {NOW} ELSE NULL END WHERE id = $1"
            ),
            &[&run, &status, &error, &finished],
        )?;
        Ok(())
    }

    fn set_episodes_target(&self, run: i64, episodes: usize) -> anyhow::Result<()> {
        self.client().execute(
            "UPDATE runs SET episodes_target = $2 WHERE id = $1",
            &[&run, &(episodes as i64)],
        )?;
        Ok(())
    }

    fn set_run_environment(&self, run: i64, device: &str, no_cache: bool) -> anyhow::Result<()> {
        self.client().execute(
            "UPDATE runs SET device = $2, no_cache = $3 WHERE id = $1",
            &[&run, &device, &no_cache],
        )?;
        Ok(())
    }

    fn add_wall_seconds(&self, run: i64, seconds: f64) -> anyhow::Result<()> {
        self.client().execute(
            "UPDATE runs SET wall_seconds = wall_seconds + $2 WHERE id = $1",
            &[&run, &seconds],
        )?;
        Ok(())
    }

    fn cached_evaluation(&self, cache_key: &str) -> anyhow::Result<Option<CachedEvaluation>> {
        Ok(self
            .client()
            .query_opt(
                "SELECT * FROM evaluations WHERE cache_key = $1 AND NOT transient AND NOT stopped",
                &[&cache_key],
            )?
            .map(|row| evaluation_from_row(&row)))
    }

    fn evaluation_of_episode(
        &self,
        cache_key: &str,
        run: i64,
        episode: usize,
    ) -> anyhow::Result<Option<CachedEvaluation>> {
        Ok(self
            .client()
            .query_opt(
                "SELECT * FROM evaluations WHERE cache_key IN ($1, $4) AND origin_run = $2 AND origin_episode = $3",
                &[
                    &cache_key,
                    &run,
                    &(episode as i64),
                    &super::stopped_key(cache_key, run, episode),
                ],
            )?
            .map(|row| evaluation_from_row(&row)))
    }

    fn evaluation(&self, id: i64) -> anyhow::Result<CachedEvaluation> {
        self.client()
            .query_opt("SELECT * FROM evaluations WHERE id = $1", &[&id])?
            .map(|row| evaluation_from_row(&row))
            .ok_or_else(|| anyhow::anyhow!("no evaluation {id} in this store"))
    }

    fn insert_evaluation(&self, evaluation: &NewEvaluation<'_>) -> anyhow::Result<i64> {
        insert_evaluation_on(&mut *self.client(), evaluation)
    }

    fn commit_episodes(
        &mut self,
        run: i64,
        episodes: &[(EpisodeRecord, i64)],
        agent_state: &[u8],
        designed: usize,
    ) -> anyhow::Result<()> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        for (episode, evaluation_id) in episodes {
            tx.execute(
                "INSERT INTO episodes (run_id, idx, env, architecture, reward, accuracy, params, depth, evaluation_id, cache_hit, metrics, failure, reported)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    &run,
                    &(episode.index as i64),
                    &(episode.env as i64),
                    &episode.architecture,
                    &episode.reward,
                    &episode.accuracy,
                    &(episode.params as i64),
                    &(episode.depth as i64),
                    evaluation_id,
                    &episode.cache_hit,
                    &metrics_text(&episode.metrics),
                    &episode.failure,
                    &(episode.reported as i64),
                ],
            )?;
            tx.execute(
                "DELETE FROM in_flight WHERE run_id = $1 AND idx = $2",
                &[&run, &(episode.index as i64)],
            )?;
        }
        save_checkpoint(&mut tx, run, agent_state, designed)?;
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
        let mut client = self.client();
        let mut tx = client.transaction()?;
        tx.execute(
            "INSERT INTO in_flight (run_id, idx, env, architecture, metrics) VALUES ($1, $2, $3, $4, $5)",
            &[
                &run,
                &(design.episode as i64),
                &(design.env as i64),
                &design.architecture,
                &metrics_text(&design.metrics),
            ],
        )?;
        save_checkpoint(&mut tx, run, agent_state, designed)?;
        tx.commit()?;
        Ok(())
    }

    fn in_flight(&self, run: i64) -> anyhow::Result<Vec<InFlightDesign>> {
        let rows = self
            .client()
            .query("SELECT * FROM in_flight WHERE run_id = $1 ORDER BY idx", &[&run])?;
        Ok(rows
            .iter()
            .map(|r| InFlightDesign {
                episode: r.get::<_, i64>("idx") as usize,
                env: r.get::<_, i64>("env") as u32,
                architecture: r.get("architecture"),
                metrics: serde_json::from_str(r.get("metrics")).unwrap_or_default(),
            })
            .collect())
    }

    fn checkpoint(&self, run: i64) -> anyhow::Result<Option<(usize, Vec<u8>)>> {
        Ok(self
            .client()
            .query_opt(
                "SELECT episodes, agent_state FROM checkpoints WHERE run_id = $1",
                &[&run],
            )?
            .map(|r| (r.get::<_, i64>(0) as usize, r.get(1))))
    }

    fn episodes(&self, run: i64) -> anyhow::Result<Vec<EpisodeRecord>> {
        let rows = self.client().query(
            "SELECT e.*, COALESCE(v.stopped, false) AS child_stopped FROM episodes e
                 LEFT JOIN evaluations v ON v.id = e.evaluation_id WHERE e.run_id = $1 ORDER BY e.idx",
            &[&run],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let index = r.get::<_, i64>("idx") as usize;
                EpisodeRecord {
                    index,
                    env: r.get::<_, i64>("env") as u32,
                    architecture: r.get("architecture"),
                    reward: r.get("reward"),
                    accuracy: r.get("accuracy"),
                    params: r.get::<_, i64>("params") as u64,
                    depth: r.get::<_, i64>("depth") as usize,
                    cache_hit: r.get("cache_hit"),
                    failure: r.get("failure"),
                    metrics: serde_json::from_str(r.get("metrics")).unwrap_or_default(),
                    reported: r.get::<_, Option<i64>>("reported").map_or(index, |x| x as usize),
                    stopped: r.get("child_stopped"),
                }
            })
            .collect())
    }

    fn replace_eval_samples(&mut self, run: i64, samples: &[EvalSampleRow]) -> anyhow::Result<()> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        tx.execute("DELETE FROM eval_samples WHERE run_id = $1", &[&run])?;
        for (i, s) in samples.iter().enumerate() {
            tx.execute(
                "INSERT INTO eval_samples (run_id, sample, architecture, accuracy, params, depth, evaluation_id, cache_hit, train_seed, failure)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &run,
                    &(i as i64),
                    &s.architecture,
                    &s.accuracy,
                    &(s.params as i64),
                    &(s.depth as i64),
                    &s.evaluation_id,
                    &s.cache_hit,
                    &s.train_seed.map(|x| x as i64),
                    &s.failure,
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn eval_samples(&self, run: i64) -> anyhow::Result<Vec<EvalSampleRow>> {
        let rows = self
            .client()
            .query("SELECT * FROM eval_samples WHERE run_id = $1 ORDER BY sample", &[&run])?;
        Ok(rows
            .iter()
            .map(|r| EvalSampleRow {
                architecture: r.get("architecture"),
                accuracy: r.get("accuracy"),
                params: r.get::<_, i64>("params") as u64,
                depth: r.get::<_, i64>("depth") as usize,
                evaluation_id: r.get("evaluation_id"),
                cache_hit: r.get("cache_hit"),
                train_seed: r.get::<_, Option<i64>>("train_seed").map(|x| x as u64),
                failure: r.get("failure"),
            })
            .collect())
    }

    fn episode_evaluations(&self, run: i64) -> anyhow::Result<Vec<i64>> {
        let rows = self.client().query(
            "SELECT evaluation_id FROM episodes WHERE run_id = $1 ORDER BY idx",
            &[&run],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn keep_weights(&self, run: i64, evaluation_id: i64, safetensors: &[u8]) -> anyhow::Result<()> {
        self.client().execute(
            "INSERT INTO kept_weights (evaluation_id, run_id, safetensors) VALUES ($1, $2, $3)
             ON CONFLICT (evaluation_id) DO UPDATE SET run_id = excluded.run_id, safetensors = excluded.safetensors",
            &[&evaluation_id, &run, &safetensors],
        )?;
        Ok(())
    }

    fn prune_weights(&self, run: i64, keep: &[i64]) -> anyhow::Result<()> {
        self.client().execute(
            "DELETE FROM kept_weights WHERE run_id = $1 AND NOT (evaluation_id = ANY($2))",
            &[&run, &keep],
        )?;
        Ok(())
    }

    fn kept_weights(&self, evaluation_id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .client()
            .query_opt(
                "SELECT safetensors FROM kept_weights WHERE evaluation_id = $1",
                &[&evaluation_id],
            )?
            .map(|r| r.get(0)))
    }
}

fn claimed_from_row(r: &Row) -> ClaimedJob {
    let origin_run: Option<i64> = r.get("origin_run");
    let origin_episode: Option<i64> = r.get("origin_episode");
    ClaimedJob {
        id: r.get("id"),
        attempt: r.get::<_, i64>("attempt") as u32,
        cache_key: r
            .get::<_, Option<String>>("evaluation_key")
            .unwrap_or_else(|| r.get("cache_key")),
        architecture: r.get("architecture"),
        dataset: r.get("dataset"),
        evaluator: r.get("evaluator"),
        protocol_json: r.get("protocol"),
        origin: origin_run.zip(origin_episode.map(|e| e as usize)),
        keep_weights: r.get("keep_weights"),
        data_sha256: r.get("data_sha256"),
        watch_epochs: r.get::<_, Option<i64>>("watch_epochs").map(|e| e as usize),
    }
}

impl JobQueue for PgStore {
    fn enqueue(&self, job: &NewJob<'_>) -> anyhow::Result<i64> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        let (origin_run, origin_episode) = (job.origin.map(|o| o.0), job.origin.map(|o| o.1 as i64));
        let key = job.queue_key();
        let inserted = tx.query_opt(
            "INSERT INTO queue (cache_key, architecture, dataset, evaluator, protocol, device,
                origin_run, origin_episode, keep_weights, status, queued_at, data_sha256,
                evaluation_key, watch_epochs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13)
             ON CONFLICT (cache_key) DO NOTHING RETURNING id",
            &[
                &key,
                &job.architecture,
                &job.dataset,
                &job.evaluator,
                &job.protocol_json,
                &job.device,
                &origin_run,
                &origin_episode,
                &job.keep_weights,
                &unix_now(),
                &job.data_sha256,
                &job.evaluation_key(),
                &job.watch_epochs.map(|e| e as i64),
            ],
        )?;
        let id = match inserted {
            Some(row) => row.get(0),
            None => {
                let row = tx.query_one("SELECT id, status FROM queue WHERE cache_key = $1 FOR UPDATE", &[&key])?;
                let (id, status): (i64, String) = (row.get(0), row.get(1));
                if status != "done" {
                    if job.keep_weights {
                        tx.execute("UPDATE queue SET keep_weights = true WHERE id = $1", &[&id])?;
                    }
                } else {
                    tx.execute(
                        "UPDATE queue SET status = 'pending', owner = NULL, attempt = 0, lease_until = NULL,
                            evaluation_id = NULL, weights = NULL, last_error = NULL, origin_run = $2,
                            origin_episode = $3, keep_weights = $4, queued_at = $5, started_at = NULL,
                            finished_at = NULL, data_sha256 = $6, curve = NULL, verdict_epochs = 0,
                            verdict_stop = false
                         WHERE id = $1",
                        &[
                            &id,
                            &origin_run,
                            &origin_episode,
                            &job.keep_weights,
                            &unix_now(),
                            &job.data_sha256,
                        ],
                    )?;
                }
                id
            }
        };
        tx.commit()?;
        Ok(id)
    }

    fn claim(&self, owner: &str, device: &str, lease_secs: f64) -> anyhow::Result<Option<ClaimedJob>> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        let now = unix_now();
        loop {
            // Rows another worker is claiming right now are skipped, not waited for.
            let Some(row) = tx.query_opt(
                "SELECT * FROM queue
                 WHERE (status = 'pending' OR (status = 'running' AND lease_until < $1))
                   AND (device = $2 OR device = 'none')
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&now, &device],
            )?
            else {
                tx.commit()?;
                return Ok(None);
            };
            let mut job = claimed_from_row(&row);
            let status: String = row.get("status");
            let previous_owner: Option<String> = row.get("owner");
            let lost = match (status.as_str(), previous_owner) {
                ("running", Some(previous)) => Some(format!("worker {previous} stopped heartbeating")),
                _ => row.get("last_error"),
            };
            if job.attempt >= MAX_ATTEMPTS {
                let outcome = given_up(lost.as_deref());
                let depth = job.architecture.split_whitespace().count();
                let evaluation_id = insert_evaluation_on(&mut tx, &job.evaluation(depth, &outcome))?;
                tx.execute(
                    "UPDATE queue SET status = 'done', owner = NULL, lease_until = NULL, evaluation_id = $2,
                        finished_at = $3 WHERE id = $1",
                    &[&job.id, &evaluation_id, &now],
                )?;
                tracing::warn!(
                    "gave up on `{}`: {}",
                    job.architecture,
                    outcome.failure.unwrap_or_default()
                );
                continue;
            }
            job.attempt += 1;
            tx.execute(
                "UPDATE queue SET status = 'running', owner = $2, attempt = $3, lease_until = $4,
                    started_at = $5, last_error = $6, curve = NULL, verdict_epochs = 0, verdict_stop = false
                 WHERE id = $1",
                &[&job.id, &owner, &(job.attempt as i64), &(now + lease_secs), &now, &lost],
            )?;
            tx.commit()?;
            return Ok(Some(job));
        }
    }

    fn renew_lease(&self, job: &ClaimedJob, owner: &str, lease_secs: f64) -> anyhow::Result<bool> {
        let updated = self.client().execute(
            "UPDATE queue SET lease_until = $4 WHERE id = $1 AND owner = $2 AND attempt = $3 AND status = 'running'",
            &[&job.id, &owner, &(job.attempt as i64), &(unix_now() + lease_secs)],
        )?;
        Ok(updated == 1)
    }

    fn complete(
        &self,
        job: &ClaimedJob,
        owner: &str,
        evaluation: &NewEvaluation<'_>,
        weights: Option<&[u8]>,
    ) -> anyhow::Result<Option<i64>> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        let holds = tx.query_opt(
            "SELECT id FROM queue WHERE id = $1 AND owner = $2 AND attempt = $3 AND status = 'running' FOR UPDATE",
            &[&job.id, &owner, &(job.attempt as i64)],
        )?;
        if holds.is_none() {
            tx.commit()?;
            return Ok(None);
        }
        let evaluation_id = insert_evaluation_on(&mut tx, evaluation)?;
        tx.execute(
            "UPDATE queue SET status = 'done', owner = NULL, lease_until = NULL, evaluation_id = $2,
                weights = $3, finished_at = $4 WHERE id = $1",
            &[&job.id, &evaluation_id, &weights, &unix_now()],
        )?;
        tx.commit()?;
        Ok(Some(evaluation_id))
    }

    fn job_states(&self, ids: &[i64]) -> anyhow::Result<Vec<(i64, JobState)>> {
        let ids = ids.to_vec();
        let rows = self.client().query(
            "SELECT id, status, owner, evaluation_id FROM queue WHERE id = ANY($1)",
            &[&ids],
        )?;
        ids.iter()
            .map(|&id| {
                let row = rows
                    .iter()
                    .find(|r| r.get::<_, i64>(0) == id)
                    .ok_or_else(|| anyhow::anyhow!("job {id} vanished from the queue"))?;
                let status: String = row.get(1);
                let state = match (status.as_str(), row.get::<_, Option<i64>>(3)) {
                    ("done", Some(evaluation_id)) => JobState::Done { evaluation_id },
                    ("running", _) => JobState::Running {
                        owner: row.get::<_, Option<String>>(2).unwrap_or_default(),
                    },
                    _ => JobState::Pending,
                };
                Ok((id, state))
            })
            .collect()
    }

    fn take_job_weights(&self, job: i64) -> anyhow::Result<Option<Vec<u8>>> {
        let mut client = self.client();
        let weights: Option<Vec<u8>> = client
            .query_opt("SELECT weights FROM queue WHERE id = $1", &[&job])?
            .and_then(|r| r.get(0));
        if weights.is_some() {
            client.execute("UPDATE queue SET weights = NULL WHERE id = $1", &[&job])?;
        }
        Ok(weights)
    }

    fn requeue_owner(&self, owner: &str, reason: &str) -> anyhow::Result<usize> {
        Ok(self.client().execute(
            "UPDATE queue SET status = 'pending', owner = NULL, lease_until = NULL, last_error = $2
             WHERE status = 'running' AND owner = $1",
            &[&owner, &reason],
        )? as usize)
    }

    fn queue_counts(&self) -> anyhow::Result<QueueCounts> {
        let row = self.client().query_one(
            "SELECT COUNT(*) FILTER (WHERE status = 'pending' OR (status = 'running' AND lease_until < $1)),
                    COUNT(*) FILTER (WHERE status = 'running' AND lease_until >= $1)
             FROM queue WHERE status != 'done'",
            &[&unix_now()],
        )?;
        Ok(QueueCounts {
            pending: row.get::<_, i64>(0) as usize,
            running: row.get::<_, i64>(1) as usize,
        })
    }

    fn register_worker(&self, w: &WorkerRow) -> anyhow::Result<()> {
        self.client().execute(
            "INSERT INTO workers (name, host, pid, device, threads, started_at, seen_at, job_id, trained, stopped)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, 0, false)
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, device = excluded.device,
                threads = excluded.threads, started_at = excluded.started_at, seen_at = excluded.seen_at,
                job_id = NULL, trained = 0, stopped = false",
            &[
                &w.name,
                &w.host,
                &(w.pid as i64),
                &w.device,
                &(w.threads as i64),
                &w.started_at,
                &w.seen_at,
            ],
        )?;
        Ok(())
    }

    fn worker_seen(&self, name: &str, job: Option<i64>, finished_one: bool) -> anyhow::Result<()> {
        self.client().execute(
            "UPDATE workers SET seen_at = $2, job_id = $3, trained = trained + $4 WHERE name = $1",
            &[&name, &unix_now(), &job, &(finished_one as i64)],
        )?;
        Ok(())
    }

    fn worker_stopped(&self, name: &str) -> anyhow::Result<()> {
        self.client().execute(
            "UPDATE workers SET stopped = true, job_id = NULL, seen_at = $2 WHERE name = $1",
            &[&name, &unix_now()],
        )?;
        Ok(())
    }

    fn workers(&self, since: f64) -> anyhow::Result<Vec<WorkerRow>> {
        let rows = self.client().query(
            "SELECT w.*, q.architecture AS job_architecture FROM workers w
             LEFT JOIN queue q ON q.id = w.job_id
             WHERE NOT w.stopped AND w.seen_at >= $1 ORDER BY w.name",
            &[&since],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let job_id: Option<i64> = r.get("job_id");
                let job_architecture: Option<String> = r.get("job_architecture");
                WorkerRow {
                    name: r.get("name"),
                    host: r.get("host"),
                    pid: r.get::<_, i64>("pid") as u32,
                    device: r.get("device"),
                    threads: r.get::<_, i64>("threads") as usize,
                    started_at: r.get("started_at"),
                    seen_at: r.get("seen_at"),
                    job: job_id.zip(job_architecture),
                    trained: r.get::<_, i64>("trained") as usize,
                    stopped: r.get("stopped"),
                }
            })
            .collect())
    }

    fn post_curve(&self, job: &ClaimedJob, owner: &str, accuracy: &[f64]) -> anyhow::Result<bool> {
        let updated = self.client().execute(
            "UPDATE queue SET curve = $4 WHERE id = $1 AND owner = $2 AND attempt = $3 AND status = 'running'",
            &[
                &job.id,
                &owner,
                &(job.attempt as i64),
                &serde_json::to_string(accuracy)?,
            ],
        )?;
        Ok(updated == 1)
    }

    fn awaited_verdict(&self, job: &ClaimedJob, owner: &str, epochs: usize) -> anyhow::Result<Awaited> {
        let row = self.client().query_opt(
            "SELECT verdict_epochs, verdict_stop FROM queue
             WHERE id = $1 AND owner = $2 AND attempt = $3 AND status = 'running'",
            &[&job.id, &owner, &(job.attempt as i64)],
        )?;
        Ok(Awaited::of(
            row.map(|r| (r.get::<_, i64>(0) as usize, r.get(1))),
            epochs,
        ))
    }

    fn curves_to_judge(&self, ids: &[i64]) -> anyhow::Result<Vec<CurveToJudge>> {
        let rows = self.client().query(
            "SELECT id, attempt, curve, verdict_epochs FROM queue
             WHERE id = ANY($1) AND status = 'running' AND curve IS NOT NULL ORDER BY id",
            &[&ids.to_vec()],
        )?;
        Ok(curves_waiting(rows.iter().map(|r| {
            (
                r.get::<_, i64>(0),
                r.get::<_, i64>(1) as u32,
                r.get::<_, String>(2),
                r.get::<_, i64>(3) as usize,
            )
        })))
    }

    fn give_verdict(&self, curve: &CurveToJudge, stop: bool) -> anyhow::Result<()> {
        self.client().execute(
            "UPDATE queue SET verdict_epochs = $3, verdict_stop = $4
             WHERE id = $1 AND attempt = $2 AND status = 'running'",
            &[
                &curve.job,
                &(curve.attempt as i64),
                &(curve.accuracy.len() as i64),
                &stop,
            ],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://nas:s3cret@db.lab/nas"),
            "postgres://nas:***@db.lab/nas"
        );
        assert_eq!(redact("postgres://nas@db.lab/nas"), "postgres://nas@db.lab/nas");
        assert_eq!(
            redact("postgresql:///nas?host=/tmp&password=s3cret&user=x"),
            "postgresql:///nas?host=/tmp&password=***&user=x"
        );
        assert!(is_postgres_url("postgresql://x/y") && !is_postgres_url("runs/nas.sqlite"));
    }
}
