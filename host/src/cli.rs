//! The `nas-host` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use nas_datasets::{DataSource, DatasetName};

use crate::arch::Architecture;
use crate::config::{ParallelOverrides, RunConfig, RunOverrides, TrainOverrides};
use crate::device::DeviceChoice;
use crate::frozen_policy::SampleSink;
use crate::mdp::Mdp;
use crate::plugin::{self, Runtime};
use crate::search::{self, EpisodeSink, SearchOptions, Start};
use crate::store::{EpisodeRecord, EvalSampleRow, Store};
use crate::train::{self, TensorData};
use crate::{frozen_policy, report};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser, Debug)]
#[command(
    name = "nas-host",
    version,
    about = "Neural architecture search by reinforcement learning with sandboxed WebAssembly agents",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand, `nas-host --agent A --reward R …` runs a search.
    #[command(flatten)]
    search: SearchArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run (or resume) an architecture search.
    Search(SearchArgs),
    /// Sample architectures from a run's frozen final policy, train them, and report mean ± std.
    Eval(EvalArgs),
    /// One table across runs (Markdown, and CSV with --csv); with --plan, runs the comparison first.
    Compare(CompareArgs),
    /// Write a Markdown report with plots for a run.
    Report(ReportArgs),
    /// List the runs in the store, and the workers training children now.
    Runs(StoreArgs),
    /// Train children from the store's queue (for parallel searches; `search --workers N`
    /// starts its own).
    Worker(WorkerArgs),
    /// Slurm helpers.
    #[command(subcommand)]
    Slurm(SlurmCommand),
    /// Find and inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Train one architecture and print its accuracy, parameter count and time per epoch.
    TrainArch(TrainArchArgs),
    /// Train a run's best architectures (or a given one) and write them as TorchScript, ONNX,
    /// safetensors + model.py and model.json.
    Export(ExportArgs),
    /// Classify PNG/JPEG images with an exported model.
    Predict(PredictArgs),
    /// Print an architecture's layer table (output shapes, parameters, multiply-adds), as
    /// torchinfo's summary does; nothing is trained.
    ShowArch(ShowArchArgs),
    /// Download (when missing), verify and summarise datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
}

#[derive(Subcommand, Debug)]
enum DatasetsCommand {
    /// Make sure a dataset is present and valid; prints its split sizes.
    Fetch {
        dataset: DatasetName,
        /// Directory with `mnist/` and `cifar-10-batches-bin/` (default: $NAS_DATA_DIR, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum SlurmCommand {
    /// Print the batch script `--launcher slurm` would submit (a job array of workers), for
    /// submitting by hand: `nas-host slurm script --config C --workers 8 --db postgres://… > w.sh`.
    Script(SearchArgs),
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// Show the plugins found on the plugin path (./plugins, $NAS_PLUGIN_PATH, the build's plugins/).
    List,
    /// Show one plugin's description and contract version.
    Inspect { file: String },
}

#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The run store: a SQLite file, or a PostgreSQL database (postgres://USER@HOST/DB).
    #[arg(long, default_value = "runs/nas.sqlite", env = "NAS_DB")]
    pub db: PathBuf,
}

