//! The queue in PostgreSQL: workers on many machines claim children with row locks that skip
//! rows another worker is claiming (`FOR UPDATE SKIP LOCKED`).

use postgres::Row;

use super::{commit, insert_evaluation_on, PgStore};
use std::sync::OnceLock;

use crate::queue::rules::Claim;
use crate::queue::{
    curves_waiting, rules, Awaited, ClaimedJob, CurveToJudge, JobQueue, JobState, NewJob, OwnerGone, QueueCounts,
    WorkerRow,
};
use crate::NewEvaluation;

/// The database server's clock in Unix seconds: leases, heartbeats and queue times are written
/// and compared in it, so workers whose machines' clocks disagree still agree on who holds a
/// lease (`clock_timestamp()`, not `now()`, which stands still for a whole transaction).
pub(super) const DB_NOW: &str = "EXTRACT(EPOCH FROM clock_timestamp())::float8";

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
        cost_json: r.get("cost_json"),
    }
}

/// [`rules::lease_held`] in this backend's placeholders.
fn held() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| rules::lease_held(|n| format!("${n}")))
}

/// [`rules::claimable`] in this backend's placeholders.
fn claimable() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| rules::claimable(|n| format!("${n}")))
}

impl JobQueue for PgStore {
    fn enqueue(&self, job: &NewJob<'_>) -> anyhow::Result<i64> {
        self.idempotent(|client| {
            let mut tx = client.transaction()?;
            let (origin_run, origin_episode) = (job.origin.map(|o| o.0), job.origin.map(|o| o.1 as i64));
            let key = job.queue_key();
            let now: f64 = tx.query_one(&format!("SELECT {DB_NOW}"), &[])?.get(0);
            let id = loop {
                // At most one live job per key: a child whose key has only finished jobs is a new one.
                let inserted = tx.query_opt(
                    &format!(
                        "INSERT INTO queue (cache_key, architecture, dataset, evaluator, protocol, device,
                        origin_run, origin_episode, keep_weights, status, queued_at, data_sha256,
                        evaluation_key, watch_epochs, weight_takers, cost_json)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13, $14, $15)
                     ON CONFLICT (cache_key) WHERE {live} DO NOTHING RETURNING id",
                        live = rules::LIVE
                    ),
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
                        &now,
                        &job.data_sha256,
                        &job.evaluation_key(),
                        &job.watch_epochs.map(|e| e as i64),
                        &i64::from(job.keep_weights),
                        &job.cost_json,
                    ],
                )?;
                if let Some(row) = inserted {
                    break row.get(0);
                }
                let live = tx.query_opt(
                    &format!(
                        "SELECT id FROM queue WHERE cache_key = $1 AND {live} FOR UPDATE",
                        live = rules::LIVE
                    ),
                    &[&key],
                )?;
                // None: the live job finished in between; queue the child anew.
                if let Some(row) = live {
                    let id: i64 = row.get(0);
                    if job.keep_weights {
                        tx.execute(
                            &format!("UPDATE queue SET {} WHERE id = $1", rules::WEIGHTS_WANTED),
                            &[&id],
                        )?;
                    }
                    break id;
                }
            };
            tx.commit()?;
            Ok(id)
        })
    }

    fn claim(&self, owner: &str, device: &str, lease_secs: f64) -> anyhow::Result<Option<ClaimedJob>> {
        rules::check_lease(lease_secs)?;
        self.retry_before_commit(|client, sent| {
            let mut tx = client.transaction()?;
            // The server's clock, not this worker's: see `DB_NOW`.
            let now: f64 = tx.query_one(&format!("SELECT {DB_NOW}"), &[])?.get(0);
            loop {
                // Rows another worker is claiming right now are skipped, not waited for.
                let Some(row) = tx.query_opt(
                    &format!(
                        "SELECT * FROM queue
                 WHERE {claimable}
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                        claimable = claimable()
                    ),
                    &[&now, &device],
                )?
                else {
                    commit(tx, sent)?;
                    return Ok(None);
                };
                let mut job = claimed_from_row(&row);
                let (deaths, lost) = match rules::claim(
                    job.attempt,
                    row.get::<_, i64>("deaths") as u32,
                    row.get("status"),
                    row.get("owner"),
                    row.get("last_error"),
                ) {
                    Claim::GiveUp(outcome) => {
                        let depth = job.architecture.split_whitespace().count();
                        let evaluation_id = insert_evaluation_on(&mut tx, &job.evaluation(depth, &outcome))?;
                        tx.execute(
                            &format!(
                                "UPDATE queue SET {released}, evaluation_id = $2, finished_at = $3 WHERE id = $1",
                                released = rules::RELEASED
                            ),
                            &[&job.id, &evaluation_id, &now],
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
                        "UPDATE queue SET status = 'running', owner = $2, attempt = $3, lease_until = $4,
                        started_at = $5, last_error = $6, deaths = $7, {claim_resets} WHERE id = $1",
                        claim_resets = rules::CLAIM_RESETS
                    ),
                    &[
                        &job.id,
                        &owner,
                        &(job.attempt as i64),
                        &(now + lease_secs),
                        &now,
                        &lost,
                        &(deaths as i64),
                    ],
                )?;
                commit(tx, sent)?;
                return Ok(Some(job));
            }
        })
    }

    fn renew_lease(&self, job: &ClaimedJob, owner: &str, lease_secs: f64) -> anyhow::Result<bool> {
        rules::check_lease(lease_secs)?;
        self.idempotent(|client| {
            let updated = client.execute(
                &format!(
                    "UPDATE queue SET lease_until = {DB_NOW} + $4 WHERE {held}",
                    held = held()
                ),
                &[&job.id, &owner, &(job.attempt as i64), &lease_secs],
            )?;
            Ok(updated == 1)
        })
    }

    fn complete(
        &self,
        job: &ClaimedJob,
        owner: &str,
        evaluation: &NewEvaluation<'_>,
        weights: Option<&[u8]>,
    ) -> anyhow::Result<Option<i64>> {
        self.idempotent(|client| {
            let mut tx = client.transaction()?;
            let holds = tx.query_opt(
                &format!("SELECT id FROM queue WHERE {held} FOR UPDATE", held = held()),
                &[&job.id, &owner, &(job.attempt as i64)],
            )?;
            if holds.is_none() {
                tx.commit()?;
                return Ok(None);
            }
            let evaluation_id = insert_evaluation_on(&mut tx, evaluation)?;
            let now: f64 = tx.query_one(&format!("SELECT {DB_NOW}"), &[])?.get(0);
            tx.execute(
                &format!(
                    "UPDATE queue SET {released}, evaluation_id = $2,
                weights = $3, finished_at = $4 WHERE id = $1",
                    released = rules::RELEASED
                ),
                &[&job.id, &evaluation_id, &weights, &now],
            )?;
            tx.execute(
                &format!(
                    "UPDATE queue SET weights = NULL WHERE {unwanted}",
                    unwanted = rules::unwanted_weights(|n| format!("${n}"))
                ),
                &[&now],
            )?;
            tx.commit()?;
            Ok(Some(evaluation_id))
        })
    }

    fn job_states(&self, ids: &[i64]) -> anyhow::Result<Vec<(i64, JobState)>> {
        self.idempotent(|client| {
            let ids = ids.to_vec();
            let rows = client.query(
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
        })
    }

    fn take_job_weights(&self, job: i64) -> anyhow::Result<Option<Vec<u8>>> {
        self.retry_before_commit(|client, sent| {
            let mut tx = client.transaction()?;
            let weights: Option<Vec<u8>> = tx
                .query_opt("SELECT weights FROM queue WHERE id = $1 FOR UPDATE", &[&job])?
                .and_then(|r| r.get(0));
            if weights.is_some() {
                tx.execute(
                    &format!("UPDATE queue SET {} WHERE id = $1", rules::WEIGHTS_TAKEN),
                    &[&job],
                )?;
            }
            commit(tx, sent)?;
            Ok(weights)
        })
    }

    fn requeue_owner(&self, owner: &str, reason: &str, gone: OwnerGone) -> anyhow::Result<usize> {
        // Idempotent: a repeat after a commit whose reply was lost finds none of the owner's
        // children running, so a death is never counted twice.
        self.idempotent(|client| {
            Ok(client.execute(
                &format!(
                    "UPDATE queue SET {requeued} WHERE status = 'running' AND owner = $2",
                    requeued = rules::requeued(|n| format!("${n}"), gone)
                ),
                &[&reason, &owner],
            )? as usize)
        })
    }

    fn hand_back(&self, job: &ClaimedJob, owner: &str, reason: &str) -> anyhow::Result<bool> {
        // Idempotent: a repeat finds the lease over and changes nothing.
        self.idempotent(|client| {
            // The lease's parameters follow the reason: $2 job, $3 owner, $4 attempt.
            let updated = client.execute(
                &format!(
                    "UPDATE queue SET {requeued} WHERE {held}",
                    requeued = rules::requeued(|n| format!("${n}"), OwnerGone::Stopped),
                    held = rules::lease_held(|n| format!("${}", n + 1))
                ),
                &[&reason, &job.id, &owner, &(job.attempt as i64)],
            )?;
            Ok(updated == 1)
        })
    }

    fn queue_counts(&self) -> anyhow::Result<QueueCounts> {
        self.idempotent(|client| {
            let row = client.query_one(
                &format!(
                    "WITH clock AS MATERIALIZED (SELECT {DB_NOW} AS now)
                 SELECT COUNT(*) FILTER (WHERE status = 'pending' OR (status = 'running' AND lease_until < clock.now)),
                        COUNT(*) FILTER (WHERE status = 'running' AND lease_until >= clock.now)
                 FROM queue, clock WHERE status != 'done'"
                ),
                &[],
            )?;
            Ok(QueueCounts {
                pending: row.get::<_, i64>(0) as usize,
                running: row.get::<_, i64>(1) as usize,
            })
        })
    }

    fn now(&self) -> anyhow::Result<f64> {
        self.idempotent(|client| Ok(client.query_one(&format!("SELECT {DB_NOW}"), &[])?.get(0)))
    }

    fn register_worker(&self, w: &WorkerRow) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                &format!(
                "INSERT INTO workers (name, host, pid, device, threads, started_at, seen_at, job_id, trained, stopped)
             VALUES ($1, $2, $3, $4, $5, $6, {DB_NOW}, NULL, 0, false)
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, device = excluded.device,
                threads = excluded.threads, started_at = excluded.started_at, seen_at = excluded.seen_at,
                job_id = NULL, trained = 0, stopped = false"
            ),
                &[
                    &w.name,
                    &w.host,
                    &(w.pid as i64),
                    &w.device,
                    &(w.threads as i64),
                    &w.started_at,
                ],
            )?;
            Ok(())
        })
    }

    fn worker_seen(&self, name: &str, job: Option<i64>, finished_one: bool) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                &format!("UPDATE workers SET seen_at = {DB_NOW}, job_id = $2, trained = trained + $3 WHERE name = $1"),
                &[&name, &job, &(finished_one as i64)],
            )?;
            Ok(())
        })
    }

    fn worker_stopped(&self, name: &str) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
                &format!("UPDATE workers SET stopped = true, job_id = NULL, seen_at = {DB_NOW} WHERE name = $1"),
                &[&name],
            )?;
            Ok(())
        })
    }

    fn workers(&self, since: f64) -> anyhow::Result<Vec<WorkerRow>> {
        self.idempotent(|client| {
            let rows = client.query(
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
        })
    }

    fn post_curve(&self, job: &ClaimedJob, owner: &str, accuracy: &[f64]) -> anyhow::Result<bool> {
        self.idempotent(|client| {
            let updated = client.execute(
                &format!("UPDATE queue SET curve = $4 WHERE {held}", held = held()),
                &[
                    &job.id,
                    &owner,
                    &(job.attempt as i64),
                    &serde_json::to_string(accuracy)?,
                ],
            )?;
            Ok(updated == 1)
        })
    }

    fn awaited_verdict(&self, job: &ClaimedJob, owner: &str, epochs: usize) -> anyhow::Result<Awaited> {
        self.idempotent(|client| {
            let row = client.query_opt(
                &format!(
                    "SELECT verdict_epochs, verdict_stop FROM queue
             WHERE {held}",
                    held = held()
                ),
                &[&job.id, &owner, &(job.attempt as i64)],
            )?;
            Ok(Awaited::of(
                row.map(|r| (r.get::<_, i64>(0) as usize, r.get(1))),
                epochs,
            ))
        })
    }

    fn curves_to_judge(&self, ids: &[i64]) -> anyhow::Result<Vec<CurveToJudge>> {
        self.idempotent(|client| {
            let rows = client.query(
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
        })
    }

    fn give_verdict(&self, curve: &CurveToJudge, stop: bool) -> anyhow::Result<()> {
        self.idempotent(|client| {
            client.execute(
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
        })
    }
}
