//! The `nas-host` command line: the argument types and the dispatch here, one module per
//! subcommand. Loops hand their results to sinks; printing happens only in this module tree.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use nas_config::DeviceChoice;
use nas_datasets::DatasetName;
use nas_search::options::SearchOptions;

mod arch;
mod compare;
mod cost;
mod datasets;
mod eval;
mod export;
mod plugins;
mod progress;
mod report;
mod runs;
mod search;
mod serve;
mod worker;

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
    search: search::SearchArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run (or resume) an architecture search.
    Search(search::SearchArgs),
    /// Sample architectures from a run's frozen final policy, train them, and report mean ± std.
    Eval(eval::EvalArgs),
    /// One table across runs (Markdown, and CSV with --csv); with --plan, runs the comparison first.
    Compare(compare::CompareArgs),
    /// Write a Markdown report with plots for a run.
    Report(report::ReportArgs),
    /// List the runs in the store, and the workers training children now.
    Runs(StoreArgs),
    /// A read-only live dashboard of the store in the browser: runs, charts, episodes,
    /// architectures, comparisons (http://127.0.0.1:8080/).
    Serve(serve::ServeArgs),
    /// Train children from the store's queue (for parallel searches; `search --workers N`
    /// starts its own).
    Worker(worker::WorkerArgs),
    /// Slurm helpers.
    #[command(subcommand)]
    Slurm(SlurmCommand),
    /// Find and inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Train one architecture and print its accuracy, parameter count and time per epoch.
    TrainArch(arch::TrainArchArgs),
    /// Train a run's best architectures (or a given one) and write them as TorchScript, ONNX,
    /// safetensors + model.py and model.json.
    Export(export::ExportArgs),
    /// Classify PNG/JPEG images with an exported model.
    Predict(export::PredictArgs),
    /// Print an architecture's layer table (output shapes, parameters, multiply-adds), as
    /// torchinfo's summary does; nothing is trained.
    ShowArch(arch::ShowArchArgs),
    /// Download (when missing), verify and summarise datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Latency tables for hardware-aware search (`[cost] latency_table`).
    #[command(subcommand)]
    Cost(cost::CostCommand),
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
    /// Check your own images before a search: classes with counts, image sizes and channels,
    /// the memory needed, problems found and the checksum (decodes once into the cache).
    Inspect(datasets::InspectArgs),
}

#[derive(Subcommand, Debug)]
enum SlurmCommand {
    /// Print the batch script `--launcher slurm` would submit (a job array of workers), for
    /// submitting by hand: `nas-host slurm script --config C --workers 8 --db postgres://… > w.sh`.
    Script(search::SearchArgs),
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

pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    if cli.command.as_ref().is_some_and(Command::only_prints) {
        die_quietly_on_broken_pipe();
    }
    let result = match cli.command {
        Some(Command::Search(args)) => search::run_search(args),
        None if cli.search.overrides.agent.is_some()
            || cli.search.overrides.reward.is_some()
            || cli.search.overrides.assessor.is_some()
            || cli.search.config.is_some()
            || cli.search.resume.is_some() =>
        {
            search::run_search(cli.search)
        }
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return ExitCode::from(2);
        }
        Some(Command::Eval(args)) => eval::run_eval(args),
        Some(Command::Compare(args)) => compare::run_compare(args),
        Some(Command::Report(args)) => report::run_report(args),
        Some(Command::Runs(args)) => runs::list_runs(args),
        Some(Command::Serve(args)) => serve::run_serve(args),
        Some(Command::Worker(args)) => worker::run_worker(args),
        Some(Command::Slurm(SlurmCommand::Script(args))) => search::slurm_script(args),
        Some(Command::Plugins(PluginsCommand::List)) => plugins::plugins_list(),
        Some(Command::Plugins(PluginsCommand::Inspect { file })) => plugins::plugins_inspect(&file),
        Some(Command::TrainArch(args)) => arch::train_arch(args),
        Some(Command::ShowArch(args)) => arch::show_arch(args),
        Some(Command::Export(args)) => export::run_export(args),
        Some(Command::Predict(args)) => export::run_predict(args),
        Some(Command::Datasets(DatasetsCommand::Fetch { dataset, data_dir })) => {
            datasets::fetch_dataset(dataset, data_dir)
        }
        Some(Command::Datasets(DatasetsCommand::Inspect(args))) => datasets::inspect(args),
        Some(Command::Cost(command)) => cost::run_cost(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Commands whose whole job is printing to stdout (`… | head` is normal use). Searches,
    /// workers and the dashboard are left out: they hold sockets and child pipes whose breakage
    /// must surface as an error (and a stored failure), not a silent death.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Runs(_)
                | Command::ShowArch(_)
                | Command::Plugins(_)
                | Command::Datasets(DatasetsCommand::Inspect(_))
                | Command::Slurm(_)
        ) || matches!(self, Command::Compare(args) if args.plan.is_none())
    }
}

/// Rust ignores SIGPIPE, so `println!` to a reader that went away panics ("failed printing to
/// stdout"); Unix tools die of the signal instead, silently, as the shell expects.
fn die_quietly_on_broken_pipe() {
    // SAFETY: setting a signal's disposition to the default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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

/// The names of the plugins on the plugin path, which `[plugins.NAME]` sections may name.
fn plugins_on_path() -> Vec<String> {
    nas_plugin_runtime::discover()
        .iter()
        .map(|p| nas_config::plugin_section_name(p))
        .collect()
}