/// Where data comes from and where training runs.
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Directory with `mnist/` and `cifar-10-batches-bin/` (default: $NAS_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

#[derive(Args, Debug, Clone, Default)]
struct SearchArgs {
    #[command(flatten)]
    overrides: RunOverrides,
    /// Run configuration (TOML); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue run RUN from its last committed episode.
    #[arg(long, value_name = "RUN")]
    resume: Option<i64>,
    /// With --resume: continue even if a plugin file or the device changed since the run started.
    #[arg(long)]
    force: bool,
    /// Train architectures even if the cache already has them.
    #[arg(long)]
    no_cache: bool,
    /// One JSON line per episode instead of the progress bar.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    parallel: ParallelOverrides,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct WorkerArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    data: DataArgs,
    /// libtorch threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds a claim on a child lasts without a heartbeat.
    #[arg(long, default_value_t = 60.0)]
    lease_secs: f64,
    /// Exit after this many seconds without a child to train, or waiting this long for the
    /// search's verdict on a watched child (default: wait forever).
    #[arg(long)]
    idle_exit: Option<f64>,
    /// Exit after training this many children.
    #[arg(long)]
    max_children: Option<usize>,
}

#[derive(Args, Debug)]
struct EvalArgs {
    run: i64,
    /// Architectures to sample (default: the run's [eval] samples, 50).
    #[arg(long)]
    samples: Option<usize>,
    /// Look samples up in the architecture cache (trained with the run's seed) instead of
    /// training each afresh with its own seed: cheap, but the std then leaves out training noise.
    #[arg(long)]
    reuse_cache: bool,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    parallel: ParallelOverrides,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// Runs to compare.
    #[arg(required_unless_present = "plan")]
    runs: Vec<i64>,
    /// Run a comparison plan first (agents × seeds on one configuration, each then evaluated),
    /// and compare its runs. See configs/compare-cifar5.toml.
    #[arg(long, conflicts_with = "runs")]
    plan: Option<PathBuf>,
    /// Worker processes shared by all the plan's searches, which then run at once.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// libtorch threads per worker (default: the cores shared out evenly).
    #[arg(long)]
    threads_per_worker: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Also write the table as CSV to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
struct ReportArgs {
    run: i64,
    /// Output directory (default: runs/report-RUN).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
struct ExportArgs {
    run: i64,
    /// Export the K best-rewarded distinct architectures of the run (into OUT/top-1 … OUT/top-K
    /// when K > 1).
    #[arg(long, default_value_t = 1, conflicts_with = "arch")]
    top: usize,
    /// Export this architecture instead (trained with the run's protocol and data).
    #[arg(long)]
    arch: Option<String>,
    /// Epochs to train (default: the run's protocol; more than the search used is usual).
    #[arg(long)]
    epochs: Option<usize>,
    /// Output directory (default: runs/export-RUN).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write into an output directory that already exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// A directory written by `nas-host export`.
    model: PathBuf,
    /// PNG or JPEG files; converted to the model's channels and resized to its input if needed.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct ShowArchArgs {
    /// The architecture in canonical form, e.g. "conv(32,3) pool(5,3) fc(64)".
    arch: String,
    /// Dataset whose input shape and classes the network is built for.
    #[arg(long, default_value_t = DatasetName::Mnist3)]
    dataset: DatasetName,
    /// Print the table as JSON.
    #[arg(long)]
    json: bool,
}

/// `train-arch`'s protocol: a run configuration's `[train]` and `[mdp]` (or the defaults), with
/// these flags on top.
#[derive(Args, Debug)]
struct TrainArchArgs {
    /// Dataset (default: the configuration's, else mnist3).
    #[arg(long)]
    dataset: Option<DatasetName>,
    /// Take the training protocol, search space and dataset from a run configuration, e.g.
    /// configs/seed-exact.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// The architecture in canonical form, e.g. "conv(32,3) pool(5,3) fc(64)".
    #[arg(long)]
    arch: String,
    #[command(flatten)]
    protocol: TrainOverrides,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Search(args)) => run_search(args),
        None if cli.search.overrides.agent.is_some()
            || cli.search.overrides.reward.is_some()
            || cli.search.overrides.assessor.is_some()
            || cli.search.config.is_some()
            || cli.search.resume.is_some() =>
        {
            run_search(cli.search)
        }
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return ExitCode::from(2);
        }
        Some(Command::Eval(args)) => run_eval(args),
        Some(Command::Compare(args)) => run_compare(args),
        Some(Command::Report(args)) => run_report(args),
        Some(Command::Runs(args)) => list_runs(args),
        Some(Command::Worker(args)) => run_worker(args),
        Some(Command::Slurm(SlurmCommand::Script(args))) => slurm_script(args),
        Some(Command::Plugins(PluginsCommand::List)) => plugins_list(),
        Some(Command::Plugins(PluginsCommand::Inspect { file })) => plugins_inspect(&file),
        Some(Command::TrainArch(args)) => train_arch(args),
        Some(Command::ShowArch(args)) => show_arch(args),
        Some(Command::Export(args)) => run_export(args),
        Some(Command::Predict(args)) => run_predict(args),
        Some(Command::Datasets(DatasetsCommand::Fetch { dataset, data_dir })) => fetch_dataset(dataset, data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl DataArgs {
    /// Search options for commands that search or evaluate (with the architecture cache on).
    fn search_options(&self, store: &StoreArgs) -> SearchOptions {
        SearchOptions {
            data_dir: self.data_dir.clone(),
            device: self.device,
            ..SearchOptions::new(store.db.clone())
        }
    }
}

/// Shows a search's (and an evaluation's) progress as a bar on stderr: episodes, best and last
/// reward, and with workers how many are busy, the queue and children trained per hour; hidden
/// when stderr is not a terminal (indicatif's own rule). A comparison's searches share one bar.
#[derive(Default)]
struct ProgressSink {
    bar: Option<ProgressBar>,
    best: f64,
    last: String,
    pool: Option<crate::pool::PoolStatus>,
    /// Children trained (not served from the cache) since the bar started, of them stopped early
    /// by the assessor, and when it started.
    trained: usize,
    stopped: usize,
    since: Option<std::time::Instant>,
    /// Runs whose episodes the bar counts (several when a comparison runs them at once).
    runs: Vec<i64>,
}

impl ProgressSink {
    fn start_bar(&mut self, done: usize, total: usize) {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta} | {msg}")
                .expect("valid template"),
        );
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.runs.clear();
    }

    fn refresh(&self) {
        let Some(bar) = &self.bar else { return };
        let mut message = format!("best {:.4} | last {}", self.best, self.last);
        if self.stopped > 0 {
            message = format!("{} of {} stopped early | {message}", self.stopped, self.trained);
        }
        if let Some(pool) = self.pool {
            let hours = self.since.map_or(0.0, |s| s.elapsed().as_secs_f64() / 3600.0);
            let rate = if hours > 0.0 { self.trained as f64 / hours } else { 0.0 };
            message = format!(
                "workers {} busy {} idle | {} queued | {rate:.0} children/h | {message}",
                pool.busy, pool.idle, pool.queued
            );
        }
        bar.set_message(message);
    }
}

impl EpisodeSink for ProgressSink {
    fn started(&mut self, run: i64, committed: &[EpisodeRecord], total: usize) {
        let best = committed.iter().map(|e| e.reward).fold(f64::NEG_INFINITY, f64::max);
        match &self.bar {
            // Another search of a comparison running at the same time: one bar for all.
            Some(bar) if !self.runs.is_empty() => {
                bar.inc_length(total as u64);
                bar.inc(committed.len() as u64);
                self.best = self.best.max(best);
            }
            _ => {
                self.best = best;
                self.start_bar(committed.len(), total);
                self.since = Some(std::time::Instant::now());
                self.trained = 0;
                self.stopped = 0;
            }
        }
        self.runs.push(run);
    }

    fn episode(&mut self, _run: i64, episode: &EpisodeRecord) {
        self.best = self.best.max(episode.reward);
        self.trained += usize::from(!episode.cache_hit);
        self.stopped += usize::from(!episode.cache_hit && episode.stopped);
        self.last = format!("{:.4} {}", episode.reward, episode.architecture);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.refresh();
    }

    fn pool(&mut self, status: &crate::pool::PoolStatus) {
        self.pool = Some(*status);
        self.refresh();
    }

    fn finished(&mut self) {
        let position = self.bar.as_ref().map_or(0, |b| b.position());
        let length = self.bar.as_ref().and_then(|b| b.length()).unwrap_or(0);
        if position >= length {
            self.finish_bar();
        }
    }
}

impl SampleSink for ProgressSink {
    fn started(&mut self, total: usize) {
        if self.bar.is_none() {
            self.start_bar(0, total);
        }
    }

    fn sample(&mut self, _index: usize, sample: &EvalSampleRow) {
        // While a comparison's searches share the bar, it counts their episodes only.
        if let Some(bar) = self.bar.as_ref().filter(|_| self.runs.is_empty()) {
            bar.set_message(format!("{:.4} {}", sample.accuracy, sample.architecture));
            bar.inc(1);
        }
    }

    fn finished(&mut self) {
        if self.runs.is_empty() {
            self.finish_bar();
        }
    }
}

/// One JSON object per committed episode on stdout, for scripts.
struct JsonLinesSink;

impl EpisodeSink for JsonLinesSink {
    fn episode(&mut self, run: i64, e: &EpisodeRecord) {
        let line = serde_json::json!({
            "run": run,
            "episode": e.index,
            "architecture": e.architecture,
            "reward": e.reward,
            "accuracy": e.accuracy,
            "params": e.params,
            "depth": e.depth,
            "cache_hit": e.cache_hit,
            "stopped": e.stopped,
            "failure": e.failure,
            "metrics": e.metrics,
        });
        println!("{line}");
    }
}

/// Logs go to stderr: coloured only on a terminal and without `NO_COLOR` (https://no-color.org),
/// so pipes, files and Slurm logs get plain text; `NAS_LOG_FORMAT=json` writes one JSON object per
/// line for machines. `NAS_LOG` filters (`info` by default).
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("NAS_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = std::env::var("NAS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().with_ansi(false).try_init()
    } else {
        builder
            .with_ansi(colour_on_stderr(std::io::stderr().is_terminal()))
            .try_init()
    };
}

