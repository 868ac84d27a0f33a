//! `nas-host worker`: trains children from the run store's queue. It claims the oldest child for
//! its device with a lease, renews the lease from a heartbeat thread while it trains, and writes
//! the result, which the store accepts only while the lease is still its own. Workers never load
//! plugins; they load each dataset once and keep it. When the search's assessor watches a child,
//! the worker posts the curve after every epoch and waits for the search's verdict on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::local::{host_name, worker_name};
use nas_config::CostConfig;
use nas_config::DeviceChoice;
use nas_config::{DatasetSpec, TrainConfig, Validation};
use nas_config::{EvaluatorKind, SyntheticConfig};
use nas_core::arch::Architecture;
use nas_core::record::{Cost, Outcome};
use nas_store::{queue::unix_now, Awaited, ClaimedJob, OwnerGone, Store, WorkerRow};
use nas_train::cost::CostMeter;
use nas_train::evaluator::{score_synthetic, train_child, Evaluator};
use nas_train::train::{EpochJudge, TensorData};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub db: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: DeviceChoice,
    /// libtorch intra-op threads (`None`: libtorch's default, every core).
    pub threads: Option<usize>,
    /// Seconds a claim lasts without a heartbeat.
    pub lease_secs: f64,
    /// Exit after this long without a child to train (`None`: wait for children forever).
    pub idle_exit: Option<Duration>,
    /// Exit after training this many children.
    pub max_children: Option<usize>,
}

/// Receives what a worker does; the CLI prints it.
pub trait WorkerSink {
    fn started(&mut self, _name: &str, _device: &str) {}
    fn claimed(&mut self, _job: &ClaimedJob) {}
    /// A child is trained; `recorded` is false when its lease was lost meanwhile and the result
    /// was dropped.
    fn finished(&mut self, _job: &ClaimedJob, _outcome: &Outcome, _recorded: bool) {}
}

/// How often an idle worker says it is alive.
const IDLE_SIGN_OF_LIFE: Duration = Duration::from_secs(2);

/// Runs a worker until it is idle for `idle_exit` or has trained `max_children`; returns the
/// number of children it trained.
pub fn run(options: &WorkerOptions, sink: &mut dyn WorkerSink) -> anyhow::Result<usize> {
    anyhow::ensure!(
        options.lease_secs.is_finite() && options.lease_secs > 0.0,
        "--lease-secs {} is not a usable lease: give a finite number of seconds above 0",
        options.lease_secs
    );
    if let Some(threads) = options.threads {
        tch::set_num_threads(threads as i32);
    }
    let device = nas_train::device::select(options.device)?;
    let device_kind = if device == tch::Device::Cpu { "cpu" } else { "cuda" };
    let name = worker_name(std::process::id());
    let store = Store::open(&options.db)?;
    let now = unix_now();
    store.register_worker(&WorkerRow {
        name: name.clone(),
        host: host_name(),
        pid: std::process::id(),
        device: device_kind.into(),
        threads: options
            .threads
            .unwrap_or_else(|| tch::get_num_threads().max(1) as usize),
        started_at: now,
        seen_at: now,
        job: None,
        trained: 0,
        stopped: false,
    })?;
    sink.started(&name, device_kind);
    let mut datasets = Datasets::new(options.data_dir.clone(), device);
    let heartbeat = Heartbeat::start(options.db.clone(), name.clone(), options.lease_secs)?;
    let result = serve(options, &store, &heartbeat, &name, device_kind, &mut datasets, sink);
    heartbeat.stop();
    if result.is_err() {
        // Whatever it held goes to the next worker now rather than when its lease runs out.
        let _ = store.requeue_owner(
            &name,
            &format!("worker {name} stopped with an error"),
            OwnerGone::Stopped,
        );
    }
    let _ = store.worker_stopped(&name);
    result
}

