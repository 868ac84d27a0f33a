//! The queue of children waiting for a worker, in the run store (as Optuna keeps its trials in
//! its storage): a search enqueues, workers claim with a lease, heartbeat while they train and
//! write the result. A worker that stops heartbeating loses its lease and the child goes to the
//! next worker; a result is accepted only from the lease holder, so no evaluation is recorded
//! twice. One row per cache key: two environments (or two runs) that design the same architecture
//! while it is in flight wait on one training.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::{insert_evaluation_on, NewEvaluation, SqliteStore};
use crate::evaluator::Outcome;

/// A worker that died this many times while training one child gives up on it: the child is
/// recorded as a (transient) failure instead of killing workers forever.
pub const MAX_ATTEMPTS: u32 = 3;

/// Unix time in seconds; leases and heartbeats are compared in it across processes (and, with a
/// shared store, across machines whose clocks are assumed to be synchronised, as NTP does).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The outcome of a child that [`MAX_ATTEMPTS`] workers died on (`lost`: the last reason):
/// recorded as failed rather than fed to the next worker forever; transient, so a later run
/// tries it again.
pub fn given_up(lost: Option<&str>) -> Outcome {
    Outcome {
        accuracy: 0.0,
        params: 0,
        seconds: 0.0,
        failure: Some(format!(
            "{MAX_ATTEMPTS} workers stopped while training it (last: {})",
            lost.unwrap_or("unknown")
        )),
        transient: true,
        curve: Default::default(),
    }
}

/// A child for the workers.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    pub cache_key: &'a str,
    pub architecture: &'a str,
    pub dataset: &'a str,
    pub evaluator: &'a str,
    pub protocol_json: &'a str,
    /// The device kind the child must be trained on (`cpu`, `cuda`), or `none` for any worker
    /// (the synthetic evaluator).
    pub device: &'a str,
    pub origin: Option<(i64, usize)>,
    /// Hand the trained weights back with the result.
    pub keep_weights: bool,
    /// The fingerprint of the data the search uses ([`nas_datasets::Dataset::fingerprint`]);
    /// empty when no data is involved (the synthetic evaluator).
    pub data_sha256: &'a str,
    /// Set when the run's assessor watches the child's training (the protocol's epochs): the
    /// worker posts the curve after every epoch and waits for the search's verdict.
    pub watch_epochs: Option<usize>,
}

impl NewJob<'_> {
    /// The job's key in the queue. A watched child is its run's own job: another run (with
    /// another assessor, or none) must not wait on a training this run's assessor may stop, so
    /// only the run's own environments join it.
    pub fn queue_key(&self) -> String {
        match (self.watch_epochs, self.origin) {
            (None, _) => self.cache_key.to_string(),
            (Some(_), Some((run, _))) => format!("{}#watched:{run}", self.cache_key),
            (Some(_), None) => format!("{}#watched", self.cache_key),
        }
    }

    /// The key its evaluation is recorded under when the queue's differs.
    pub fn evaluation_key(&self) -> Option<&str> {
        self.watch_epochs.map(|_| self.cache_key)
    }
}

/// A child a worker holds the lease on; `attempt` tells this lease from later ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub id: i64,
    pub attempt: u32,
    /// The key its evaluation is recorded under.
    pub cache_key: String,
    pub architecture: String,
    pub dataset: String,
    pub evaluator: String,
    pub protocol_json: String,
    pub origin: Option<(i64, usize)>,
    pub keep_weights: bool,
    pub data_sha256: String,
    /// The protocol's epochs when an assessor watches the training ([`NewJob::watch_epochs`]).
    pub watch_epochs: Option<usize>,
}

impl ClaimedJob {
    /// The evaluation this job's `outcome` makes.
    pub fn evaluation<'a>(&'a self, depth: usize, outcome: &'a Outcome) -> NewEvaluation<'a> {
        NewEvaluation {
            cache_key: &self.cache_key,
            architecture: &self.architecture,
            dataset: &self.dataset,
            evaluator: &self.evaluator,
            protocol_json: &self.protocol_json,
            depth,
            outcome,
            origin: self.origin,
        }
    }
}