/// Whether stderr output may carry colour: only on a terminal, and never with `NO_COLOR` set to
/// anything but the empty string.
fn colour_on_stderr(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn run_search(args: SearchArgs) -> anyhow::Result<()> {
    let options = SearchOptions {
        no_cache: args.no_cache,
        parallel: args.parallel.clone(),
        ..args.data.search_options(&args.store)
    };
    let start = match args.resume {
        Some(run) => Start::Resume {
            run,
            force: args.force,
            episodes: args.overrides.episodes,
        },
        None => {
            let mut config = match &args.config {
                Some(path) => RunConfig::from_file(path)?,
                None => RunConfig::default(),
            };
            args.overrides.apply(&mut config);
            config.check_plugin_sections(&[])?;
            Start::New(Box::new(config))
        }
    };
    let summary = if args.json {
        search::search_with(start, &options, &mut JsonLinesSink)?
    } else {
        search::search_with(start, &options, &mut ProgressSink::default())?
    };
    if !args.json {
        println!(
            "run {} finished {} episodes (store {})",
            summary.run,
            summary.episodes.len(),
            Store::describe(&options.db)
        );
        let trained = summary.episodes.iter().filter(|e| !e.cache_hit);
        let stopped = trained.clone().filter(|e| e.stopped).count();
        if stopped > 0 {
            println!(
                "the assessor stopped {stopped} of the {} children trained",
                trained.count()
            );
        }
        println!("best architectures:");
        println!("  {:>8}  {:>8}  {:>9}  architecture", "reward", "accuracy", "params");
        let best = report::top_distinct(&summary.episodes, 5);
        for e in &best {
            println!(
                "  {:>8.4}  {:>8.4}  {:>9}  {}{}",
                e.reward,
                e.accuracy,
                e.params,
                e.architecture,
                if e.stopped { "  (stopped early)" } else { "" }
            );
        }
        if best.iter().any(|e| e.stopped) {
            println!(
                "an architecture stopped early scored its last measured accuracy; `nas-host export {} --arch ARCH` trains it fully with the run's protocol",
                summary.run
            );
        }
        println!("next: nas-host eval {0} | nas-host report {0}", summary.run);
    }
    Ok(())
}

fn slurm_script(args: SearchArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => RunConfig::from_file(path)?,
        None => RunConfig::default(),
    };
    args.overrides.apply(&mut config);
    args.parallel.apply(&mut config.parallel, true);
    let options = args.data.search_options(&args.store);
    print!("{}", crate::slurm::script_for(&config, &options)?);
    Ok(())
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let options = SearchOptions {
        parallel: args.parallel.clone(),
        ..args.data.search_options(&args.store)
    };
    let reuse_cache = args.reuse_cache.then_some(true);
    let summary = if args.json {
        frozen_policy::eval(args.run, args.samples, reuse_cache, &options)?
    } else {
        frozen_policy::eval_with(
            args.run,
            args.samples,
            reuse_cache,
            &options,
            &mut ProgressSink::default(),
        )?
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", summary.to_markdown());
    }
    Ok(())
}

fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let runs = match &args.plan {
        Some(path) => {
            let (plan, base) = crate::plan::ComparePlan::from_file(path)?;
            let mut options = args.data.search_options(&args.store);
            if args.workers > 0 {
                let parallel = crate::config::ParallelConfig {
                    workers: args.workers,
                    threads_per_worker: args.threads_per_worker.unwrap_or(0),
                    ..base.parallel.clone()
                };
                let device_kind =
                    crate::pool::device_kind_for(crate::evaluator::EvaluatorKind::Train, args.data.device)?;
                let spec = crate::pool::WorkerSpec::for_config(
                    &parallel,
                    &args.store.db,
                    args.data.data_dir.as_deref(),
                    device_kind,
                )?;
                options.shared_workers = Some(crate::pool::LocalWorkers::start(spec)?);
            }
            let runs = crate::plan::run_plan_with(&plan, &base, &options, &mut ProgressSink::default());
            if let Some(workers) = options.shared_workers.take() {
                workers.stop();
            }
            runs?
        }
        None => args.runs.clone(),
    };
    let store = Store::open(&args.store.db)?;
    let table = report::compare_table(&store, &runs)?;
    println!("{}", table.to_markdown());
    if let Some(path) = args.csv {
        std::fs::write(&path, table.to_csv()).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.store.db)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("runs/report-{}", args.run)));
    let path = report::write_report(&store, args.run, &out)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Prints one line per worker.
