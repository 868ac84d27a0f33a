//! `--launcher slurm`: the search submits its workers as one Slurm job array (`sbatch
//! --parsable`), follows the array with `squeue` (`sacct` needs accounting storage, which many
//! clusters and single-node setups lack), reports workers that fail or wait too long, and cancels
//! the array (`scancel`) when the search ends or is interrupted. The Slurm commands are called;
//! nothing binds to Slurm's C library. Workers reach the store through `NAS_DB`, which `sbatch`
//! passes on from the search's environment, so no URL is written into a script. Slurm keeps a
//! job's environment in its records, so a store URL with a password is refused and `PGPASSWORD`
//! is not passed on: the workers read the password from `~/.pgpass` (or `PGPASSFILE`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::options::SearchOptions;
use crate::pool::{PoolStatus, SharedWorkers, WorkerPool};
use nas_config::DeviceChoice;
use nas_config::{RunConfig, SlurmConfig};
use nas_store::Store;

/// The device kind of Slurm workers: CUDA when asked for (`--device cuda`) or when each worker
/// gets a GPU (`gres` names one); else CPU.
pub fn device_kind(slurm: &SlurmConfig, device: DeviceChoice) -> &'static str {
    let gpu = slurm.gres.as_deref().is_some_and(|g| g.contains("gpu"));
    if device == DeviceChoice::Cuda || (gpu && device != DeviceChoice::Cpu) {
        "cuda"
    } else {
        "cpu"
    }
}

/// Everything the batch script and its submission need.
#[derive(Debug, Clone)]
pub struct SlurmSpec {
    pub slurm: SlurmConfig,
    pub workers: usize,
    pub exe: PathBuf,
    pub db: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: &'static str,
    pub lease_secs: f64,
    pub log_dir: PathBuf,
}

impl SlurmSpec {
    /// The job array a run's `[parallel]` and `[slurm]` ask for. Refuses a SQLite store: several
    /// machines writing to one SQLite file over a network filesystem corrupt it.
    pub fn for_config(config: &RunConfig, options: &SearchOptions, device: &'static str) -> anyhow::Result<SlurmSpec> {
        anyhow::ensure!(
            Store::is_postgres(&options.db),
            "--launcher slurm starts workers on other machines, and a SQLite store ({}) shared by several machines over a network filesystem gets corrupted; use a PostgreSQL store: --db postgres://USER@HOST/DB (README: \"Running on a cluster\")",
            options.db.display()
        );
        config.validate()?;
        let workers = config.parallel.worker_count();
        anyhow::ensure!(workers > 0, "--launcher slurm needs --workers N (the job array's size)");
        let log_dir = std::env::current_dir()?.join("runs").join("worker-logs");
        // `#SBATCH --output=` takes the path as one word, unquoted.
        anyhow::ensure!(
            !log_dir.to_string_lossy().chars().any(|c| c.is_whitespace() || c.is_control()),
            "the worker log directory {} has whitespace in its path, which a batch script cannot hold; start the search from a directory without it",
            log_dir.display()
        );
        std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        Ok(SlurmSpec {
            slurm: config.slurm.clone(),
            workers,
            exe: options.worker_exe()?,
            db: options.db.clone(),
            data_dir: options.data_dir.clone(),
            device,
            lease_secs: config.parallel.lease_secs,
            log_dir,
        })
    }

    /// The batch script: a job array of `nas-host worker` processes.
    pub fn batch_script(&self) -> String {
        self.batch_script_for(self.workers)
    }

    /// The batch script for an array of `count` workers (more submitted during a search).
    fn batch_script_for(&self, count: usize) -> String {
        let s = &self.slurm;
        let mut lines = vec![
            "#!/bin/bash".to_string(),
            "#SBATCH --job-name=nas-worker".to_string(),
            format!(
                "#SBATCH --array=0-{}{}",
                count.saturating_sub(1),
                if s.array_parallelism > 0 {
                    format!("%{}", s.array_parallelism)
                } else {
                    String::new()
                }
            ),
            format!("#SBATCH --cpus-per-task={}", s.cpus_per_worker.max(1)),
            format!("#SBATCH --output={}/slurm-%A_%a.log", self.log_dir.display()),
        ];
        let optional = [
            ("partition", &s.partition),
            ("gres", &s.gres),
            ("time", &s.time_limit),
            ("mem", &s.mem_per_worker),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                lines.push(format!("#SBATCH --{name}={value}"));
            }
        }
        lines.extend(s.extra_args.iter().map(|a| format!("#SBATCH {a}")));
        lines.push(String::new());
        lines.push(
            "# The store (NAS_DB) and the data directory (NAS_DATA_DIR) come from the environment sbatch passes on;"
                .into(),
        );
        lines
            .push("# when you submit this by hand, export them first. Workers read their own copy of the data.".into());
        let exe = self.exe.to_string_lossy();
        lines.push(format!(
            "exec {} worker --device {} --threads {} --lease-secs {} --idle-exit {}",
            shlex::try_quote(&exe).unwrap_or_else(|_| exe.clone()),
            self.device,
            s.cpus_per_worker.max(1),
            self.lease_secs,
            s.idle_exit_secs
        ));
        lines.join("\n") + "\n"
    }
}

