//! The PostgreSQL run store (`--db postgres://USER@HOST/DB`): the SQLite store's schema and
//! migrations in PostgreSQL's dialect, for searches whose workers run on several machines (as
//! Optuna's RDB storage serves distributed studies). Workers claim children with row locks that
//! skip locked rows (`FOR UPDATE SKIP LOCKED`); everything else matches the SQLite store.

use postgres::{Row, Transaction};

mod connection;
mod queue;
mod schema;
mod security;

use connection::commit;
pub use connection::{has_password, is_postgres_url, redact, PgStore};

use crate::{
    cost_columns, cost_from, cost_text, curve_from, curve_text, stored_key, CachedEvaluation, EpisodeEvaluations,
    InFlightDesign, NewEvaluation, NewRun, PluginRecord, RunRecord, RunStore, TableRecord,
};
use nas_core::record::{EpisodeRecord, EvalSampleRow, Outcome};

/// SQLite's `datetime('now')` format, so both stores show times alike.
pub(super) const NOW: &str = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')";

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
        table: row.get::<_, Option<String>>("table_sha256").map(|sha256| TableRecord {
            sha256,
            surrogate_quality: row.get("surrogate_quality"),
        }),
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
            curve: curve_from(row.get("curve"), row.get("stopped"), row.get("measure_seconds")),
            predicted: row.get("predicted"),
            cost: cost_from(row.get("cost")),
        },
    }
}

fn metrics_text(metrics: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Object(metrics.clone()).to_string()
}

