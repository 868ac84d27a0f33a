//! Where children are trained: one at a time in the search process ([`InProcess`]), or by worker
//! processes through the run store's queue ([`Queued`]), which [`LocalWorkers`] starts and
//! supervises on this machine. The search loop sees only [`Trainer`]: it submits children and
//! waits for any one to finish.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::assess::Watch;
use nas_core::arch::Architecture;
use nas_core::record::Outcome;
use nas_store::{JobState, NewEvaluation, NewJob, Store, TableRecord};
use nas_train::cost::CostMeter;
use nas_train::evaluator::Evaluator;

/// A child to be evaluated, with its place in the architecture cache.
#[derive(Debug, Clone)]
pub struct ChildRequest {
    pub arch: Architecture,
    pub cache_key: String,
    /// The training protocol (or synthetic settings) as JSON, training seed included.
    pub protocol_json: String,
    pub train_seed: u64,
    /// The (run, episode) whose design it is, so a redone episode finds its evaluation.
    pub origin: Option<(i64, usize)>,
    /// Hand the trained weights back.
    pub keep: bool,
    /// Set when the run's assessor watches the training (the protocol's epochs).
    pub watch_epochs: Option<usize>,
    /// `[cost]` as JSON when a worker is to time the trained child ([`nas_store::NewJob::cost_json`]).
    pub cost_json: Option<String>,
}

/// A child's stored evaluation.
#[derive(Debug, Clone)]
pub struct Finished {
    pub evaluation_id: i64,
    pub outcome: Outcome,
    pub weights: Option<Vec<u8>>,
    /// Another request for the same child (same cache key) was in flight and this one waited on
    /// its training instead of training it again.
    pub joined: bool,
}

/// What the workers are doing, for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub busy: usize,
    pub idle: usize,
    /// Children waiting for a worker.
    pub queued: usize,
}

/// Trains submitted children; `ticket`s name them.
pub trait Trainer: Send {
    /// The device kind children are trained on (`cpu`, `cuda`; `none` for the synthetic
    /// evaluator): part of the cache key, since kernels differ in their results.
    fn device_kind(&self) -> &'static str;
    /// The benchmark table children are answered from, with the table evaluator (which always
    /// answers in the search process).
    fn table(&self) -> Option<TableRecord> {
        None
    }
    fn submit(&mut self, store: &Store, ticket: usize, child: ChildRequest) -> anyhow::Result<()>;
    /// Blocks until a submitted child is evaluated (and stored); calls `tick` about once a
    /// second while it waits. With a `watch`, an assessor follows each child's training.
    fn wait(
        &mut self,
        store: &Store,
        tick: &mut dyn FnMut(&PoolStatus),
        watch: Option<&mut Watch>,
    ) -> anyhow::Result<(usize, Finished)>;
}

/// Children that share a cache key: the first ticket trains it, the others join.
fn hand_out(ready: &mut VecDeque<(usize, Finished)>, tickets: &[usize], finished: Finished) {
    for (i, &ticket) in tickets.iter().enumerate() {
        let mut f = finished.clone();
        f.joined = i > 0;
        if i > 0 {
            f.weights = None;
        }
        ready.push_back((ticket, f));
    }
}

/// Trains children one at a time in this process, in submission order, when waited for.
pub struct InProcess {
    evaluator: Evaluator,
    /// Measures each trained child's cost (`[cost]`).
    cost: CostMeter,
    dataset: String,
    queue: VecDeque<(Vec<usize>, ChildRequest)>,
    ready: VecDeque<(usize, Finished)>,
}

impl InProcess {
    pub fn new(evaluator: Evaluator, cost: CostMeter, dataset: &str) -> InProcess {
        InProcess {
            evaluator,
            cost,
            dataset: dataset.to_string(),
            queue: VecDeque::new(),
            ready: VecDeque::new(),
        }
    }
}

