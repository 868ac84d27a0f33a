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
use nas_store::{JobState, NewEvaluation, NewJob, Store};
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
    dataset: String,
    queue: VecDeque<(Vec<usize>, ChildRequest)>,
    ready: VecDeque<(usize, Finished)>,
}

impl InProcess {
    pub fn new(evaluator: Evaluator, dataset: &str) -> InProcess {
        InProcess {
            evaluator,
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
        let (outcome, weights) = match watch {
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
        if let Some(reason) = &outcome.failure {
            tracing::warn!("child `{}` failed: {reason}", child.arch);
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

/// The pool's state as the store sees it: workers seen within a lease, busy when they hold a
/// child, and the children waiting.
pub fn pool_status(store: &Store, lease_secs: f64) -> anyhow::Result<PoolStatus> {
    let workers = store.workers_seen_within(lease_secs.max(10.0))?;
    let busy = workers.iter().filter(|w| w.job.is_some()).count();
    Ok(PoolStatus {
        busy,
        idle: workers.len() - busy,
        queued: store.queue_counts()?.pending,
    })
}

impl Trainer for Queued {
    fn device_kind(&self) -> &'static str {
        self.device_kind
    }

    fn submit(&mut self, store: &Store, ticket: usize, child: ChildRequest) -> anyhow::Result<()> {
        let job = store.enqueue(&NewJob {
            cache_key: &child.cache_key,
            architecture: &child.arch.to_string(),
            dataset: &self.dataset,
            evaluator: self.evaluator,
            protocol_json: &child.protocol_json,
            device: self.device_kind,
            origin: child.origin,
            keep_weights: child.keep,
            data_sha256: &self.data_sha256,
            watch_epochs: child.watch_epochs,
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
            for (id, state) in store.job_states(&ids)? {
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
                let status = pool_status(store, self.lease_secs)?;
                tick(&status);
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
                    if let Some(warning) =
                        device_mismatch(&store.workers_seen_within(self.lease_secs.max(10.0))?, self.device_kind)
                    {
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
}

/// Workers held by every search that uses them; the last holder's drop stops them.
pub type SharedWorkers = Arc<dyn WorkerPool>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_workers_of_another_device_are_named() {
        let worker = |device: &str, job: Option<(i64, String)>| nas_store::WorkerRow {
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
        };
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