/// Records a finished evaluation as a new row: evaluations are immutable once written.
fn insert_evaluation_on(tx: &mut impl postgres::GenericClient, e: &NewEvaluation<'_>) -> anyhow::Result<i64> {
    let (origin_run, origin_episode) = (e.origin.map(|o| o.0), e.origin.map(|o| o.1 as i64));
    let cache_key = stored_key(e.cache_key, e.outcome, e.origin);
    let (mult_adds, activation_bytes, latency_ms, latency_p90_ms) = cost_columns(e.outcome);
    let row = tx.query_one(
        "INSERT INTO evaluations (cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth, seconds, failure, transient, origin_run, origin_episode, curve, stopped, measure_seconds, predicted, mult_adds, activation_bytes, latency_ms, latency_p90_ms, cost)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
         RETURNING id",
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
            &curve_text(e.outcome),
            &e.outcome.curve.stopped,
            &e.outcome.curve.measure_seconds,
            &e.outcome.predicted,
            &mult_adds,
            &activation_bytes,
            &latency_ms,
            &latency_p90_ms,
            &cost_text(e.outcome),
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
        self.idempotent(|client| {
            let row = client.query_one("SELECT version FROM nas_schema_version", &[])?;
            Ok(row.get::<_, i64>(0) as usize)
        })
    }

    fn create_run(&self, run: &NewRun<'_>) -> anyhow::Result<i64> {
        self.retry_before_commit(|client, sent| {
        let mut tx = client.transaction()?;
        let row = tx.query_one(
            "INSERT INTO runs (status, config_toml, dataset, evaluator, seed, episodes_target,
                agent_name, agent_version, agent_path, agent_sha256,
                reward_name, reward_version, reward_path, reward_sha256, device, no_cache,
                assessor_name, assessor_version, assessor_path, assessor_sha256, table_sha256, surrogate_quality)
             VALUES ('running', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
             RETURNING id",
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
                &run.table.map(|t| &t.sha256),
                &run.table.and_then(|t| t.surrogate_quality.as_ref()),
            ],
        )?;
        commit(tx, sent)?;
        Ok(row.get(0))
    })
    }

    fn run(&self, id: i64) -> anyhow::Result<RunRecord> {
        self.idempotent(|client| {
            client
                .query_opt(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"), &[&id])?
                .map(|row| run_from_row(&row))
                .ok_or_else(|| anyhow::anyhow!("no run {id} in this store; `nas-host runs` lists the runs"))
        })
    }

    fn runs(&self) -> anyhow::Result<Vec<RunRecord>> {
        self.idempotent(|client| {
            let rows = client.query(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"), &[])?;
            Ok(rows.iter().map(run_from_row).collect())
        })
    }

    fn set_status(&self, run: i64, status: &str, error: Option<&str>) -> anyhow::Result<()> {
        self.idempotent(|client| {
        let finished = status != "running";
        client.execute(
            &format!(
                "UPDATE runs SET status = $2, error = $3, finished_at = CASE WHEN $4 THEN {NOW} ELSE NULL END WHERE id = $1"
            ),
            &[&run, &status, &error, &finished],
        )?;
        Ok(())
    })
    }

    fn set_episodes_target(&self, run: i64, episodes: usize) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                "UPDATE runs SET episodes_target = $2 WHERE id = $1",
                &[&run, &(episodes as i64)],
            )?;
            Ok(())
        })
    }

    fn set_run_environment(&self, run: i64, device: &str, no_cache: bool) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                "UPDATE runs SET device = $2, no_cache = $3 WHERE id = $1",
                &[&run, &device, &no_cache],
            )?;
            Ok(())
        })
    }

    fn set_run_table(&self, run: i64, table: &TableRecord) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                "UPDATE runs SET table_sha256 = $2, surrogate_quality = $3 WHERE id = $1",
                &[&run, &table.sha256, &table.surrogate_quality],
            )?;
            Ok(())
        })
    }

    fn add_wall_seconds(&self, run: i64, seconds: f64) -> anyhow::Result<()> {
        self.retry_before_commit(|client, sent| {
            let mut tx = client.transaction()?;
            tx.execute(
                "UPDATE runs SET wall_seconds = wall_seconds + $2 WHERE id = $1",
                &[&run, &seconds],
            )?;
            commit(tx, sent)?;
            Ok(())
        })
    }

    fn cached_evaluation(&self, cache_key: &str) -> anyhow::Result<Option<CachedEvaluation>> {
        self.idempotent(|client| {
            Ok(client
                .query_opt(
                    "SELECT * FROM evaluations WHERE cache_key = $1 AND NOT transient AND NOT stopped
                 ORDER BY id DESC LIMIT 1",
                    &[&cache_key],
                )?
                .map(|row| evaluation_from_row(&row)))
        })
    }

    fn evaluation_of_episode(
        &self,
        cache_key: &str,
        run: i64,
        episode: usize,
    ) -> anyhow::Result<Option<CachedEvaluation>> {
        self.idempotent(|client| {
            Ok(client
                .query_opt(
                    "SELECT * FROM evaluations WHERE cache_key IN ($1, $4) AND origin_run = $2 AND origin_episode = $3
                 ORDER BY id DESC LIMIT 1",
                    &[
                        &cache_key,
                        &run,
                        &(episode as i64),
                        &super::stopped_key(cache_key, run, episode),
                    ],
                )?
                .map(|row| evaluation_from_row(&row)))
        })
    }

    fn evaluation(&self, id: i64) -> anyhow::Result<CachedEvaluation> {
        self.idempotent(|client| {
            client
                .query_opt("SELECT * FROM evaluations WHERE id = $1", &[&id])?
                .map(|row| evaluation_from_row(&row))
                .ok_or_else(|| anyhow::anyhow!("no evaluation {id} in this store"))
        })
    }

    fn insert_evaluation(&self, evaluation: &NewEvaluation<'_>) -> anyhow::Result<i64> {
        self.retry_before_commit(|client, sent| {
            let mut tx = client.transaction()?;
            let id = insert_evaluation_on(&mut tx, evaluation)?;
            commit(tx, sent)?;
            Ok(id)
        })
    }

    fn commit_episodes(
        &mut self,
        run: i64,
        episodes: &[(EpisodeRecord, i64)],
        agent_state: &[u8],
        designed: usize,
    ) -> anyhow::Result<()> {
        self.retry_before_commit(|client, sent| {
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
        commit(tx, sent)?;
        Ok(())
    })
    }

    fn commit_design(
        &mut self,
        run: i64,
        design: &InFlightDesign,
        agent_state: &[u8],
        designed: usize,
    ) -> anyhow::Result<()> {
        self.retry_before_commit(|client, sent| {
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
            commit(tx, sent)?;
            Ok(())
        })
    }

    fn in_flight(&self, run: i64) -> anyhow::Result<Vec<InFlightDesign>> {
        self.idempotent(|client| {
            let rows = client.query("SELECT * FROM in_flight WHERE run_id = $1 ORDER BY idx", &[&run])?;
            Ok(rows
                .iter()
                .map(|r| InFlightDesign {
                    episode: r.get::<_, i64>("idx") as usize,
                    env: r.get::<_, i64>("env") as u32,
                    architecture: r.get("architecture"),
                    metrics: serde_json::from_str(r.get("metrics")).unwrap_or_default(),
                })
                .collect())
        })
    }

    fn checkpoint(&self, run: i64) -> anyhow::Result<Option<(usize, Vec<u8>)>> {
        self.idempotent(|client| {
            Ok(client
                .query_opt(
                    "SELECT episodes, agent_state FROM checkpoints WHERE run_id = $1",
                    &[&run],
                )?
                .map(|r| (r.get::<_, i64>(0) as usize, r.get(1))))
        })
    }

    fn episodes(&self, run: i64) -> anyhow::Result<Vec<EpisodeRecord>> {
        self.idempotent(|client| {
            let rows = client.query(
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
        })
    }

    fn replace_eval_samples(&mut self, run: i64, samples: &[EvalSampleRow]) -> anyhow::Result<()> {
        self.idempotent(|client| {
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
    })
    }

    fn eval_samples(&self, run: i64) -> anyhow::Result<Vec<EvalSampleRow>> {
        self.idempotent(|client| {
            let rows = client.query("SELECT * FROM eval_samples WHERE run_id = $1 ORDER BY sample", &[&run])?;
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
        })
    }

    fn episode_evaluations(&self, run: i64) -> anyhow::Result<EpisodeEvaluations> {
        self.idempotent(|client| {
            let rows = client.query("SELECT idx, evaluation_id FROM episodes WHERE run_id = $1", &[&run])?;
            Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as usize, r.get(1))).collect())
        })
    }

    fn keep_weights(&self, run: i64, evaluation_id: i64, safetensors: &[u8]) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                "INSERT INTO kept_weights (evaluation_id, run_id, safetensors) VALUES ($1, $2, $3)
             ON CONFLICT (run_id, evaluation_id) DO UPDATE SET safetensors = excluded.safetensors",
                &[&evaluation_id, &run, &safetensors],
            )?;
            Ok(())
        })
    }

    fn prune_weights(&self, run: i64, keep: &[i64]) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                "DELETE FROM kept_weights WHERE run_id = $1 AND NOT (evaluation_id = ANY($2))",
                &[&run, &keep],
            )?;
            Ok(())
        })
    }

    fn kept_weights(&self, run: i64, evaluation_id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        self.idempotent(|client| {
            Ok(client
                .query_opt(
                    "SELECT safetensors FROM kept_weights WHERE run_id = $1 AND evaluation_id = $2",
                    &[&run, &evaluation_id],
                )?
                .map(|r| r.get(0)))
        })
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
        assert_eq!(
            redact("host=db password=s3cret dbname=nas"),
            "host=db password=*** dbname=nas"
        );
        assert_eq!(
            redact("host=db password = 'a \\' b' dbname=nas"),
            "host=db password = *** dbname=nas"
        );
        assert_eq!(redact("pgsql://u:pw@h/db"), "pgsql://u:***@h/db");
        assert!(has_password("postgres://nas:s3cret@db.lab/nas"));
        assert!(has_password("postgresql:///nas?host=/tmp&password=s3cret"));
        assert!(!has_password("postgres://nas@db.lab/nas?sslmode=verify-full"));
    }
}