impl Trainer for InProcess {
    fn device_kind(&self) -> &'static str {
        self.evaluator.device_kind()
    }

    fn table(&self) -> Option<TableRecord> {
        self.evaluator.table().map(|t| TableRecord {
            sha256: t.table.sha256.clone(),
            surrogate_quality: t.quality.map(|q| q.to_string()),
        })
    }

    fn submit(&mut self, _store: &Store, ticket: usize, child: ChildRequest) -> anyhow::Result<()> {
        match self.queue.iter_mut().find(|(_, c)| c.cache_key == child.cache_key) {
            Some((tickets, queued)) => {
                tickets.push(ticket);
                queued.keep |= child.keep;
            }
            None => self.queue.push_back((vec![ticket], child)),
        }
        Ok(())
    }

    fn wait(
        &mut self,
        store: &Store,
        _tick: &mut dyn FnMut(&PoolStatus),
        watch: Option<&mut Watch>,
    ) -> anyhow::Result<(usize, Finished)> {
        if let Some(done) = self.ready.pop_front() {
            return Ok(done);
        }
        let (tickets, child) = self
            .queue
            .pop_front()
            .context("waited for a child, but none was submitted")?;
        let (mut outcome, weights) = match watch {
            Some(watch) => {
                let evaluated = {
                    let mut judge = watch.judge(&child.arch);
                    self.evaluator
                        .evaluate(&child.arch, child.train_seed, child.keep, Some(&mut judge))
                };
                if let Some(failure) = watch.take_failure() {
                    // The child is not recorded: its curve was cut short by the failure, not by
                    // a verdict. The search stops with the assessor's error.
                    self.queue.push_front((tickets, child));
                    return Err(failure.into());
                }
                evaluated
            }
            None => self.evaluator.evaluate(&child.arch, child.train_seed, child.keep, None),
        };
        match &outcome.failure {
            Some(reason) => tracing::warn!("child `{}` failed: {reason}", child.arch),
            // Timed after training, on the training device, before the evaluation is stored.
            None => outcome.cost = self.evaluator.measure_cost(&child.arch, &self.cost)?,
        }
        let evaluation_id = store.insert_evaluation(&NewEvaluation {
            cache_key: &child.cache_key,
            architecture: &child.arch.to_string(),
            dataset: &self.dataset,
            evaluator: self.evaluator.kind().as_str(),
            protocol_json: &child.protocol_json,
            depth: child.arch.depth(),
            outcome: &outcome,
            origin: child.origin,
        })?;
        let finished = Finished {
            evaluation_id,
            outcome,
            weights,
            joined: false,
        };
        hand_out(&mut self.ready, &tickets, finished);
        Ok(self.ready.pop_front().expect("at least one ticket"))
    }
}

/// A queued child the search waits on.
struct QueuedJob {
    id: i64,
    /// The submissions waiting on it.
    tickets: Vec<usize>,
    /// Weights wanted.
    keep: bool,
    arch: Architecture,
    cache_key: String,
}

/// Hands children to workers through the store's queue and polls for their results. An assessor
/// watches them from here: workers post each child's curve after every epoch and wait for the
/// verdict this search gives.
pub struct Queued {
    device_kind: &'static str,
    dataset: String,
    evaluator: &'static str,
    jobs: Vec<QueuedJob>,
    ready: VecDeque<(usize, Finished)>,
    workers: Option<SharedWorkers>,
    /// How to start a worker by hand, said when children wait and no worker takes them.
    worker_hint: String,
    lease_secs: f64,
    /// The fingerprint of the search's data, which workers must match.
    data_sha256: String,
}

impl Queued {
    pub fn new(
        device_kind: &'static str,
        dataset: &str,
        evaluator: &'static str,
        workers: Option<SharedWorkers>,
        db: &Path,
        lease_secs: f64,
        data_sha256: String,
    ) -> Queued {
        Queued {
            device_kind,
            dataset: dataset.to_string(),
            evaluator,
            jobs: Vec::new(),
            ready: VecDeque::new(),
            workers,
            worker_hint: format!("nas-host worker --db {}", Store::describe(db)),
            lease_secs,
            data_sha256,
        }
    }
}

/// A warning when children for `device` wait while every idle worker trains on another device
/// (CPU workers never claim CUDA children, nor the other way round).
fn device_mismatch(workers: &[nas_store::WorkerRow], device: &str) -> Option<String> {
    if device == "none" || workers.iter().any(|w| w.device == device) {
        return None;
    }
    let idle: Vec<&str> = workers
        .iter()
        .filter(|w| w.job.is_none())
        .map(|w| w.device.as_str())
        .collect();
    let other = idle.first()?;
    Some(format!(
        "children wait for a {device} worker, but the {} idle worker(s) train on {other} and never take them; start workers with `--device {device}`, or search with `--device {other}`",
        idle.len()
    ))
}

