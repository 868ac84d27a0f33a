//! Worker processes on this machine (`--workers N`): started with the running binary, watched by a
//! supervisor thread that requeues a dead worker's child at once and starts a replacement, and
//! killed with the search (`PR_SET_PDEATHSIG`).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use nas_config::DeviceChoice;
use nas_config::ParallelConfig;
use nas_store::{OwnerGone, Store};

use crate::pool::{SharedWorkers, WorkerPool};

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
        let log_dir = match Store::sqlite_path(db)? {
            Some(file) => file
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("worker-logs"),
            None => PathBuf::from("runs/worker-logs"),
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
            // A search killed with its workers: they were stopped, the children did nothing wrong.
            reclaimed += store.requeue_owner(
                &worker.name,
                &format!("worker {} is gone", worker.name),
                OwnerGone::Stopped,
            )?;
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
            // A worker killed by a signal while the search stops (Ctrl-C reaches the whole
            // process group) was interrupted; one that exited on its own died on its child.
            let interrupted = shared.stop.load(Ordering::SeqCst)
                || std::os::unix::process::ExitStatusExt::signal(&status)
                    .is_some_and(|s| s == libc::SIGINT || s == libc::SIGTERM);
            let gone = if interrupted {
                OwnerGone::Stopped
            } else {
                OwnerGone::Died
            };
            let requeued = store
                .requeue_owner(&slot.name, &format!("worker {} exited ({status})", slot.name), gone)
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
        let _ = store.requeue_owner(
            &slot.name,
            &format!("worker {} was stopped", slot.name),
            OwnerGone::Stopped,
        );
        let _ = store.worker_stopped(&slot.name);
    }
}