/// A watched child's curve that waits for the search's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveToJudge {
    pub job: i64,
    pub attempt: u32,
    /// Accuracy after each epoch trained so far.
    pub accuracy: Vec<f64>,
}

/// What a worker waiting on a verdict finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// No verdict on this curve yet.
    Pending,
    Continue,
    Stop,
    /// The worker no longer holds the lease: another worker trains the child now.
    LeaseLost,
}

impl Awaited {
    /// What a worker finds for the first `epochs` points of its curve, from the job's row as it
    /// holds it (`None`: no longer its lease) with the curve length last judged and that verdict.
    pub(crate) fn of(row: Option<(usize, bool)>, epochs: usize) -> Awaited {
        match row {
            None => Awaited::LeaseLost,
            Some((judged, _)) if judged < epochs => Awaited::Pending,
            Some((_, true)) => Awaited::Stop,
            Some((_, false)) => Awaited::Continue,
        }
    }
}

/// The curves among `rows` (job, attempt, curve JSON, epochs last judged) that wait for a verdict.
pub(crate) fn curves_waiting(rows: impl IntoIterator<Item = (i64, u32, String, usize)>) -> Vec<CurveToJudge> {
    rows.into_iter()
        .filter_map(|(job, attempt, curve, judged)| {
            let accuracy: Vec<f64> = serde_json::from_str(&curve).ok()?;
            (accuracy.len() > judged).then_some(CurveToJudge { job, attempt, accuracy })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Pending,
    Running { owner: String },
    Done { evaluation_id: i64 },
}

/// How many children wait for a worker and how many are being trained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueCounts {
    pub pending: usize,
    pub running: usize,
}

/// A worker as it last reported itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub device: String,
    pub threads: usize,
    pub started_at: f64,
    pub seen_at: f64,
    /// The job it trains now, and that job's architecture.
    pub job: Option<(i64, String)>,
    pub trained: usize,
    pub stopped: bool,
}