/// The pool's state as this search sees it: of the workers seen within a lease that can train
/// its children (same device kind, or every worker for device-free children), those busy and
/// those idle; and how many of its own children wait for a worker (`waiting`). Other runs'
/// children and workers of another device do not count: they neither help nor delay it.
pub fn pool_status(workers: &[nas_store::WorkerRow], device: &str, waiting: usize) -> PoolStatus {
    let ours: Vec<&nas_store::WorkerRow> = workers
        .iter()
        .filter(|w| device == "none" || w.device == device)
        .collect();
    let busy = ours.iter().filter(|w| w.job.is_some()).count();
    PoolStatus {
        busy,
        idle: ours.len() - busy,
        queued: waiting,
    }
}

impl Trainer for Queued {
    fn device_kind(&self) -> &'static str {
        self.device_kind
    }

    fn submit(&mut self, store: &Store, ticket: usize, child: ChildRequest) -> anyhow::Result<()> {
        // The store counts the searches that take a job's weights: this search takes them once
        // for all its tickets of one child, so it asks once.
        let asked = self.jobs.iter().any(|j| j.keep && j.cache_key == child.cache_key);
        let job = store.enqueue(&NewJob {
            cache_key: &child.cache_key,
            architecture: &child.arch.to_string(),
            dataset: &self.dataset,
            evaluator: self.evaluator,
            protocol_json: &child.protocol_json,
            device: self.device_kind,
            origin: child.origin,
            keep_weights: child.keep && !asked,
            data_sha256: &self.data_sha256,
            watch_epochs: child.watch_epochs,
            cost_json: child.cost_json.as_deref(),
        })?;
        match self.jobs.iter_mut().find(|j| j.id == job) {
            Some(queued) => {
                queued.tickets.push(ticket);
                queued.keep |= child.keep;
            }
            None => self.jobs.push(QueuedJob {
                id: job,
                tickets: vec![ticket],
                keep: child.keep,
                arch: child.arch,
                cache_key: child.cache_key,
            }),
        }
        Ok(())
    }

    fn wait(
        &mut self,
        store: &Store,
        tick: &mut dyn FnMut(&PoolStatus),
        mut watch: Option<&mut Watch>,
    ) -> anyhow::Result<(usize, Finished)> {
        let started = Instant::now();
        let mut last_tick: Option<Instant> = None;
        let mut hinted = false;
        let mut device_hinted = false;
        let mut poll = Duration::from_millis(10);
        loop {
            if let Some(done) = self.ready.pop_front() {
                return Ok(done);
            }
            anyhow::ensure!(!self.jobs.is_empty(), "waited for a child, but none was submitted");
            if let Some(workers) = &self.workers {
                workers.check()?;
            }
            let ids: Vec<i64> = self.jobs.iter().map(|j| j.id).collect();
            if let Some(watch) = watch.as_deref_mut() {
                if self.judge_curves(store, &ids, watch)? {
                    poll = Duration::from_millis(10);
                }
            }
            let states = store.job_states(&ids)?;
            let waiting = states.iter().filter(|(_, s)| *s == JobState::Pending).count();
            for (id, state) in states {
                let JobState::Done { evaluation_id } = state else {
                    continue;
                };
                let position = self.jobs.iter().position(|j| j.id == id).expect("polled job");
                let job = self.jobs.remove(position);
                let outcome = store.evaluation(evaluation_id)?.outcome;
                let weights = if job.keep { store.take_job_weights(id)? } else { None };
                let finished = Finished {
                    evaluation_id,
                    outcome,
                    weights,
                    joined: false,
                };
                hand_out(&mut self.ready, &job.tickets, finished);
            }
            if !self.ready.is_empty() {
                continue;
            }
            if last_tick.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                let workers = store.workers_seen_within(self.lease_secs.max(10.0))?;
                let status = pool_status(&workers, self.device_kind, waiting);
                tick(&status);
                if let Some(pool) = &self.workers {
                    pool.demand(&status);
                }
                last_tick = Some(Instant::now());
                if !hinted && status.busy + status.idle == 0 && started.elapsed() > Duration::from_secs(15) {
                    tracing::warn!(
                        "{} children wait and no worker is running; start workers with `{}`",
                        status.queued,
                        self.worker_hint
                    );
                    hinted = true;
                }
                if !device_hinted && status.queued > 0 && started.elapsed() > Duration::from_secs(15) {
                    if let Some(warning) = device_mismatch(&workers, self.device_kind) {
                        tracing::warn!("{warning}");
                        device_hinted = true;
                    }
                }
            }
            std::thread::sleep(poll);
            // A worker waits on each verdict: poll more often while an assessor watches.
            let longest = if watch.is_some() { 50 } else { 200 };
            poll = (poll * 2).min(Duration::from_millis(longest));
        }
    }
}