fn serve(
    options: &WorkerOptions,
    store: &Store,
    heartbeat: &Heartbeat,
    name: &str,
    device_kind: &str,
    datasets: &mut Datasets,
    sink: &mut dyn WorkerSink,
) -> anyhow::Result<usize> {
    let mut trained = 0;
    let mut idle_since = Instant::now();
    let mut last_seen = Instant::now();
    let mut poll = Duration::from_millis(20);
    loop {
        let Some(job) = store.claim(name, device_kind, options.lease_secs)? else {
            if options.idle_exit.is_some_and(|limit| idle_since.elapsed() >= limit) {
                return Ok(trained);
            }
            if last_seen.elapsed() >= IDLE_SIGN_OF_LIFE {
                store.worker_seen(name, None, false)?;
                last_seen = Instant::now();
            }
            std::thread::sleep(poll);
            poll = (poll * 2).min(Duration::from_millis(250));
            continue;
        };
        poll = Duration::from_millis(20);
        store.worker_seen(name, Some(job.id), false)?;
        sink.claimed(&job);
        let lost = heartbeat.watch(&job);
        let mut verdicts = Verdicts::new(store, name, &job, options.idle_exit);
        let evaluated = match job.watch_epochs {
            Some(_) => evaluate(&job, datasets, Some(&mut |curve: &[f64]| verdicts.judge(curve)), &lost),
            None => evaluate(&job, datasets, None, &lost),
        };
        heartbeat.release();
        // A child this worker cannot train (other data, a dataset it cannot load) goes back to
        // the queue without counting as an attempt: the child did nothing wrong.
        let (outcome, weights) = match evaluated {
            Ok(done) => done,
            Err(e) => {
                let _ = store.hand_back(&job, name, &format!("{e:#}"));
                return Err(e);
            }
        };
        if lost.load(Ordering::Relaxed) {
            // Another worker trains it now; whatever this one has is not recorded.
            tracing::warn!("gave up `{}`: its lease was lost", job.architecture);
            store.worker_seen(name, None, false)?;
            idle_since = Instant::now();
            continue;
        }
        if let Some(error) = verdicts.error {
            // The curve was cut short by the store, not by a verdict: nothing is recorded, and
            // the child goes back without counting as an attempt.
            let _ = store.hand_back(&job, name, &format!("gave up waiting for a verdict: {error:#}"));
            return Err(error.context(format!("waiting for the verdict on `{}`", job.architecture)));
        }
        let depth = job.architecture.split_whitespace().count();
        let recorded = store.complete(&job, name, &job.evaluation(depth, &outcome), weights.as_deref())?;
        if recorded.is_none() {
            tracing::warn!(
                "lost the lease on `{}` while training it; another worker's result stands",
                job.architecture
            );
        }
        store.worker_seen(name, None, recorded.is_some())?;
        last_seen = Instant::now();
        sink.finished(&job, &outcome, recorded.is_some());
        trained += 1;
        idle_since = Instant::now();
        if options.max_children.is_some_and(|max| trained >= max) {
            return Ok(trained);
        }
    }
}

/// A worker's side of an assessor: posts the curve of the child it trains and waits for the
/// search's verdict on it.
struct Verdicts<'a> {
    store: &'a Store,
    owner: &'a str,
    job: &'a ClaimedJob,
    /// How long to wait for one verdict before giving up (the worker's `--idle-exit`): a search
    /// killed outright answers no more, and a worker of a cluster job should not hold its
    /// allocation for nothing. The child goes back to the queue for the resumed search.
    give_up_after: Option<Duration>,
    /// A store failure while waiting, or no verdict in time; training stops and the worker
    /// reports it.
    error: Option<anyhow::Error>,
}

/// How long a worker waits for a verdict before it says that it waits.
const VERDICT_PATIENCE: Duration = Duration::from_secs(60);