/// The queue's side of a run store.
pub trait JobQueue {
    /// Queues a child and returns its job id. A child with the same cache key that is pending or
    /// being trained is joined instead; a finished one is queued again (the caller wants a new
    /// training: the cache was off, or its result was transient).
    fn enqueue(&self, job: &NewJob<'_>) -> anyhow::Result<i64>;
    /// Takes the oldest pending child for `device` (or one whose lease expired) with a lease of
    /// `lease_secs`, for worker `owner`.
    fn claim(&self, owner: &str, device: &str, lease_secs: f64) -> anyhow::Result<Option<ClaimedJob>>;
    /// Extends a lease; false when the worker no longer holds it (it expired and another took it).
    fn renew_lease(&self, job: &ClaimedJob, owner: &str, lease_secs: f64) -> anyhow::Result<bool>;
    /// Records the result of a claimed child and marks it done, atomically, if `owner` still holds
    /// this lease; returns the evaluation id, or `None` when the lease was lost (the result is
    /// dropped: the worker that took over records its own).
    fn complete(
        &self,
        job: &ClaimedJob,
        owner: &str,
        evaluation: &NewEvaluation<'_>,
        weights: Option<&[u8]>,
    ) -> anyhow::Result<Option<i64>>;
    fn job_states(&self, ids: &[i64]) -> anyhow::Result<Vec<(i64, JobState)>>;
    /// Takes (and forgets) the weights a worker handed back with a job.
    fn take_job_weights(&self, job: i64) -> anyhow::Result<Option<Vec<u8>>>;
    /// Puts the children `owner` holds back in the queue at once (its process is known to be
    /// gone); returns how many.
    fn requeue_owner(&self, owner: &str, reason: &str) -> anyhow::Result<usize>;
    fn queue_counts(&self) -> anyhow::Result<QueueCounts>;
    /// Records a worker starting (or starting again under the same name).
    fn register_worker(&self, worker: &WorkerRow) -> anyhow::Result<()>;
    /// A worker's sign of life: the job it trains now, and whether it just finished one.
    fn worker_seen(&self, name: &str, job: Option<i64>, finished_one: bool) -> anyhow::Result<()>;
    fn worker_stopped(&self, name: &str) -> anyhow::Result<()>;
    /// Workers not stopped and seen since `since` (unix seconds).
    fn workers(&self, since: f64) -> anyhow::Result<Vec<WorkerRow>>;
    /// A watched child's curve so far, posted by the worker holding its lease (false when it
    /// no longer holds it).
    fn post_curve(&self, job: &ClaimedJob, owner: &str, accuracy: &[f64]) -> anyhow::Result<bool>;
    /// The verdict on the first `epochs` points of a watched child's curve, as its worker sees it.
    fn awaited_verdict(&self, job: &ClaimedJob, owner: &str, epochs: usize) -> anyhow::Result<Awaited>;
    /// The curves of the jobs `ids` that wait for a verdict.
    fn curves_to_judge(&self, ids: &[i64]) -> anyhow::Result<Vec<CurveToJudge>>;
    /// The search's verdict on `curve` (ignored when another attempt trains the child now).
    fn give_verdict(&self, curve: &CurveToJudge, stop: bool) -> anyhow::Result<()>;
}

impl JobQueue for SqliteStore {
    fn enqueue(&self, job: &NewJob<'_>) -> anyhow::Result<i64> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let key = job.queue_key();
        let existing: Option<(i64, String)> = tx
            .query_row("SELECT id, status FROM queue WHERE cache_key = ?1", [&key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (origin_run, origin_episode) = (job.origin.map(|o| o.0), job.origin.map(|o| o.1 as i64));
        let id = match existing {
            Some((id, status)) if status != "done" => {
                if job.keep_weights {
                    tx.execute("UPDATE queue SET keep_weights = 1 WHERE id = ?1", [id])?;
                }
                id
            }
            Some((id, _)) => {
                tx.execute(
                    "UPDATE queue SET status = 'pending', owner = NULL, attempt = 0, lease_until = NULL,
                        evaluation_id = NULL, weights = NULL, last_error = NULL, origin_run = ?2,
                        origin_episode = ?3, keep_weights = ?4, queued_at = ?5, started_at = NULL,
                        finished_at = NULL, data_sha256 = ?6, curve = NULL, verdict_epochs = 0,
                        verdict_stop = 0
                     WHERE id = ?1",
                    params![
                        id,
                        origin_run,
                        origin_episode,
                        job.keep_weights,
                        unix_now(),
                        job.data_sha256
                    ],
                )?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO queue (cache_key, architecture, dataset, evaluator, protocol, device,
                        origin_run, origin_episode, keep_weights, status, queued_at, data_sha256,
                        evaluation_key, watch_epochs)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11, ?12, ?13)",
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
                        job.watch_epochs.map(|e| e as i64)
                    ],
                )?;
                tx.last_insert_rowid()
            }
        };
        tx.commit()?;
        Ok(id)
    }