impl Queued {
    /// Gives the assessor's verdict on every curve of `ids` that waits for one; true when there
    /// was any. A failing assessor is the search's error; its child waits in its worker until the
    /// search resumes (or the worker's lease ends with the worker).
    fn judge_curves(&self, store: &Store, ids: &[i64], watch: &mut Watch) -> anyhow::Result<bool> {
        let curves = store.curves_to_judge(ids)?;
        for curve in &curves {
            let arch = &self.jobs.iter().find(|j| j.id == curve.job).expect("polled job").arch;
            let stop = watch.judge(arch)(&curve.accuracy);
            if let Some(failure) = watch.take_failure() {
                return Err(failure.into());
            }
            store.give_verdict(curve, stop)?;
        }
        Ok(!curves.is_empty())
    }
}

/// Workers a launcher started, as the searches that use them see them.
pub trait WorkerPool: Send + Sync + std::fmt::Debug {
    /// Fails when the pool gave up (workers that cannot start, a job array that ended).
    fn check(&self) -> anyhow::Result<()>;
    /// Stops the workers (idempotent).
    fn stop(&self);
    /// What the search that uses the pool sees while it waits (about once a second): a pool
    /// that can start workers starts more when children wait and none of its workers is idle.
    fn demand(&self, _status: &PoolStatus) {}
}

/// Workers held by every search that uses them; the last holder's drop stops them.
pub type SharedWorkers = Arc<dyn WorkerPool>;

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(device: &str, job: Option<(i64, String)>) -> nas_store::WorkerRow {
        nas_store::WorkerRow {
            name: format!("h:{device}"),
            host: "h".into(),
            pid: 1,
            device: device.into(),
            threads: 1,
            started_at: 0.0,
            seen_at: 0.0,
            job,
            trained: 0,
            stopped: false,
        }
    }

    #[test]
    fn the_status_counts_this_searchs_children_and_the_workers_that_can_take_them() {
        let workers = [
            worker("cpu", None),
            worker("cpu", Some((7, "conv(10,1)".into()))),
            worker("cuda", None),
            worker("cuda", Some((8, "fc(64)".into()))),
        ];
        assert_eq!(
            pool_status(&workers, "cpu", 3),
            PoolStatus {
                busy: 1,
                idle: 1,
                queued: 3
            }
        );
        assert_eq!(
            pool_status(&workers, "cuda", 0),
            PoolStatus {
                busy: 1,
                idle: 1,
                queued: 0
            }
        );
        // Device-free children (the synthetic evaluator) go to any worker.
        assert_eq!(
            pool_status(&workers, "none", 1),
            PoolStatus {
                busy: 2,
                idle: 2,
                queued: 1
            }
        );
    }

    #[test]
    fn idle_workers_of_another_device_are_named() {
        let warning = device_mismatch(&[worker("cuda", None)], "cpu").unwrap();
        assert!(
            warning.contains("--device cpu") && warning.contains("train on cuda"),
            "{warning}"
        );
        let both = [worker("cuda", None), worker("cpu", Some((1, "x".into())))];
        assert!(device_mismatch(&both, "cpu").is_none());
        assert!(device_mismatch(&[worker("cuda", None)], "none").is_none());
        assert!(device_mismatch(&[], "cpu").is_none());
    }
}
