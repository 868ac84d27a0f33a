//! Where children are trained: one at a time in the search process ([`InProcess`]), or by worker
//! processes through the run store's queue ([`Queued`]), which [`LocalWorkers`] starts and
//! supervises on this machine. The search loop sees only [`Trainer`]: it submits children and
//! waits for any one to finish.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::arch::Architecture;
use crate::assess::Watch;
use crate::config::{Launcher, ParallelConfig};
use crate::device::DeviceChoice;
use crate::evaluator::{Evaluator, EvaluatorKind, Outcome};
use crate::store::{queue::unix_now, JobState, NewEvaluation, NewJob, Store};

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

/// The pool's state as the store sees it: workers seen within a lease, busy when they hold a
/// child, and the children waiting.
pub fn pool_status(store: &Store, lease_secs: f64) -> anyhow::Result<PoolStatus> {
    let workers = store.workers(unix_now() - lease_secs.max(10.0))?;
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

/// How [`LocalWorkers`] starts each worker process.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The nas-host binary.
    pub exe: PathBuf,
    pub db: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: DeviceChoice,
    /// The GPU each worker is pinned to (`CUDA_VISIBLE_DEVICES`), one entry per worker; `None`
    /// for CPU workers.
    pub gpus: Vec<Option<u32>>,
    pub threads: usize,
    pub lease_secs: f64,
    /// Where each worker's log goes (`worker-N.log`).
    pub log_dir: PathBuf,
}

impl WorkerSpec {
    /// The workers `[parallel]` asks for on this machine, with the binary that is running now.
    pub fn for_config(
        parallel: &ParallelConfig,
        db: &Path,
        data_dir: Option<&Path>,
        device_kind: &str,
    ) -> anyhow::Result<WorkerSpec> {
        let count = parallel.worker_count();
        let gpus: Vec<Option<u32>> = if device_kind == "cuda" {
            let listed = if parallel.gpus.is_empty() {
                (0..tch::Cuda::device_count().max(1) as u32).collect()
            } else {
                parallel.gpus.clone()
            };
            (0..count).map(|i| Some(listed[i % listed.len()])).collect()
        } else {
            vec![None; count]
        };
        let device = match device_kind {
            "cuda" => DeviceChoice::Cuda,
            _ => DeviceChoice::Cpu,
        };
        let log_dir = if Store::is_postgres(db) {
            PathBuf::from("runs/worker-logs")
        } else {
            db.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("worker-logs")
        };
        Ok(WorkerSpec {
            exe: std::env::current_exe().context("finding the nas-host binary to start workers with")?,
            db: db.to_path_buf(),
            data_dir: data_dir.map(Path::to_path_buf),
            device,
            gpus,
            threads: if device_kind == "cuda" {
                parallel.threads_per_worker.max(1)
            } else {
                parallel.threads_for(count)
            },
            lease_secs: parallel.lease_secs,
            log_dir,
        })
    }
}

/// This machine's name, as workers record it.
pub fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    if ok && end > 0 {
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    } else {
        "localhost".into()
    }
}

/// The name a worker process records itself under: its host and process id, and its Slurm
/// task when Slurm started it (so `scancel` can find it).
pub fn worker_name(pid: u32) -> String {
    let slurm = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(job), Ok(task)) if pid == std::process::id() => format!(":slurm-{job}_{task}"),
        _ => String::new(),
    };
    format!("{}:{pid}{slurm}", host_name())
}

fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let result = unsafe { libc::kill(pid as libc::pid_t, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Puts back in the queue the children of workers on this machine whose processes are gone (a
/// search killed with its workers), without waiting for their leases to expire.
pub fn reclaim_dead_local_workers(store: &Store) -> anyhow::Result<usize> {
    let host = host_name();
    let mut reclaimed = 0;
    for worker in store.workers(0.0)? {
        if worker.host == host && !process_alive(worker.pid) {
            reclaimed += store.requeue_owner(&worker.name, &format!("worker {} is gone", worker.name))?;
            store.worker_stopped(&worker.name)?;
        }
    }
    if reclaimed > 0 {
        tracing::info!("{reclaimed} children of workers that are gone went back to the queue");
    }
    Ok(reclaimed)
}

/// Worker processes on this machine, started by a search (or a comparison) and supervised by a
/// thread: a worker that exits is reported, its child goes back to the queue at once and a
/// replacement starts. Dropping it stops the workers. Workers die with the process that
/// started them (`PR_SET_PDEATHSIG`), so a killed search leaves none behind.
pub struct LocalWorkers {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Shared {
    stop: AtomicBool,
    /// Why the pool gave up (workers that cannot even start).
    failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for LocalWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWorkers").finish_non_exhaustive()
    }
}

/// Workers that exit within this time of starting count as failing to start.
const QUICK_EXIT: Duration = Duration::from_secs(10);
/// Quick exits in a row of one worker slot after which the pool gives up.
const QUICK_EXITS_ALLOWED: u32 = 3;

struct Slot {
    index: usize,
    child: Child,
    name: String,
    started: Instant,
    quick_exits: u32,
}

impl LocalWorkers {
    pub fn start(spec: WorkerSpec) -> anyhow::Result<SharedWorkers> {
        std::fs::create_dir_all(&spec.log_dir)
            .with_context(|| format!("creating the worker log directory {}", spec.log_dir.display()))?;
        let store = Store::open(&spec.db)?;
        reclaim_dead_local_workers(&store)?;
        let mut slots = Vec::new();
        for index in 0..spec.gpus.len() {
            slots.push(spawn(&spec, index, 0)?);
        }
        tracing::info!(
            "started {} workers ({} thread{} each{}); logs in {}",
            slots.len(),
            spec.threads,
            if spec.threads == 1 { "" } else { "s" },
            match spec.gpus.first() {
                Some(Some(_)) => format!(
                    ", on GPUs {}",
                    spec.gpus
                        .iter()
                        .map(|g| g.map_or("-".into(), |g| g.to_string()))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                _ => String::new(),
            },
            spec.log_dir.display()
        );
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("worker-supervisor".into())
                .spawn(move || supervise(spec, store, slots, &shared))?
        };
        Ok(Arc::new(LocalWorkers {
            shared,
            thread: Mutex::new(Some(thread)),
        }))
    }
}

impl WorkerPool for LocalWorkers {
    fn check(&self) -> anyhow::Result<()> {
        match &*self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(reason) => anyhow::bail!("{reason}"),
            None => Ok(()),
        }
    }

    /// Stops every worker (their children in training go back to the queue) and waits for them.
    fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LocalWorkers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_path(spec: &WorkerSpec, index: usize) -> PathBuf {
    spec.log_dir.join(format!("worker-{index}.log"))
}

fn spawn(spec: &WorkerSpec, index: usize, quick_exits: u32) -> anyhow::Result<Slot> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(spec, index))
        .with_context(|| format!("opening {}", log_path(spec, index).display()))?;
    let mut command = Command::new(&spec.exe);
    command
        .arg("worker")
        // Through the environment, so a PostgreSQL password stays out of the process list.
        .env("NAS_DB", &spec.db)
        .args(["--threads", &spec.threads.to_string()])
        .args(["--lease-secs", &spec.lease_secs.to_string()])
        .args([
            "--device",
            match spec.device {
                DeviceChoice::Cuda => "cuda",
                _ => "cpu",
            },
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(dir) = &spec.data_dir {
        command.arg("--data-dir").arg(dir);
    }
    if let Some(Some(gpu)) = spec.gpus.get(index) {
        command.env("CUDA_VISIBLE_DEVICES", gpu.to_string());
    }
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(move || {
            // Die with the thread that started us (the supervisor, which lives as long as the
            // search), and at once if the search is already gone.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting worker {index} ({})", spec.exe.display()))?;
    Ok(Slot {
        index,
        name: worker_name(child.id()),
        child,
        started: Instant::now(),
        quick_exits,
    })
}

/// The last lines of a worker's log, to say why it exited.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let length = file.metadata().map_or(0, |m| m.len());
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(2000)));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

fn supervise(spec: WorkerSpec, store: Store, mut slots: Vec<Slot>, shared: &Shared) {
    let give_up = |reason: String| {
        tracing::error!("{reason}");
        *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    };
    let mut last_reclaim = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        for slot in &mut slots {
            let status = match slot.child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("checking worker {}: {e}", slot.name);
                    continue;
                }
            };
            let log = log_path(&spec, slot.index);
            let requeued = store
                .requeue_owner(&slot.name, &format!("worker {} exited ({status})", slot.name))
                .unwrap_or(0);
            let _ = store.worker_stopped(&slot.name);
            let quick_exits = if slot.started.elapsed() < QUICK_EXIT {
                slot.quick_exits + 1
            } else {
                0
            };
            if quick_exits >= QUICK_EXITS_ALLOWED {
                give_up(format!(
                    "worker {} exited {quick_exits} times right after starting; last {}: {}",
                    slot.index,
                    log.display(),
                    log_tail(&log)
                ));
                stop_all(&store, &mut slots);
                return;
            }
            tracing::warn!(
                "worker {} ({}) exited ({status}){}; starting a replacement (log: {})",
                slot.index,
                slot.name,
                if requeued > 0 {
                    "; the child it was training goes back to the queue"
                } else {
                    ""
                },
                log.display()
            );
            match spawn(&spec, slot.index, quick_exits) {
                Ok(replacement) => *slot = replacement,
                Err(e) => {
                    give_up(format!("could not replace worker {}: {e:#}", slot.index));
                    stop_all(&store, &mut slots);
                    return;
                }
            }
        }
        if last_reclaim.elapsed() > Duration::from_secs(5) {
            let _ = reclaim_dead_local_workers(&store);
            last_reclaim = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_all(&store, &mut slots);
}

fn stop_all(store: &Store, slots: &mut [Slot]) {
    for slot in slots.iter_mut() {
        let _ = slot.child.kill();
        let _ = slot.child.wait();
        let _ = store.requeue_owner(&slot.name, &format!("worker {} was stopped", slot.name));
        let _ = store.worker_stopped(&slot.name);
    }
}

/// The device kind children of `evaluator` are trained on when `device` is asked for: `none`
/// for the synthetic evaluator (any worker scores it).
pub fn device_kind_for(evaluator: EvaluatorKind, device: DeviceChoice) -> anyhow::Result<&'static str> {
    Ok(match evaluator {
        EvaluatorKind::Synthetic => "none",
        EvaluatorKind::Train => match crate::device::select(device)? {
            tch::Device::Cpu => "cpu",
            _ => "cuda",
        },
    })
}

/// The trainer a run's `[parallel]` asks for, and the workers it started (if any): in-process
/// training without workers; else the store's queue, served by local workers started here (or a
/// comparison's `shared` pool), or by workers started by hand (`launcher = "none"`).
pub fn trainer_for(
    config: &crate::config::RunConfig,
    mdp: &crate::mdp::Mdp,
    options: &crate::search::SearchOptions,
) -> anyhow::Result<(Box<dyn Trainer>, Option<SharedWorkers>)> {
    let parallel = &config.parallel;
    if !parallel.uses_workers() && options.shared_workers.is_none() {
        let evaluator = Evaluator::for_run(config, mdp, options.data_dir.as_deref(), options.device)?;
        return Ok((Box::new(InProcess::new(evaluator, config.dataset.as_str())), None));
    }
    // The search checks the synthetic target itself; workers only train.
    if config.evaluator == EvaluatorKind::Synthetic {
        Evaluator::for_run(config, mdp, None, DeviceChoice::Cpu)?;
    }
    let device_kind = match (config.evaluator, parallel.launcher) {
        // Workers run on other machines: what this one has says nothing about theirs.
        (EvaluatorKind::Train, Launcher::Slurm) => crate::slurm::device_kind(&config.slurm, options.device),
        (evaluator, _) => device_kind_for(evaluator, options.device)?,
    };
    let workers: Option<SharedWorkers> = match (&options.shared_workers, parallel.launcher) {
        (Some(shared), _) => Some(Arc::clone(shared)),
        (None, Launcher::Local) => Some(LocalWorkers::start(WorkerSpec::for_config(
            parallel,
            &options.db,
            options.data_dir.as_deref(),
            device_kind,
        )?)?),
        (None, Launcher::Slurm) => Some(crate::slurm::SlurmWorkers::submit(
            &crate::slurm::SlurmSpec::for_config(config, options, device_kind)?,
        )?),
        (None, Launcher::None) => None,
    };
    // Workers load their own copy of the data; the search's fingerprint lets them check it.
    let data_sha256 = match config.evaluator {
        EvaluatorKind::Synthetic => String::new(),
        EvaluatorKind::Train => {
            let source = nas_datasets::DataSource::resolve(options.data_dir.as_deref());
            nas_datasets::load(config.dataset, &source)
                .with_context(|| format!("loading dataset {}", config.dataset))?
                .fingerprint()
        }
    };
    let trainer = Queued::new(
        device_kind,
        config.dataset.as_str(),
        config.evaluator.as_str(),
        workers.clone(),
        &options.db,
        parallel.lease_secs,
        data_sha256,
    );
    Ok((Box::new(trainer), workers))
}