    fn claim(&self, owner: &str, device: &str, lease_secs: f64) -> anyhow::Result<Option<ClaimedJob>> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let now = unix_now();
        loop {
            let candidate = tx
                .query_row(
                    "SELECT * FROM queue
                     WHERE (status = 'pending' OR (status = 'running' AND lease_until < ?1))
                       AND (device = ?2 OR device = 'none')
                     ORDER BY id LIMIT 1",
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
                            },
                            r.get::<_, String>("status")?,
                            r.get::<_, Option<String>>("owner")?,
                            r.get::<_, Option<String>>("last_error")?,
                        ))
                    },
                )
                .optional()?;
            let Some((mut job, status, previous_owner, last_error)) = candidate else {
                tx.commit()?;
                return Ok(None);
            };
            let lost = match (status.as_str(), previous_owner) {
                ("running", Some(previous)) => Some(format!("worker {previous} stopped heartbeating")),
                _ => last_error,
            };
            if job.attempt >= MAX_ATTEMPTS {
                let outcome = given_up(lost.as_deref());
                let depth = job.architecture.split_whitespace().count();
                let evaluation_id = insert_evaluation_on(&tx, &job.evaluation(depth, &outcome))?;
                tx.execute(
                    "UPDATE queue SET status = 'done', owner = NULL, lease_until = NULL, evaluation_id = ?2,
                        finished_at = ?3 WHERE id = ?1",
                    params![job.id, evaluation_id, now],
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
                "UPDATE queue SET status = 'running', owner = ?2, attempt = ?3, lease_until = ?4,
                    started_at = ?5, last_error = ?6, curve = NULL, verdict_epochs = 0, verdict_stop = 0
                 WHERE id = ?1",
                params![job.id, owner, job.attempt, now + lease_secs, now, lost],
            )?;
            tx.commit()?;
            return Ok(Some(job));
        }
    }

    fn renew_lease(&self, job: &ClaimedJob, owner: &str, lease_secs: f64) -> anyhow::Result<bool> {
        let updated = self.conn.execute(
            "UPDATE queue SET lease_until = ?4 WHERE id = ?1 AND owner = ?2 AND attempt = ?3 AND status = 'running'",
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
                "SELECT id FROM queue WHERE id = ?1 AND owner = ?2 AND attempt = ?3 AND status = 'running'",
                params![job.id, owner, job.attempt],
                |r| r.get(0),
            )
            .optional()?;
        if holds.is_none() {
            tx.commit()?;
            return Ok(None);
        }
        let evaluation_id = insert_evaluation_on(&tx, evaluation)?;
        tx.execute(
            "UPDATE queue SET status = 'done', owner = NULL, lease_until = NULL, evaluation_id = ?2,
                weights = ?3, finished_at = ?4 WHERE id = ?1",
            params![job.id, evaluation_id, weights, unix_now()],
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
            self.conn
                .execute("UPDATE queue SET weights = NULL WHERE id = ?1", [job])?;
        }
        Ok(weights)
    }

    fn requeue_owner(&self, owner: &str, reason: &str) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "UPDATE queue SET status = 'pending', owner = NULL, lease_until = NULL, last_error = ?2
             WHERE status = 'running' AND owner = ?1",
            params![owner, reason],
        )?)
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
                w.seen_at
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
            "UPDATE queue SET curve = ?4 WHERE id = ?1 AND owner = ?2 AND attempt = ?3 AND status = 'running'",
            params![job.id, owner, job.attempt, serde_json::to_string(accuracy)?],
        )?;
        Ok(updated == 1)
    }

    fn awaited_verdict(&self, job: &ClaimedJob, owner: &str, epochs: usize) -> anyhow::Result<Awaited> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT verdict_epochs, verdict_stop FROM queue
                 WHERE id = ?1 AND owner = ?2 AND attempt = ?3 AND status = 'running'",
            )?
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::Store;

    fn job(key: &str) -> NewJob<'_> {
        NewJob {
            cache_key: key,
            architecture: "conv(10,3)",
            dataset: "mnist3",
            evaluator: "train",
            protocol_json: "{}",
            device: "cpu",
            origin: Some((1, 0)),
            keep_weights: false,
            data_sha256: "",
            watch_epochs: None,
        }
    }

    #[test]
    fn the_same_key_in_flight_is_one_job() {
        let store = Store::open(Path::new(":memory:")).unwrap();
        let a = store.enqueue(&job("k")).unwrap();
        assert_eq!(store.enqueue(&job("k")).unwrap(), a);
        assert_ne!(store.enqueue(&job("other")).unwrap(), a);
        assert_eq!(store.queue_counts().unwrap(), QueueCounts { pending: 2, running: 0 });
    }
}
