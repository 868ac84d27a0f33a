//! The queue of children waiting for a worker, in the run store (as Optuna keeps its trials in
//! its storage): a search enqueues, workers claim with a lease, heartbeat while they train and
//! write the result. A worker that stops heartbeating loses its lease and the child goes to the
//! next worker; a result is accepted only from the lease holder, so no evaluation is recorded
//! twice. One live row per queue key: two environments (or two runs) that design the same
//! architecture while it is in flight wait on one training; a training after that one finished is
//! a new row ([`rules::LIVE`]).

use serde::{Deserialize, Serialize};

use crate::NewEvaluation;
use nas_core::record::Outcome;

/// A child that this many workers died while training (their processes exited, or they stopped
/// heartbeating) is given up: recorded as a (transient) failure instead of killing workers
/// forever. Children handed back for other reasons ([`OwnerGone::Stopped`],
/// [`JobQueue::hand_back`]) do not count.
pub const MAX_ATTEMPTS: u32 = 3;

/// How long (seconds, by the store's clock) the weights a worker handed back with a finished job
/// wait in the queue for the search to take them ([`JobQueue::take_job_weights`]); older ones are
/// cleared. A live search takes them as soon as it sees the job finished (it polls its jobs every
/// second or faster while it waits); weights still there after this long belong to a search that
/// was killed (its resumed run finds the evaluation by its episode and never waits on the job
/// again).
pub const WEIGHTS_GRACE_SECS: f64 = 3600.0;

/// Why a worker's children go back to the queue ([`JobQueue::requeue_owner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerGone {
    /// Its process died while training them (it exited on its own, or was killed by a signal it
    /// did not ask for): the child may be what kills workers, so this counts towards
    /// [`MAX_ATTEMPTS`].
    Died,
    /// It was stopped, or stopped itself, for a reason that is not the child's fault (Ctrl-C or
    /// an error stopping the pool, a killed search's workers reclaimed on resume, a worker that
    /// stops on an error of its own): not counted.
    Stopped,
}

/// This machine's Unix time in seconds. The SQLite store compares leases and heartbeats in it
/// (all its processes run on one machine); the PostgreSQL store uses the database server's
/// clock instead, so workers on machines whose clocks disagree still agree on leases.
///
/// Test hook: `NAS_TEST_CLOCK_SKEW_SECS` (seconds, may be negative or fractional) is added to it,
/// to play a machine whose clock is off.
pub fn unix_now() -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let skew = std::env::var("NAS_TEST_CLOCK_SKEW_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite())
        .unwrap_or(0.0);
    now + skew
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
            "{MAX_ATTEMPTS} workers died while training it (last: {})",
            lost.unwrap_or("unknown")
        )),
        transient: true,
        curve: Default::default(),
        predicted: false,
        cost: None,
    }
}

/// The queue's rules, written once for both backends: which rows a worker may claim, when a
/// worker's result is accepted, what a claim resets, which job a child joins, and when a child is
/// given up. Each backend only supplies its SQL placeholders ([`Placeholder`]) and runs the statements.
pub(crate) mod rules {
    use super::{given_up, OwnerGone, MAX_ATTEMPTS};
    use nas_core::record::Outcome;

    /// The n-th (1-based) parameter in a backend's SQL: `?n` in SQLite, `$n` in PostgreSQL.
    pub(crate) type Placeholder = fn(usize) -> String;

    /// A lease must last a positive, finite number of seconds: zero or a negative length would
    /// hand the child to the next worker at once, NaN would never compare, and infinity would keep
    /// a dead worker's child forever.
    pub(crate) fn check_lease(lease_secs: f64) -> anyhow::Result<()> {
        anyhow::ensure!(
            lease_secs.is_finite() && lease_secs > 0.0,
            "lease_secs must be a positive, finite number of seconds, not {lease_secs}"
        );
        Ok(())
    }

    /// The rows a worker may claim (parameters: 1 the current time, 2 the worker's device kind):
    /// pending children and children whose lease expired, for its device or for any device.
    pub(crate) fn claimable(p: Placeholder) -> String {
        format!(
            "(status = 'pending' OR (status = 'running' AND lease_until < {})) AND (device = {} OR device = 'none')",
            p(1),
            p(2)
        )
    }