impl<'a> Verdicts<'a> {
    fn new(store: &'a Store, owner: &'a str, job: &'a ClaimedJob, give_up_after: Option<Duration>) -> Verdicts<'a> {
        Verdicts {
            store,
            owner,
            job,
            give_up_after,
            error: None,
        }
    }

    /// Whether training stops after the epochs of `curve`. A lost lease stops it too: the
    /// worker that took the child over trains it, and this worker's result would be dropped.
    fn judge(&mut self, curve: &[f64]) -> bool {
        self.await_verdict(curve).unwrap_or_else(|e| {
            self.error = Some(e);
            true
        })
    }

    /// Posts `curve` and waits for the verdict on it: whether to stop.
    fn await_verdict(&self, curve: &[f64]) -> anyhow::Result<bool> {
        if !self.store.post_curve(self.job, self.owner, curve)? {
            return Ok(true);
        }
        let started = Instant::now();
        let mut said = false;
        let mut poll = Duration::from_millis(2);
        loop {
            match self.store.awaited_verdict(self.job, self.owner, curve.len())? {
                Awaited::Pending => {}
                Awaited::Continue => return Ok(false),
                Awaited::Stop | Awaited::LeaseLost => return Ok(true),
            }
            if let Some(limit) = self.give_up_after.filter(|limit| started.elapsed() >= *limit) {
                anyhow::bail!(
                    "no verdict from the search's assessor within {:.0} s (the worker's idle limit); is the search running? the child goes back to the queue",
                    limit.as_secs_f64()
                );
            }
            if !said && started.elapsed() >= VERDICT_PATIENCE {
                tracing::warn!(
                    "`{}` waits for the search's assessor to judge epoch {} (is the search running? a resumed search answers)",
                    self.job.architecture,
                    curve.len()
                );
                said = true;
            }
            std::thread::sleep(poll);
            poll = (poll * 2).min(Duration::from_millis(100));
        }
    }
}

/// Evaluates a claimed child, with `judge` asked after every epoch when an assessor watches it.
/// A child that cannot be described (a malformed job) is a failed outcome; a dataset this worker
/// cannot load is an error, so the child goes to another worker.
fn evaluate(
    job: &ClaimedJob,
    datasets: &mut Datasets,
    judge: Option<EpochJudge<'_>>,
    lost: &AtomicBool,
) -> anyhow::Result<(Outcome, Option<Vec<u8>>)> {
    let failed = |reason: String| Outcome {
        accuracy: 0.0,
        params: 0,
        seconds: 0.0,
        failure: Some(reason),
        transient: false,
        curve: Default::default(),
        predicted: false,
        cost: None,
    };
    let arch: Architecture = match job.architecture.parse() {
        Ok(arch) => arch,
        Err(e) => return Ok((failed(format!("the queued architecture is malformed: {e}")), None)),
    };
    let dataset = match DatasetSpec::from_job_string(&job.dataset) {
        Ok(d) => d,
        Err(e) => return Ok((failed(format!("the queued dataset is unknown: {e:#}")), None)),
    };
    match job.evaluator.as_str() {
        // The search answers these itself (`launch::trainer_for`); a queued one is a bug elsewhere.
        e if e == EvaluatorKind::Table.as_str() => Ok((
            failed("a table evaluator's child was queued; the search answers those itself".into()),
            None,
        )),
        e if e == EvaluatorKind::Synthetic.as_str() => {
            let config: SyntheticConfig = match serde_json::from_str(&job.protocol_json) {
                Ok(c) => c,
                Err(e) => {
                    return Ok((
                        failed(format!("the queued synthetic settings are malformed: {e}")),
                        None,
                    ))
                }
            };
            let target: Architecture = config.target.parse().map_err(anyhow::Error::msg)?;
            let info = dataset.describe()?;
            let (input, classes) = (info.image_shape(), info.num_classes());
            match job.watch_epochs {
                // The search's own evaluator, so the synthetic curve is the one it would draw.
                Some(epochs) => Ok(Evaluator::Synthetic {
                    target,
                    input,
                    classes,
                    epochs,
                }
                .evaluate(&arch, 0, false, judge)),
                None => Ok((score_synthetic(&arch, &target, input, classes), None)),
            }
        }
        _ => {
            let protocol: TrainConfig = match serde_json::from_str(&job.protocol_json) {
                Ok(p) => p,
                Err(e) => return Ok((failed(format!("the queued training protocol is malformed: {e}")), None)),
            };
            datasets.get(&dataset, &protocol)?;
            let mine = &datasets.fingerprints[&job.dataset];
            anyhow::ensure!(
                job.data_sha256.is_empty() || &job.data_sha256 == mine,
                "this worker's copy of {dataset} (in {}) has checksum {}, the search's has {}; give this worker the search's data (--data-dir or NAS_DATA_DIR)",
                datasets.source_dir().display(),
                &mine[..12],
                &job.data_sha256[..12.min(job.data_sha256.len())]
            );
            let data = datasets.get(&dataset, &protocol)?;
            let (mut outcome, weights) = train_child(&arch, data, &protocol, job.keep_weights, judge, Some(lost));
            if outcome.failure.is_none() {
                outcome.cost = time_child(job, &arch, data, &protocol);
            }
            Ok((outcome, weights))
        }
    }
}

/// The trained child's cost when its job asks for it: timed here, on the device it trained on,
/// as the search's own process times the children it trains. A measurement that fails (or
/// malformed settings) is logged and leaves the cost to the search (structural figures): the
/// trained child is not lost over its timing.
fn time_child(job: &ClaimedJob, arch: &Architecture, data: &TensorData, protocol: &TrainConfig) -> Option<Cost> {
    let settings = job.cost_json.as_deref()?;
    let measured = serde_json::from_str::<CostConfig>(settings)
        .map_err(anyhow::Error::from)
        .and_then(|config| CostMeter::new(&config, data.input, data.num_classes))
        .and_then(|meter| {
            meter.cost(
                arch,
                data.input,
                data.num_classes,
                protocol.activation,
                Some(data.device),
            )
        });
    match measured {
        Ok(cost) => Some(cost),
        Err(e) => {
            tracing::warn!("could not time `{arch}`: {e:#}");
            None
        }
    }
}

/// Datasets loaded on this worker's device, by what shapes their tensors.
struct Datasets {
    data_dir: Option<PathBuf>,
    device: tch::Device,
    loaded: HashMap<String, TensorData>,
    /// The fingerprint of each dataset this worker loaded, by its queued text.
    fingerprints: HashMap<String, String>,
}

impl Datasets {
    fn new(data_dir: Option<PathBuf>, device: tch::Device) -> Datasets {
        Datasets {
            data_dir,
            device,
            loaded: HashMap::new(),
            fingerprints: HashMap::new(),
        }
    }

