//! The queue in SQLite: claims and results in `IMMEDIATE` transactions, so that one writer at a
//! time decides who holds a child.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{insert_evaluation_on, SqliteStore};
use std::sync::OnceLock;

use crate::queue::rules::Claim;
use crate::queue::{
    curves_waiting, rules, unix_now, Awaited, ClaimedJob, CurveToJudge, JobQueue, JobState, NewJob, OwnerGone,
    QueueCounts, WorkerRow,
};
use crate::NewEvaluation;

/// [`rules::lease_held`] in this backend's placeholders.
fn held() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| rules::lease_held(|n| format!("?{n}")))
}

/// [`rules::claimable`] in this backend's placeholders.
fn claimable() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| rules::claimable(|n| format!("?{n}")))
}

impl JobQueue for SqliteStore {
    fn enqueue(&self, job: &NewJob<'_>) -> anyhow::Result<i64> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let key = job.queue_key();
        let live: Option<i64> = tx
            .query_row(
                &format!(
                    "SELECT id FROM queue WHERE cache_key = ?1 AND {live}",
                    live = rules::LIVE
                ),
                [&key],
                |r| r.get(0),
            )
            .optional()?;
        let (origin_run, origin_episode) = (job.origin.map(|o| o.0), job.origin.map(|o| o.1 as i64));
        let id = match live {
            Some(id) => {
                if job.keep_weights {
                    tx.execute(
                        &format!("UPDATE queue SET {} WHERE id = ?1", rules::WEIGHTS_WANTED),
                        [id],
                    )?;
                }
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO queue (cache_key, architecture, dataset, evaluator, protocol, device,
                        origin_run, origin_episode, keep_weights, status, queued_at, data_sha256,
                        evaluation_key, watch_epochs, weight_takers, cost_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11, ?12, ?13, ?14, ?15)",
                    params![
                        key,
                        job.architecture,
                        job.dataset,
                        job.evaluator,
                        job.protocol_json,
                        job.device,
                        origin_run,
                        origin_episode,
                        job.keep_weights,
                        unix_now(),
                        job.data_sha256,
                        job.evaluation_key(),
                        job.watch_epochs.map(|e| e as i64),
                        i64::from(job.keep_weights),
                        job.cost_json
                    ],
                )?;
                tx.last_insert_rowid()
            }
        };
        tx.commit()?;
        Ok(id)
    }

    fn claim(&self, owner: &str, device: &str, lease_secs: f64) -> anyhow::Result<Option<ClaimedJob>> {
        rules::check_lease(lease_secs)?;
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let now = unix_now();
        loop {
            let candidate = tx
                .query_row(
                    &format!(
                        "SELECT * FROM queue
                     WHERE {claimable}
                     ORDER BY id LIMIT 1",
                        claimable = claimable()
                    ),
                    params![now, device],
                    |r| {
                        let origin_run: Option<i64> = r.get("origin_run")?;
                        let origin_episode: Option<i64> = r.get("origin_episode")?;
                        let evaluation_key: Option<String> = r.get("evaluation_key")?;
                        Ok((
                            ClaimedJob {
                                id: r.get("id")?,
                                attempt: r.get("attempt")?,
                                cache_key: evaluation_key.map_or_else(|| r.get("cache_key"), Ok)?,
                                architecture: r.get("architecture")?,
                                dataset: r.get("dataset")?,
                                evaluator: r.get("evaluator")?,
                                protocol_json: r.get("protocol")?,
                                origin: origin_run.zip(origin_episode.map(|e| e as usize)),
                                keep_weights: r.get("keep_weights")?,
                                data_sha256: r.get("data_sha256")?,
                                watch_epochs: r.get::<_, Option<i64>>("watch_epochs")?.map(|e| e as usize),
                                cost_json: r.get("cost_json")?,
                            },
                            r.get::<_, String>("status")?,
                            r.get::<_, Option<String>>("owner")?,
                            r.get::<_, Option<String>>("last_error")?,
                            r.get::<_, u32>("deaths")?,
                        ))
                    },
                )
                .optional()?;
            let Some((mut job, status, previous_owner, last_error, deaths)) = candidate else {
                tx.commit()?;
                return Ok(None);
            };
            let (deaths, lost) = match rules::claim(job.attempt, deaths, &status, previous_owner, last_error) {
                Claim::GiveUp(outcome) => {
                    let depth = job.architecture.split_whitespace().count();
                    let evaluation_id = insert_evaluation_on(&tx, &job.evaluation(depth, &outcome))?;
                    tx.execute(
                        &format!(
                            "UPDATE queue SET {released}, evaluation_id = ?2, finished_at = ?3 WHERE id = ?1",
                            released = rules::RELEASED
                        ),
                        params![job.id, evaluation_id, now],
                    )?;
                    tracing::warn!(
                        "gave up on `{}`: {}",
                        job.architecture,
                        outcome.failure.unwrap_or_default()
                    );
                    continue;
                }
                Claim::Take { attempt, deaths, lost } => {
                    job.attempt = attempt;
                    (deaths, lost)
                }
            };
            tx.execute(
                &format!(
                    "UPDATE queue SET status = 'running', owner = ?2, attempt = ?3, lease_until = ?4,
                        started_at = ?5, last_error = ?6, deaths = ?7, {claim_resets} WHERE id = ?1",
                    claim_resets = rules::CLAIM_RESETS
                ),
                params![job.id, owner, job.attempt, now + lease_secs, now, lost, deaths],
            )?;
            tx.commit()?;
            return Ok(Some(job));
        }
    }

    fn renew_lease(&self, job: &ClaimedJob, owner: &str, lease_secs: f64) -> anyhow::Result<bool> {
        rules::check_lease(lease_secs)?;
        let updated = self.conn.execute(
            &format!("UPDATE queue SET lease_until = ?4 WHERE {held}", held = held()),
            params![job.id, owner, job.attempt, unix_now() + lease_secs],
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
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let holds: Option<i64> = tx
            .query_row(
                &format!("SELECT id FROM queue WHERE {held}", held = held()),
                params![job.id, owner, job.attempt],
                |r| r.get(0),
            )
            .optional()?;
        if holds.is_none() {
            tx.commit()?;
            return Ok(None);
        }
        let evaluation_id = insert_evaluation_on(&tx, evaluation)?;
        let now = unix_now();
        tx.execute(
            &format!(
                "UPDATE queue SET {released}, evaluation_id = ?2,
                weights = ?3, finished_at = ?4 WHERE id = ?1",
                released = rules::RELEASED
            ),
            params![job.id, evaluation_id, weights, now],
        )?;
        tx.execute(
            &format!(
                "UPDATE queue SET weights = NULL WHERE {unwanted}",
                unwanted = rules::unwanted_weights(|n| format!("?{n}"))
            ),
            [now],
        )?;
        tx.commit()?;
        Ok(Some(evaluation_id))
    }

    fn job_states(&self, ids: &[i64]) -> anyhow::Result<Vec<(i64, JobState)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, owner, evaluation_id FROM queue WHERE id = ?1")?;
        let mut states = Vec::with_capacity(ids.len());
        for &id in ids {
            let state = stmt
                .query_row([id], |r| {
                    let status: String = r.get(0)?;
                    Ok(match (status.as_str(), r.get::<_, Option<i64>>(2)?) {
                        ("done", Some(evaluation_id)) => JobState::Done { evaluation_id },
                        ("running", _) => JobState::Running {
                            owner: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        },
                        _ => JobState::Pending,
                    })
                })
                .optional()?
                .ok_or_else(|| anyhow::anyhow!("job {id} vanished from the queue"))?;
            states.push((id, state));
        }
        Ok(states)
    }

    fn take_job_weights(&self, job: i64) -> anyhow::Result<Option<Vec<u8>>> {
        let weights: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT weights FROM queue WHERE id = ?1", [job], |r| r.get(0))
            .optional()?
            .flatten();
        if weights.is_some() {
            self.conn.execute(
                &format!("UPDATE queue SET {} WHERE id = ?1", rules::WEIGHTS_TAKEN),
                [job],
            )?;
        }
        Ok(weights)
    }

    fn requeue_owner(&self, owner: &str, reason: &str, gone: OwnerGone) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            &format!(
                "UPDATE queue SET {requeued} WHERE status = 'running' AND owner = ?2",
                requeued = rules::requeued(|n| format!("?{n}"), gone)
            ),
            params![reason, owner],
        )?)
    }

    fn hand_back(&self, job: &ClaimedJob, owner: &str, reason: &str) -> anyhow::Result<bool> {
        // The lease's parameters follow the reason: ?2 job, ?3 owner, ?4 attempt.
        let updated = self.conn.execute(
            &format!(
                "UPDATE queue SET {requeued} WHERE {held}",
                requeued = rules::requeued(|n| format!("?{n}"), OwnerGone::Stopped),
                held = rules::lease_held(|n| format!("?{}", n + 1))
            ),
            params![reason, job.id, owner, job.attempt],
        )?;
        Ok(updated == 1)
    }

    fn queue_counts(&self) -> anyhow::Result<QueueCounts> {
        let now = unix_now();
        Ok(self.conn.query_row(
            "SELECT COALESCE(SUM(status = 'pending' OR (status = 'running' AND lease_until < ?1)), 0),
                    COALESCE(SUM(status = 'running' AND lease_until >= ?1), 0)
             FROM queue WHERE status != 'done'",
            [now],
            |r| {
                Ok(QueueCounts {
                    pending: r.get::<_, i64>(0)? as usize,
                    running: r.get::<_, i64>(1)? as usize,
                })
            },
        )?)
    }

    fn now(&self) -> anyhow::Result<f64> {
        // All processes of a SQLite store run on this machine, so they share its clock.
        Ok(unix_now())
    }

    fn register_worker(&self, w: &WorkerRow) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO workers (name, host, pid, device, threads, started_at, seen_at, job_id, trained, stopped)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 0, 0)
             ON CONFLICT(name) DO UPDATE SET host = excluded.host, pid = excluded.pid, device = excluded.device,
                threads = excluded.threads, started_at = excluded.started_at, seen_at = excluded.seen_at,
                job_id = NULL, trained = 0, stopped = 0",
            params![
                w.name,
                w.host,
                w.pid,
                w.device,
                w.threads as i64,
                w.started_at,
                unix_now()
            ],
        )?;
        Ok(())
    }

    fn worker_seen(&self, name: &str, job: Option<i64>, finished_one: bool) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE workers SET seen_at = ?2, job_id = ?3, trained = trained + ?4 WHERE name = ?1",
            params![name, unix_now(), job, finished_one as i64],
        )?;
        Ok(())
    }

    fn worker_stopped(&self, name: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE workers SET stopped = 1, job_id = NULL, seen_at = ?2 WHERE name = ?1",
            params![name, unix_now()],
        )?;
        Ok(())
    }

    fn workers(&self, since: f64) -> anyhow::Result<Vec<WorkerRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT w.*, q.architecture AS job_architecture FROM workers w
             LEFT JOIN queue q ON q.id = w.job_id
             WHERE w.stopped = 0 AND w.seen_at >= ?1 ORDER BY w.name",
        )?;
        let rows = stmt.query_map([since], |r| {
            let job_id: Option<i64> = r.get("job_id")?;
            let job_architecture: Option<String> = r.get("job_architecture")?;
            Ok(WorkerRow {
                name: r.get("name")?,
                host: r.get("host")?,
                pid: r.get::<_, i64>("pid")? as u32,
                device: r.get("device")?,
                threads: r.get::<_, i64>("threads")? as usize,
                started_at: r.get("started_at")?,
                seen_at: r.get("seen_at")?,
                job: job_id.zip(job_architecture),
                trained: r.get::<_, i64>("trained")? as usize,
                stopped: r.get("stopped")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn post_curve(&self, job: &ClaimedJob, owner: &str, accuracy: &[f64]) -> anyhow::Result<bool> {
        let updated = self.conn.execute(
            &format!("UPDATE queue SET curve = ?4 WHERE {held}", held = held()),
            params![job.id, owner, job.attempt, serde_json::to_string(accuracy)?],
        )?;
        Ok(updated == 1)
    }

    fn awaited_verdict(&self, job: &ClaimedJob, owner: &str, epochs: usize) -> anyhow::Result<Awaited> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT verdict_epochs, verdict_stop FROM queue
                 WHERE {held}",
                held = held()
            ))?
            .query_row(params![job.id, owner, job.attempt], |r| {
                Ok((r.get::<_, i64>(0)? as usize, r.get(1)?))
            })
            .optional()?;
        Ok(Awaited::of(row, epochs))
    }

    fn curves_to_judge(&self, ids: &[i64]) -> anyhow::Result<Vec<CurveToJudge>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT attempt, curve, verdict_epochs FROM queue
             WHERE id = ?1 AND status = 'running' AND curve IS NOT NULL",
        )?;
        let mut rows = Vec::new();
        for &id in ids {
            if let Some((attempt, curve, judged)) = stmt
                .query_row([id], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })
                .optional()?
            {
                rows.push((id, attempt, curve, judged as usize));
            }
        }
        Ok(curves_waiting(rows))
    }

    fn give_verdict(&self, curve: &CurveToJudge, stop: bool) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE queue SET verdict_epochs = ?3, verdict_stop = ?4
             WHERE id = ?1 AND attempt = ?2 AND status = 'running'",
            params![curve.job, curve.attempt, curve.accuracy.len() as i64, stop],
        )?;
        Ok(())
    }
}