    /// The row of a job while the worker still holds the lease it claimed (parameters: 1 the job,
    /// 2 the worker, 3 the attempt): only then are its heartbeat, curve and result accepted.
    pub(crate) fn lease_held(p: Placeholder) -> String {
        format!(
            "id = {} AND owner = {} AND attempt = {} AND status = 'running'",
            p(1),
            p(2),
            p(3)
        )
    }

    /// What a new claim clears: the previous attempt's curve and verdicts.
    pub(crate) const CLAIM_RESETS: &str = "curve = NULL, verdict_epochs = 0, verdict_stop = FALSE";

    /// The finished jobs whose weights nobody will take (parameter 1: the store's clock now),
    /// cleared whenever a job finishes: those of a job nobody asked to keep weights of (a search
    /// that joins a job sets `keep_weights` while it is live, so before it finishes), and those
    /// finished more than [`WEIGHTS_GRACE_SECS`] ago.
    pub(crate) fn unwanted_weights(p: Placeholder) -> String {
        format!(
            "status = 'done' AND weights IS NOT NULL AND (NOT keep_weights OR finished_at + {:?} < {})",
            super::WEIGHTS_GRACE_SECS,
            p(1)
        )
    }

    /// What a search joining a live job and wanting its weights adds: one more taker (and the
    /// worker is asked to hand the weights back).
    pub(crate) const WEIGHTS_WANTED: &str = "keep_weights = TRUE, weight_takers = weight_takers + 1";

    /// What taking a job's weights does: one taker less, and the weights leave the queue with the
    /// last one, so every search that joined the job gets them, and none holds them after.
    pub(crate) const WEIGHTS_TAKEN: &str =
        "weight_takers = CASE WHEN weight_takers > 0 THEN weight_takers - 1 ELSE 0 END, \
         weights = CASE WHEN weight_takers <= 1 THEN NULL ELSE weights END";

    /// A job that is finished: nobody holds it any more.
    pub(crate) const RELEASED: &str = "status = 'done', owner = NULL, lease_until = NULL";

    /// The jobs a child with the same queue key joins instead of being queued: one pending or
    /// being trained (at most one per key: the stores keep a unique index on the key over these
    /// rows, with this predicate). A finished job is never reset nor queued again: its result and
    /// kept weights belong to the waiters that hold its id, and some may not have taken them yet
    /// (a `--no-cache` run whose second environment designs an architecture its first just
    /// finished). A child whose key has only finished jobs (the caller wants a new training: the
    /// cache was off, or the result was transient) is a new job, a row of its own with a new id;
    /// the finished rows stay as the record of earlier trainings.
    pub(crate) const LIVE: &str = "status <> 'done'";

    /// What putting a held child back in the queue does (parameter 1: why, kept as `last_error`
    /// for the next attempt): the lease ends, and a worker's death is counted. `attempt` stays:
    /// it is the lease generation, which the next claim moves on.
    pub(crate) fn requeued(p: Placeholder, gone: OwnerGone) -> String {
        let death = match gone {
            OwnerGone::Died => 1,
            OwnerGone::Stopped => 0,
        };
        format!(
            "status = 'pending', owner = NULL, lease_until = NULL, last_error = {}, deaths = deaths + {death}",
            p(1)
        )
    }

    /// What claiming a claimable row does.
    #[derive(Debug, PartialEq)]
    pub(crate) enum Claim {
        /// Workers died on it [`MAX_ATTEMPTS`] times: record this outcome and take the next row.
        GiveUp(Outcome),
        /// Train it as attempt `attempt` (the lease generation), with `deaths` workers died on it
        /// so far; `lost` says why the previous attempt ended, if one did.
        Take {
            attempt: u32,
            deaths: u32,
            lost: Option<String>,
        },
    }