/// Job arrays to cancel if the process is interrupted (SIGINT, SIGTERM).
fn interrupt_guard() -> &'static Mutex<Vec<String>> {
    static JOBS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    JOBS.get_or_init(|| {
        if let Ok(mut signals) =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        {
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    let jobs = interrupt_guard().lock().unwrap_or_else(|p| p.into_inner()).clone();
                    for job in &jobs {
                        eprintln!("interrupted: cancelling the Slurm workers (job {job})");
                        let _ = Command::new("scancel").arg(job).status();
                    }
                    std::process::exit(128 + signal);
                }
            });
        }
        Mutex::new(Vec::new())
    })
}

/// The job arrays of workers a search submitted, followed by a thread that submits more when its
/// children wait and too few workers are left (workers exit when idle for `idle_exit_secs`, as
/// during a long synchronous batch, or reach their time limit).
pub struct SlurmWorkers {
    shared: Arc<Following>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the search and the follower thread share.
#[derive(Debug, Default)]
struct Following {
    /// Every array submitted, oldest first.
    jobs: Mutex<Vec<String>>,
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
    demand: Mutex<Demand>,
}

impl std::fmt::Debug for SlurmWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlurmWorkers")
            .field("jobs", &self.shared.jobs)
            .finish_non_exhaustive()
    }
}

fn slurm_command(program: &str) -> anyhow::Result<Command> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    anyhow::ensure!(
        found,
        "`{program}` is not on the PATH: --launcher slurm runs on a Slurm cluster's login node (scripts/slurm-local.sh up starts a one-machine cluster)"
    );
    Ok(Command::new(program))
}