struct WorkerLines;

impl crate::worker::WorkerSink for WorkerLines {
    fn started(&mut self, name: &str, device: &str) {
        eprintln!("worker {name} on {device}: waiting for children");
    }

    fn claimed(&mut self, job: &crate::store::ClaimedJob) {
        eprintln!("training {} (attempt {})", job.architecture, job.attempt);
    }

    fn finished(&mut self, job: &crate::store::ClaimedJob, outcome: &crate::evaluator::Outcome, recorded: bool) {
        let result = match &outcome.failure {
            None => format!("accuracy {:.4}", outcome.accuracy),
            Some(reason) => format!("failed: {reason}"),
        };
        let note = if recorded {
            ""
        } else {
            " (lease lost; another worker's result stands)"
        };
        eprintln!("{}: {result} in {:.1} s{note}", job.architecture, outcome.seconds);
    }
}

fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    let options = crate::worker::WorkerOptions {
        db: args.store.db,
        data_dir: args.data.data_dir,
        device: args.data.device,
        threads: args.threads,
        lease_secs: args.lease_secs,
        idle_exit: args.idle_exit.map(std::time::Duration::from_secs_f64),
        max_children: args.max_children,
    };
    let trained = crate::worker::run(&options, &mut WorkerLines)?;
    eprintln!("worker done: trained {trained} children");
    Ok(())
}

fn list_runs(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.db)?;
    let runs = store.runs()?;
    let workers = store.workers(crate::store::queue::unix_now() - 60.0)?;
    if !workers.is_empty() {
        let queue = store.queue_counts()?;
        println!(
            "{} workers, {} children queued, {} in training:",
            workers.len(),
            queue.pending,
            queue.running
        );
        for w in &workers {
            println!(
                "  {:<24} {:<4} {:>2} thr  trained {:>4}  {}",
                w.name,
                w.device,
                w.threads,
                w.trained,
                w.job
                    .as_ref()
                    .map_or_else(|| "idle".to_string(), |(_, arch)| format!("training {arch}"))
            );
        }
        println!();
    }
    if runs.is_empty() {
        println!(
            "no runs in {} yet; start one with `nas-host search` or `make demo`",
            Store::describe(&args.db)
        );
        return Ok(());
    }
    println!(
        "{:>4}  {:<9}  {:<10}  {:<13}  {:<8}  {:<9}  {:>11}  created",
        "run", "status", "agent", "reward", "dataset", "evaluator", "episodes"
    );
    for r in runs {
        println!(
            "{:>4}  {:<9}  {:<10}  {:<13}  {:<8}  {:<9}  {:>5}/{:<5}  {}",
            r.id,
            r.status,
            r.agent.name,
            r.reward.name,
            r.dataset,
            r.evaluator,
            r.episodes_done,
            r.episodes_target,
            r.created_at
        );
    }
    Ok(())
}