    /// The rule for a claimable row with this `attempt`, `deaths`, `status`, previous `owner` and
    /// `last_error`: a running row here lost its lease, so its worker stopped heartbeating, which
    /// counts as a death (it may have died on the child). Deaths counted when the row was put
    /// back ([`requeued`] with [`OwnerGone::Died`]) are in `deaths` already; children handed back
    /// for other reasons never add to it, however often.
    pub(crate) fn claim(
        attempt: u32,
        deaths: u32,
        status: &str,
        owner: Option<String>,
        last_error: Option<String>,
    ) -> Claim {
        let (lost, deaths) = match (status, owner) {
            ("running", Some(previous)) => (Some(format!("worker {previous} stopped heartbeating")), deaths + 1),
            ("running", None) => (last_error, deaths + 1),
            _ => (last_error, deaths),
        };
        if deaths >= MAX_ATTEMPTS {
            Claim::GiveUp(given_up(lost.as_deref()))
        } else {
            Claim::Take {
                attempt: attempt + 1,
                deaths,
                lost,
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_deaths_give_a_child_up() {
            assert!(matches!(
                claim(17, 0, "pending", None, Some("stopped".into())),
                Claim::Take {
                    attempt: 18,
                    deaths: 0,
                    ..
                }
            ));
            assert!(matches!(
                claim(2, MAX_ATTEMPTS - 1, "pending", None, None),
                Claim::Take { attempt: 3, .. }
            ));
            assert!(matches!(
                claim(2, MAX_ATTEMPTS - 1, "running", Some("w".into()), None),
                Claim::GiveUp(_)
            ));
            assert!(matches!(
                claim(1, MAX_ATTEMPTS, "pending", None, None),
                Claim::GiveUp(_)
            ));
        }
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
    /// `[cost]` as JSON when the worker is to time the trained child (its latency is measured
    /// where it trains); `None`: structural figures only, which the search adds.
    pub cost_json: Option<&'a str>,
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
    /// How to time the trained child ([`NewJob::cost_json`]).
    pub cost_json: Option<String>,
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
    /// Queues a child and returns its job id. A child with the same queue key that is pending or
    /// being trained is joined instead; a finished one is left as it is (its waiters may not have
    /// taken its result yet) and the child becomes a new job with a new id (the caller wants a new
    /// training: the cache was off, or its result was transient).
    fn enqueue(&self, job: &NewJob<'_>) -> anyhow::Result<i64>;
    /// Takes the oldest pending child for `device` (or one whose lease expired) with a lease of
    /// `lease_secs` (positive and finite, else an error), for worker `owner`.
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
    /// Takes the weights a worker handed back with a job. Only a job with `keep_weights` stores
    /// them; each search that enqueued or joined it asking for them takes them once, and they are
    /// forgotten after the last (or [`WEIGHTS_GRACE_SECS`] after the job finished, for a search
    /// that was killed before it took them).
    fn take_job_weights(&self, job: i64) -> anyhow::Result<Option<Vec<u8>>>;
    /// Puts the children `owner` holds back in the queue at once (its process is known to be
    /// gone, or to be stopping); returns how many. `gone` says whether it died on them
    /// ([`OwnerGone::Died`]: counts towards [`MAX_ATTEMPTS`]) or was stopped
    /// ([`OwnerGone::Stopped`]: does not).
    fn requeue_owner(&self, owner: &str, reason: &str, gone: OwnerGone) -> anyhow::Result<usize>;
    /// Hands a claimed child back to the queue without counting an attempt against it (a worker
    /// that refuses the child's data, cannot load it, or gives up waiting for a verdict): the
    /// lease ends, `reason` is kept for the next attempt. False (and nothing changes) when
    /// `owner` no longer holds this lease.
    fn hand_back(&self, job: &ClaimedJob, owner: &str, reason: &str) -> anyhow::Result<bool>;
    /// How many children wait (pending, or their lease ran out) and how many are being trained,
    /// by the store's clock ([`JobQueue::now`]).
    fn queue_counts(&self) -> anyhow::Result<QueueCounts>;
    /// The store's clock, in Unix seconds: the one leases, heartbeats and `seen_at` are written
    /// and compared in. SQLite: this machine's ([`unix_now`]); PostgreSQL: the database server's.
    fn now(&self) -> anyhow::Result<f64>;
    /// Workers not stopped and seen within the last `secs` seconds of the store's clock (the
    /// pool's status; use this rather than [`JobQueue::workers`] with this machine's clock).
    fn workers_seen_within(&self, secs: f64) -> anyhow::Result<Vec<WorkerRow>> {
        self.workers(self.now()? - secs)
    }
    /// Records a worker starting (or starting again under the same name); its `seen_at` is set by
    /// the store's clock, whatever the row says.
    fn register_worker(&self, worker: &WorkerRow) -> anyhow::Result<()>;
    /// A worker's sign of life: the job it trains now, and whether it just finished one.
    fn worker_seen(&self, name: &str, job: Option<i64>, finished_one: bool) -> anyhow::Result<()>;
    fn worker_stopped(&self, name: &str) -> anyhow::Result<()>;
    /// Workers not stopped and seen since `since` (Unix seconds by the store's clock,
    /// [`JobQueue::now`]).
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::Store;

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
            cost_json: None,
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