/// Submits an array of `count` workers with `sbatch --parsable`; returns its job id, also
/// registered to be cancelled if the search is interrupted.
fn submit_array(spec: &SlurmSpec, count: usize) -> anyhow::Result<String> {
    let guard = interrupt_guard();
    let mut sbatch = slurm_command("sbatch")?;
    sbatch
        .arg("--parsable")
        .env("NAS_DB", &spec.db)
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = &spec.data_dir {
        sbatch.env("NAS_DATA_DIR", std::path::absolute(dir)?);
    }
    let mut child = sbatch.spawn().context("running sbatch")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(spec.batch_script_for(count).as_bytes())?;
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "sbatch refused the worker array: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    // `--parsable` prints "JOBID" or "JOBID;CLUSTER".
    let job = String::from_utf8_lossy(&output.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(!job.is_empty(), "sbatch printed no job id");
    guard.lock().unwrap_or_else(|p| p.into_inner()).push(job.clone());
    Ok(job)
}

impl SlurmWorkers {
    /// Submits the array and starts following it.
    pub fn submit(spec: &SlurmSpec) -> anyhow::Result<SharedWorkers> {
        anyhow::ensure!(
            !nas_store::postgres::has_password(&spec.db.to_string_lossy()),
            "the store URL {} holds a password, which sbatch would pass to the workers in their environment and Slurm would keep in its job records; \
             drop it from --db and put it in ~/.pgpass (or the file PGPASSFILE names) where the search and its workers run, \
             as a line HOST:PORT:DATABASE:USER:PASSWORD (chmod 600)",
            Store::describe(&spec.db)
        );
        if std::env::var_os("PGPASSWORD").is_some() {
            tracing::info!(
                "PGPASSWORD is not passed on to the Slurm workers (Slurm would keep it in its job records); they read ~/.pgpass or PGPASSFILE"
            );
        }
        let job = submit_array(spec, spec.workers)?;
        tracing::info!(
            "submitted {} Slurm workers as job array {job}; logs in {}",
            spec.workers,
            spec.log_dir.display()
        );
        let shared = Arc::new(Following {
            jobs: Mutex::new(vec![job]),
            ..Following::default()
        });
        let thread = {
            let (spec, shared) = (spec.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("slurm-follower".into())
                .spawn(move || follow(&spec, &shared))?
        };
        Ok(Arc::new(SlurmWorkers {
            shared,
            thread: Mutex::new(Some(thread)),
        }))
    }
}

/// How long children must wait with no idle worker before more workers are submitted: idle
/// workers claim a waiting child within a second, so a shorter wait is a worker on its way.
const UNMET_GRACE: Duration = Duration::from_secs(5);

/// The search's children waiting for workers, as its last status said.
#[derive(Debug, Default)]
struct Demand {
    waiting: usize,
    /// Since when children have waited with no idle worker to take them.
    unmet_since: Option<Instant>,
}

impl Demand {
    fn update(&mut self, status: &PoolStatus, now: Instant) {
        self.waiting = status.queued;
        if status.queued > 0 && status.idle == 0 {
            self.unmet_since.get_or_insert(now);
        } else {
            self.unmet_since = None;
        }
    }

    /// How many workers to submit now, with `live` of the `wanted` workers in Slurm's queue
    /// (pending or running): none while a worker is idle or children waited less than
    /// [`UNMET_GRACE`]; else enough to bring the workers back to `wanted`, and no more than
    /// children wait.
    fn workers_to_add(&self, live: usize, wanted: usize, now: Instant) -> usize {
        match self.unmet_since {
            Some(since) if now.duration_since(since) >= UNMET_GRACE => wanted.saturating_sub(live).min(self.waiting),
            _ => 0,
        }
    }
}

/// Arrays in a row whose every task failed before the search gives up (workers that cannot
/// start: a binary or data missing on the nodes), rather than submitting more forever.
const FAILED_ARRAYS_IN_A_ROW: u32 = 3;

/// Whether an ended array's tasks all failed, from `scontrol`'s `JobState` of each: `None` when
/// Slurm no longer remembers them. Workers that exited idle end `COMPLETED`, those that reached
/// their time limit `TIMEOUT`, cancelled ones `CANCELLED`: only `FAILED` (a non-zero exit) and
/// node or memory failures count.
fn all_failed(states: &[String]) -> Option<bool> {
    if states.is_empty() {
        return None;
    }
    Some(
        states
            .iter()
            .all(|s| matches!(s.as_str(), "FAILED" | "NODE_FAIL" | "OUT_OF_MEMORY" | "BOOT_FAIL")),
    )
}

/// The `JobState` of every task of an array, as `scontrol show job` lists them.
fn array_states(program: &str, job: &str) -> Vec<String> {
    let output = Command::new(program).args(["show", "job", job]).output();
    let text = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split_whitespace()
        .filter_map(|kv| kv.strip_prefix("JobState=").map(str::to_string))
        .collect()
}

/// The array's tasks as `squeue` lists them: task id → (state, reason).
type Tasks = BTreeMap<String, (String, String)>;

/// How long one `squeue` may take before its answer counts as unknown (a busy controller).
const SQUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks `squeue` for the array's tasks. A failed or timed-out `squeue` is an error (unknown),
/// never an empty answer; only "invalid job id" — the job is gone — is an empty list.
fn tasks(job: &str) -> anyhow::Result<Tasks> {
    tasks_from("squeue", job)
}

fn tasks_from(program: &str, job: &str) -> anyhow::Result<Tasks> {
    let mut child = Command::new(program)
        .args(["-h", "-r", "-j", job, "-o", "%i|%T|%r"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > SQUEUE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{program} did not answer within {} s", SQUEUE_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !status.success() {
        // squeue exits non-zero once the job is gone (no longer "valid"): a definite answer.
        if stderr.to_ascii_lowercase().contains("invalid job id") {
            return Ok(Tasks::new());
        }
        anyhow::bail!("{program} failed ({status}): {}", stderr.trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('|');
            Some((
                fields.next()?.trim().to_string(),
                (fields.next()?.to_string(), fields.next().unwrap_or("").to_string()),
            ))
        })
        .collect())
}

/// Decides from successive `squeue` answers whether every worker has ended: only after
/// [`QueueWatch::CONSISTENT`] answers in a row list no task, once some task was seen. A failed
/// answer says nothing, and a busy controller's empty answer alone does not end a search.
#[derive(Debug, Default)]
struct QueueWatch {
    seen_any: bool,
    empty_in_a_row: u32,
}

impl QueueWatch {
    const CONSISTENT: u32 = 3;

    /// Takes one answer; true when the workers have all ended.
    fn observe(&mut self, answer: &anyhow::Result<Tasks>) -> bool {
        match answer {
            Err(_) => false,
            Ok(tasks) if tasks.is_empty() => {
                self.empty_in_a_row += 1;
                self.seen_any && self.empty_in_a_row >= Self::CONSISTENT
            }
            Ok(_) => {
                self.seen_any = true;
                self.empty_in_a_row = 0;
                false
            }
        }
    }
}

/// What `scontrol show job` says of a task that left the queue (while Slurm still remembers it).
fn ended_how(task: &str) -> String {
    let output = Command::new("scontrol").args(["show", "job", task]).output();
    let text = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
    };
    match (field("JobState"), field("ExitCode")) {
        (Some(state), Some(code)) => format!("{state}, exit code {code}"),
        _ => "ended".into(),
    }
}

fn follow(spec: &SlurmSpec, shared: &Following) {
    let started = Instant::now();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut warned_pending = false;
    let mut last_poll = Instant::now() - Duration::from_secs(10);
    let pending_warn = Duration::from_secs_f64(spec.slurm.pending_warn_secs);
    // Arrays followed (until `squeue` consistently lists none of their tasks) and those ended.
    let mut watches: BTreeMap<String, QueueWatch> = BTreeMap::new();
    let mut ended_arrays: BTreeSet<String> = BTreeSet::new();
    let mut failed_in_a_row = 0;
    let fail = |reason: String| *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if last_poll.elapsed() < Duration::from_secs(2) {
            continue;
        }
        last_poll = Instant::now();
        let jobs = shared.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut now = Tasks::new();
        let mut unknown = false;
        let mut ended = Vec::new();
        for job in jobs.iter().filter(|j| !ended_arrays.contains(*j)) {
            let watch = watches.entry(job.clone()).or_default();
            let answer = tasks(job);
            if watch.observe(&answer) {
                ended.push(job.clone());
            }
            match answer {
                Ok(tasks) => now.extend(tasks),
                Err(e) => {
                    tracing::warn!("could not ask Slurm about the workers ({e:#}); asking again");
                    unknown = true;
                }
            }
        }
        for (task, (state, reason)) in &now {
            if state == "PENDING" && !warned_pending && started.elapsed() > pending_warn {
                tracing::warn!(
                    "Slurm worker {task} has waited {:.0} s in the queue ({reason}); the search continues with the workers that run",
                    started.elapsed().as_secs_f64()
                );
                warned_pending = true;
            }
        }
        if unknown {
            continue;
        }
        // A task that was running and left the queue ended before the search did.
        for (task, state) in &seen {
            if state == "RUNNING" && !now.contains_key(task) && !task.contains('[') {
                tracing::warn!(
                    "Slurm worker {task} ended before the search ({}); its child goes to another worker when its lease runs out",
                    ended_how(task)
                );
            }
        }
        for job in ended {
            watches.remove(&job);
            match all_failed(&array_states("scontrol", &job)) {
                Some(true) => failed_in_a_row += 1,
                Some(false) => failed_in_a_row = 0,
                None => {}
            }
            ended_arrays.insert(job);
        }
        seen = now
            .iter()
            .map(|(task, (state, _))| (task.clone(), state.clone()))
            .collect();
        if failed_in_a_row >= FAILED_ARRAYS_IN_A_ROW && watches.is_empty() {
            fail(format!(
                "every Slurm worker of the last {failed_in_a_row} job arrays failed (last: {}); see their logs ({}/slurm-*.log) and resume the run",
                jobs.last().map_or("?", String::as_str),
                spec.log_dir.display()
            ));
            return;
        }
        let live = now.len();
        let add =
            shared
                .demand
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .workers_to_add(live, spec.workers, Instant::now());
        if add == 0 || shared.stop.load(Ordering::SeqCst) {
            continue;
        }
        match submit_array(spec, add) {
            Ok(job) => {
                tracing::info!(
                    "children wait and {live} of {} Slurm workers are left (the others exited idle, reached their time limit or failed): submitted {add} more as job array {job}",
                    spec.workers
                );
                shared.jobs.lock().unwrap_or_else(|p| p.into_inner()).push(job);
            }
            Err(e) => {
                fail(format!(
                    "children wait and {live} of {} Slurm workers are left, and submitting more failed: {e:#}",
                    spec.workers
                ));
                return;
            }
        }
    }
}