fn plugins_list() -> anyhow::Result<()> {
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let files = plugin::discover();
    if files.is_empty() {
        println!("no plugins found on the plugin path; build the bundled ones with `make build`");
        return Ok(());
    }
    println!(
        "{:<8}  {:<13}  {:<8}  {:<8}  path",
        "kind", "name", "version", "contract"
    );
    for file in files {
        match describe(&runtime, &file) {
            Ok((kind, info, loaded)) => println!(
                "{:<8}  {:<13}  {:<8}  {:<8}  {}",
                kind.as_str(),
                info.name,
                info.version,
                loaded.contract_version,
                file.display()
            ),
            Err(e) => println!(
                "{:<8}  {:<13}  {:<8}  {:<8}  {} ({e:#})",
                "invalid",
                "-",
                "-",
                "-",
                file.display()
            ),
        }
    }
    Ok(())
}

fn describe(
    runtime: &Runtime,
    file: &std::path::Path,
) -> anyhow::Result<(plugin::PluginKind, plugin::PluginInfo, plugin::LoadedPlugin)> {
    let loaded = runtime.load(file)?;
    let limits = plugin::SandboxLimits::default();
    let info = match loaded.kind {
        plugin::PluginKind::Agent => plugin::AgentPlugin::instantiate(runtime, &loaded, limits, 0)?
            .info()
            .clone(),
        plugin::PluginKind::Reward => plugin::RewardPlugin::instantiate(runtime, &loaded, limits, 0)?
            .info()
            .clone(),
        plugin::PluginKind::Assessor => plugin::AssessorPlugin::instantiate(runtime, &loaded, limits, 0)?
            .info()
            .clone(),
    };
    Ok((loaded.kind, info, loaded))
}

fn plugins_inspect(spec: &str) -> anyhow::Result<()> {
    let path = plugin::resolve(spec)?;
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let (kind, info, loaded) = describe(&runtime, &path)?;
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    println!("kind:        {}", kind.as_str());
    println!("description: {}", info.description);
    println!(
        "contract:    nas:plugin@{} (host speaks {})",
        loaded.contract_version,
        plugin::CONTRACT_VERSION
    );
    println!("path:        {}", path.display());
    println!("sha256:      {}", loaded.sha256);
    Ok(())
}

fn fetch_dataset(name: DatasetName, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let source = DataSource::resolve(data_dir.as_deref());
    let d = nas_datasets::load(name, &source).with_context(|| format!("loading dataset {name}"))?;
    println!(
        "{name}: {} train / {} test images of {}x{}x{}, {} classes (from {})",
        d.train.len(),
        d.test.len(),
        d.channels,
        d.height,
        d.width,
        d.num_classes,
        source.data_dir.display()
    );
    Ok(())
}

/// Export progress on stderr; where each model went on stdout.
struct ExportProgress;

impl crate::export::ExportSink for ExportProgress {
    fn training(&mut self, index: usize, total: usize, arch: &Architecture, epochs: usize) {
        eprintln!("[{}/{total}] training {arch} for {epochs} epochs", index + 1);
    }

    fn written(&mut self, model: &crate::export::Exported) {
        println!(
            "{}: {} — accuracy {:.4} ({} split), {} parameters{}",
            model.dir.display(),
            model.card.architecture,
            model.card.accuracy,
            model.card.evaluation_split,
            model.card.params,
            if model.from_search {
                " (the weights the search kept; not trained again)"
            } else {
                ""
            }
        );
    }
}

fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let choice = match &args.arch {
        Some(text) => crate::export::Choice::Arch(text.parse().map_err(anyhow::Error::msg)?),
        None => crate::export::Choice::Top(args.top),
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("runs/export-{}", args.run)));
    let request = crate::export::ExportRequest {
        run: args.run,
        choice,
        epochs: args.epochs,
        out: out.clone(),
        force: args.force,
        data_dir: args.data.data_dir.clone(),
        device: args.data.device,
    };
    let store = Store::open(&args.store.db)?;
    let models = crate::export::export(&store, &request, &mut ExportProgress)?;
    let first = &models[0].dir;
    println!("\nIn Python (PyTorch; `pip install safetensors` for model.py):\n");
    println!("    import sys; sys.path.insert(0, {:?})", first.display().to_string());
    println!("    import model; net = model.load()");
    println!("    logits = net(model.preprocess(images))  # uint8 images, [N, C, H, W]");
    println!(
        "\nor torch.jit.load({:?}), or onnxruntime on model.onnx.",
        first.join("model.pt").display().to_string()
    );
    Ok(())
}

fn run_predict(args: PredictArgs) -> anyhow::Result<()> {
    for p in crate::export::predict(&args.model, &args.images)? {
        let note = p
            .resized_from
            .map(|(w, h)| format!(" (resized from {w}×{h})"))
            .unwrap_or_default();
        println!(
            "{}: {} (class {}, p = {:.3}){note}",
            p.path.display(),
            p.name,
            p.class,
            p.probability
        );
    }
    Ok(())
}

fn show_arch(args: ShowArchArgs) -> anyhow::Result<()> {
    let arch: Architecture = args.arch.parse().map_err(anyhow::Error::msg)?;
    let (_, side, _) = args.dataset.image_shape();
    // The summary is defined for any architecture the network builder accepts; say when the
    // default search space would not produce it, without refusing.
    if let Err(e) = Mdp::new(Default::default(), side as u32).validate(&arch) {
        anyhow::ensure!(
            arch.fits(side as u32),
            "`{arch}` cannot be built for {}: a layer's window is larger than its input ({e})",
            args.dataset
        );
        eprintln!("note: the default search space would not produce `{arch}`: {e}");
    }
    let summary = arch.summary(args.dataset.image_shape(), args.dataset.num_classes());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{arch} on {}\n{summary}", args.dataset);
    }
    Ok(())
}

fn train_arch(args: TrainArchArgs) -> anyhow::Result<()> {
    let arch: Architecture = args.arch.parse().map_err(anyhow::Error::msg)?;
    let run = match &args.config {
        Some(path) => RunConfig::from_file(path)?,
        None => RunConfig::default(),
    };
    let dataset = args.dataset.unwrap_or(run.dataset);
    let mut config = run.train;
    args.protocol.apply(&mut config);
    let (_, side, _) = dataset.image_shape();
    Mdp::new(run.mdp, side as u32)
        .validate(&arch)
        .map_err(|e| anyhow::anyhow!("invalid architecture `{arch}` for {dataset}: {e}"))?;
    let data = TensorData::load(dataset, args.data.data_dir.as_deref(), args.data.device, &config)?;
    let outcome = train::train(&arch, &data, &config);
    if args.json {
        let json = serde_json::json!({
            "arch": arch.to_string(),
            "dataset": dataset.as_str(),
            "protocol": config,
            "device": format!("{:?}", data.device),
            "accuracy": outcome.accuracy,
            "params": outcome.params,
            "seconds": outcome.seconds,
            "seconds_per_epoch": outcome.seconds_per_epoch,
            "failure": outcome.failure,
        });
        println!("{json}");
    } else {
        println!("architecture   {arch}");
        println!("{}", arch.summary(dataset.image_shape(), dataset.num_classes()));
        println!("dataset        {dataset} ({:?})", data.device);
        println!(
            "protocol       {} epochs, batch {}, Adam lr {}, activation {:?}, inputs {:?}, seed {}",
            config.epochs, config.batch_size, config.learning_rate, config.activation, config.normalize, config.seed
        );
        match &outcome.failure {
            None => println!("accuracy       {:.4}", outcome.accuracy),
            Some(reason) => println!("failed         {reason}"),
        }
        println!("parameters     {}", outcome.params);
        println!("seconds/epoch  {:.2}", outcome.seconds_per_epoch);
    }
    if let Some(reason) = outcome.failure {
        anyhow::bail!("training failed: {reason}");
    }
    Ok(())
}