    fn source_dir(&self) -> PathBuf {
        nas_datasets::DataSource::resolve(self.data_dir.as_deref()).data_dir
    }

    fn get(&mut self, dataset: &DatasetSpec, protocol: &TrainConfig) -> anyhow::Result<&TensorData> {
        // The holdout split is drawn with the protocol's seed; the test split is not.
        let seed = match protocol.validation {
            Validation::Holdout(_) => protocol.seed,
            Validation::Test => 0,
        };
        let text = dataset.to_job_string();
        let key = format!(
            "{text}|{:?}|{:?}|{seed}|{:?}|{}",
            protocol.normalize, protocol.validation, protocol.train_subset, protocol.train_subset_seed
        );
        if !self.loaded.contains_key(&key) {
            let raw = nas_train::train::load_dataset(dataset, self.data_dir.as_deref()).map_err(|e| {
                anyhow::anyhow!(
                    "this worker cannot load the dataset ({e:#}); give it the search's data: --data-dir or NAS_DATA_DIR for a named dataset (now {}), the same path for a folder",
                    self.source_dir().display()
                )
            })?;
            self.fingerprints.entry(text).or_insert_with(|| raw.fingerprint());
            let data = TensorData::new(&raw, protocol, self.device)?;
            self.loaded.insert(key.clone(), data);
        }
        Ok(&self.loaded[&key])
    }
}

/// Renews the lease on the child the worker trains, every quarter of its length, from its own
/// thread and its own store connection, both opened once per worker. A renewal the store refuses
/// (another worker took the child over) or cannot answer for a whole lease sets the child's
/// `lost` flag, which stops its training; failures to reach the store are warned about as they
/// happen.
struct Heartbeat {
    shared: Arc<(Mutex<Beat>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct Beat {
    job: Option<(ClaimedJob, Arc<AtomicBool>)>,
    stop: bool,
}

impl Heartbeat {
    fn start(db: PathBuf, name: String, lease_secs: f64) -> anyhow::Result<Heartbeat> {
        let store = Store::open(&db)?;
        let shared = Arc::new((Mutex::new(Beat::default()), Condvar::new()));
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || beat(&store, &name, lease_secs, &shared))
        };
        Ok(Heartbeat { shared, thread })
    }