impl WorkerPool for SlurmWorkers {
    fn check(&self) -> anyhow::Result<()> {
        match &*self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(reason) => anyhow::bail!("{reason}"),
            None => Ok(()),
        }
    }

    /// Cancels every array (workers still training put nothing in the store; their children were
    /// either recorded or are not needed any more).
    fn stop(&self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
        let jobs = self.shared.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for job in &jobs {
            match Command::new("scancel").arg(job).status() {
                Ok(status) if status.success() => tracing::info!("cancelled the Slurm workers (job {job})"),
                Ok(status) => tracing::warn!("scancel {job} exited with {status}"),
                Err(e) => tracing::warn!("could not run scancel {job}: {e}"),
            }
        }
        interrupt_guard()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|j| !jobs.contains(j));
    }

    fn demand(&self, status: &PoolStatus) {
        self.shared
            .demand
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(status, Instant::now());
    }
}

impl Drop for SlurmWorkers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `nas-host slurm script`: the batch script a run configuration would submit.
pub fn script_for(config: &RunConfig, options: &SearchOptions) -> anyhow::Result<String> {
    let device = device_kind(&config.slurm, options.device);
    Ok(SlurmSpec::for_config(config, options, device)?.batch_script())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_consistent_empty_answers_end_the_workers() {
        let running: Tasks = [("7_0".to_string(), ("RUNNING".to_string(), String::new()))].into();
        let mut watch = QueueWatch::default();
        assert!(
            !watch.observe(&Ok(Tasks::new())),
            "nothing seen yet: still pending submission"
        );
        assert!(!watch.observe(&Ok(running.clone())));
        // A busy controller: failures and a lone empty answer in between.
        assert!(!watch.observe(&Err(anyhow::anyhow!("timed out"))));
        assert!(!watch.observe(&Ok(Tasks::new())));
        assert!(!watch.observe(&Err(anyhow::anyhow!("socket timed out"))));
        assert!(!watch.observe(&Ok(running)));
        assert!(!watch.observe(&Ok(Tasks::new())));
        assert!(!watch.observe(&Ok(Tasks::new())));
        assert!(watch.observe(&Ok(Tasks::new())), "three empty answers in a row");
    }

    fn status(queued: usize, idle: usize) -> PoolStatus {
        PoolStatus { busy: 1, idle, queued }
    }

    #[test]
    fn workers_are_added_only_when_children_wait_with_no_idle_worker_for_a_while() {
        let t0 = Instant::now();
        let mut demand = Demand::default();
        assert_eq!(demand.workers_to_add(0, 4, t0), 0, "nothing waits");
        demand.update(&status(3, 0), t0);
        assert_eq!(demand.workers_to_add(1, 4, t0 + Duration::from_secs(1)), 0, "too soon");
        assert_eq!(
            demand.workers_to_add(1, 4, t0 + UNMET_GRACE),
            3,
            "three wait, three workers missing"
        );
        demand.update(&status(2, 0), t0 + Duration::from_secs(2));
        assert_eq!(
            demand.workers_to_add(0, 4, t0 + UNMET_GRACE),
            2,
            "no more workers than children wait"
        );
        assert_eq!(demand.workers_to_add(4, 4, t0 + UNMET_GRACE), 0, "all workers there");
        // An idle worker takes the next child: the wait starts again.
        demand.update(&status(2, 1), t0 + Duration::from_secs(3));
        assert_eq!(demand.workers_to_add(0, 4, t0 + Duration::from_secs(60)), 0);
        demand.update(&status(2, 0), t0 + Duration::from_secs(4));
        assert_eq!(demand.workers_to_add(0, 4, t0 + Duration::from_secs(8)), 0);
        assert_eq!(demand.workers_to_add(0, 4, t0 + Duration::from_secs(9)), 2);
    }

    #[test]
    fn only_arrays_whose_every_task_failed_count_as_failed() {
        let states = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(all_failed(&[]), None, "Slurm forgot the array");
        assert_eq!(all_failed(&states(&["FAILED", "OUT_OF_MEMORY"])), Some(true));
        assert_eq!(all_failed(&states(&["FAILED", "COMPLETED"])), Some(false));
        assert_eq!(
            all_failed(&states(&["COMPLETED", "TIMEOUT"])),
            Some(false),
            "idle exits"
        );
        assert_eq!(all_failed(&states(&["CANCELLED"])), Some(false));
    }

    #[test]
    fn scontrol_lists_the_state_of_every_task() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scontrol");
        std::fs::write(
            &path,
            "#!/bin/sh\necho 'JobId=8 ArrayJobId=7 ArrayTaskId=0 JobName=nas-worker'\necho '   JobState=COMPLETED Reason=None ExitCode=0:0'\necho\necho 'JobId=9 ArrayJobId=7 ArrayTaskId=1'\necho '   JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0'\n",
        )
        .unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
        assert_eq!(array_states(path.to_str().unwrap(), "7"), ["COMPLETED", "FAILED"]);
        assert!(array_states("/nonexistent/scontrol", "7").is_empty());
    }

    #[test]
    fn a_failing_squeue_is_unknown_and_a_gone_job_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let fake = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).unwrap();
            path.to_string_lossy().into_owned()
        };
        let busy = fake(
            "busy",
            "echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2; exit 1",
        );
        assert!(tasks_from(&busy, "7").is_err());
        let gone = fake(
            "gone",
            "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
        );
        assert!(tasks_from(&gone, "7").unwrap().is_empty());
        let listing = fake("listing", "echo '7_0|RUNNING|None'; echo '7_1|PENDING|Resources'");
        let tasks = tasks_from(&listing, "7").unwrap();
        assert_eq!(tasks["7_1"], ("PENDING".to_string(), "Resources".to_string()));
    }

    #[test]
    fn the_worker_binary_path_is_quoted() {
        let exe = "/opt/my nas/it's; rm -rf ~/nas-host";
        let spec = SlurmSpec {
            slurm: SlurmConfig::default(),
            workers: 1,
            exe: PathBuf::from(exe),
            db: PathBuf::from("postgres://db/nas"),
            data_dir: None,
            device: "cpu",
            lease_secs: 60.0,
            log_dir: PathBuf::from("/tmp/logs"),
        };
        let script = spec.batch_script();
        let exec = script.lines().find(|l| l.starts_with("exec ")).unwrap();
        let words = shlex::split(exec).unwrap();
        assert_eq!(&words[..3], ["exec", exe, "worker"], "{exec}");
    }

    #[test]
    fn the_batch_script_holds_every_option_and_no_store_url() {
        let spec = SlurmSpec {
            slurm: SlurmConfig {
                partition: Some("gpu".into()),
                gres: Some("gpu:1".into()),
                time_limit: Some("04:00:00".into()),
                cpus_per_worker: 4,
                mem_per_worker: Some("16G".into()),
                array_parallelism: 2,
                extra_args: vec!["--account=lab".into()],
                ..SlurmConfig::default()
            },
            workers: 8,
            exe: PathBuf::from("/opt/nas-host"),
            db: PathBuf::from("postgres://nas:secret@db/nas"),
            data_dir: None,
            device: "cuda",
            lease_secs: 60.0,
            log_dir: PathBuf::from("/home/me/runs/worker-logs"),
        };
        let script = spec.batch_script();
        for line in [
            "#SBATCH --array=0-7%2",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --time=04:00:00",
            "#SBATCH --mem=16G",
            "#SBATCH --account=lab",
            "#SBATCH --output=/home/me/runs/worker-logs/slurm-%A_%a.log",
            "exec /opt/nas-host worker --device cuda --threads 4 --lease-secs 60 --idle-exit 600",
        ] {
            assert!(script.lines().any(|l| l == line), "missing `{line}` in\n{script}");
        }
        assert!(!script.contains("secret") && !script.contains("postgres://"));
        assert_eq!(device_kind(&spec.slurm, DeviceChoice::Auto), "cuda");
        assert_eq!(device_kind(&SlurmConfig::default(), DeviceChoice::Auto), "cpu");
    }

    #[test]
    fn a_sqlite_store_is_refused_for_workers_on_other_machines() {
        let config = RunConfig {
            parallel: nas_config::ParallelConfig {
                workers: 2,
                launcher: nas_config::Launcher::Slurm,
                ..Default::default()
            },
            ..RunConfig::default()
        };
        let options = SearchOptions::new(PathBuf::from("runs/nas.sqlite"));
        let err = SlurmSpec::for_config(&config, &options, "cpu").unwrap_err().to_string();
        assert!(err.contains("PostgreSQL") && err.contains("corrupt"), "{err}");
    }
}