    /// Starts keeping the lease on `job`; the returned flag is set once the lease is lost.
    fn watch(&self, job: &ClaimedJob) -> Arc<AtomicBool> {
        let lost = Arc::new(AtomicBool::new(false));
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner()).job = Some((job.clone(), Arc::clone(&lost)));
        self.shared.1.notify_all();
        lost
    }

    /// Stops renewing the current child's lease (it is finished).
    fn release(&self) {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner()).job = None;
    }

    fn stop(self) {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        self.shared.1.notify_all();
        let _ = self.thread.join();
    }
}

/// The heartbeat thread's loop.
fn beat(store: &Store, name: &str, lease_secs: f64, shared: &(Mutex<Beat>, Condvar)) {
    let every = Duration::from_secs_f64((lease_secs / 4.0).max(0.05));
    let lease = Duration::from_secs_f64(lease_secs);
    let (lock, signal) = shared;
    let mut beat = lock.lock().unwrap_or_else(|p| p.into_inner());
    // The last renewal the store accepted, and the job it was for.
    let mut renewed: Option<(i64, Instant)> = None;
    let mut failing = false;
    while !beat.stop {
        let wait = if failing {
            every.min(Duration::from_secs(1))
        } else {
            every
        };
        beat = signal.wait_timeout(beat, wait).unwrap_or_else(|p| p.into_inner()).0;
        let Some((job, lost)) = beat.job.clone() else {
            continue;
        };
        if beat.stop || lost.load(Ordering::Relaxed) {
            continue;
        }
        let since = match renewed {
            Some((id, at)) if id == job.id => at,
            // A new child: its claim is the first renewal.
            _ => {
                renewed = Some((job.id, Instant::now()));
                Instant::now()
            }
        };
        // The store is asked without holding the lock, so the worker can hand over a new child.
        drop(beat);
        match store.renew_lease(&job, name, lease_secs) {
            Ok(true) => {
                if failing {
                    tracing::warn!(
                        "heartbeat: the store answers again; the lease on `{}` is kept",
                        job.architecture
                    );
                }
                failing = false;
                renewed = Some((job.id, Instant::now()));
                let _ = store.worker_seen(name, Some(job.id), false);
            }
            Ok(false) => {
                tracing::warn!(
                    "the lease on `{}` was lost (another worker took it over); stopping its training",
                    job.architecture
                );
                lost.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                failing = true;
                tracing::warn!(
                    "heartbeat: cannot renew the lease on `{}`: {e:#}; retrying",
                    job.architecture
                );
                if since.elapsed() >= lease {
                    tracing::warn!(
                        "no renewal of the lease on `{}` for {lease_secs} s: another worker may train it now; stopping its training",
                        job.architecture
                    );
                    lost.store(true, Ordering::Relaxed);
                }
            }
        }
        beat = lock.lock().unwrap_or_else(|p| p.into_inner());
    }
}
