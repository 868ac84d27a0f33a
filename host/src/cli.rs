//! The `nas-host` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use nas_datasets::{DataSource, DatasetName};

use crate::arch::Architecture;
use crate::config::RunConfig;
use crate::device::DeviceChoice;
use crate::evaluator::EvaluatorKind;
use crate::mdp::{Mdp, MdpConfig};
use crate::model::Activation;
use crate::plugin::{self, Runtime};
use crate::search::{self, SearchOptions, Start};
use crate::store::Store;
use crate::train::{self, TensorData, TrainConfig, Validation};
use crate::{eval, report};

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
    /// List the runs in the store.
    Runs(StoreArgs),
    /// Find and inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Train one architecture and print its accuracy, parameter count and time per epoch.
    TrainArch(TrainArchArgs),
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
enum PluginsCommand {
    /// Show the plugins found on the plugin path (./plugins, $NAS_PLUGIN_PATH, the build's plugins/).
    List,
    /// Show one plugin's description and contract version.
    Inspect { file: String },
}

#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The run store (SQLite).
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
    /// Agent plugin: a name on the plugin path (ppo, qlearning, random) or a .wasm file.
    #[arg(long)]
    agent: Option<String>,
    /// Reward plugin: a name (accuracy, size_penalty) or a .wasm file.
    #[arg(long)]
    reward: Option<String>,
    /// Dataset: mnist3, mnist, cifar5, cifar10 or synthetic.
    #[arg(long)]
    dataset: Option<DatasetName>,
    #[arg(long)]
    episodes: Option<usize>,
    /// Run configuration (TOML); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum)]
    evaluator: Option<EvaluatorKind>,
    #[arg(long)]
    seed: Option<u64>,
    /// Child training epochs (overrides [train] epochs).
    #[arg(long)]
    epochs: Option<usize>,
    /// Continue run RUN from its last committed episode.
    #[arg(long, value_name = "RUN")]
    resume: Option<i64>,
    /// With --resume: continue even if a plugin file changed since the run started.
    #[arg(long)]
    force: bool,
    /// Train architectures even if the cache already has them.
    #[arg(long)]
    no_cache: bool,
    /// One JSON line per episode instead of the progress bar.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct EvalArgs {
    run: i64,
    /// Architectures to sample (default: the run's [eval] samples, 50).
    #[arg(long)]
    samples: Option<usize>,
    #[arg(long)]
    json: bool,
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
struct TrainArchArgs {
    #[arg(long, default_value = "mnist3")]
    dataset: DatasetName,
    #[command(flatten)]
    data: DataArgs,
    /// The architecture in canonical form, e.g. "conv(32,3) pool(5,3) fc(64)".
    #[arg(long)]
    arch: String,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    #[arg(long, value_enum, default_value_t = Activation::Relu)]
    activation: Activation,
    /// `test` (the seed's protocol) or `holdout:N`.
    #[arg(long, default_value = "test")]
    validation: Validation,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Search(args)) => run_search(args),
        None if cli.search.agent.is_some()
            || cli.search.reward.is_some()
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
        Some(Command::Plugins(PluginsCommand::List)) => plugins_list(),
        Some(Command::Plugins(PluginsCommand::Inspect { file })) => plugins_inspect(&file),
        Some(Command::TrainArch(args)) => train_arch(args),
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
    fn search_options(&self, store: &StoreArgs, json: bool) -> SearchOptions {
        SearchOptions {
            db: store.db.clone(),
            data_dir: self.data_dir.clone(),
            device: self.device,
            no_cache: false,
            json,
            progress: true,
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NAS_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run_search(args: SearchArgs) -> anyhow::Result<()> {
    let options = SearchOptions {
        no_cache: args.no_cache,
        ..args.data.search_options(&args.store, args.json)
    };
    let start = match args.resume {
        Some(run) => Start::Resume {
            run,
            force: args.force,
            episodes: args.episodes,
        },
        None => {
            let mut config = match &args.config {
                Some(path) => RunConfig::from_file(path)?,
                None => RunConfig::default(),
            };
            if let Some(v) = args.agent {
                config.agent = v;
            }
            if let Some(v) = args.reward {
                config.reward = v;
            }
            if let Some(v) = args.dataset {
                config.dataset = v;
            }
            if let Some(v) = args.episodes {
                config.episodes = v;
            }
            if let Some(v) = args.evaluator {
                config.evaluator = v;
            }
            if let Some(v) = args.seed {
                config.seed = v;
            }
            if let Some(v) = args.epochs {
                config.train.epochs = v;
            }
            Start::New(Box::new(config))
        }
    };
    let summary = search::search(start, &options)?;
    if !args.json {
        println!(
            "run {} finished {} episodes (store {})",
            summary.run,
            summary.episodes.len(),
            options.db.display()
        );
        let mut episodes = summary.episodes;
        episodes.sort_by(|a, b| b.reward.total_cmp(&a.reward));
        episodes.dedup_by(|a, b| a.architecture == b.architecture);
        println!("best architectures:");
        println!("  {:>8}  {:>8}  {:>9}  architecture", "reward", "accuracy", "params");
        for e in episodes.iter().take(5) {
            println!(
                "  {:>8.4}  {:>8.4}  {:>9}  {}",
                e.reward, e.accuracy, e.params, e.architecture
            );
        }
        println!("next: nas-host eval {0} | nas-host report {0}", summary.run);
    }
    Ok(())
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let options = args.data.search_options(&args.store, args.json);
    let summary = eval::eval(args.run, args.samples, &options)?;
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
            let options = args.data.search_options(&args.store, false);
            crate::plan::run_plan(&plan, &base, &options)?
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

fn list_runs(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.db)?;
    let runs = store.runs()?;
    if runs.is_empty() {
        println!(
            "no runs in {} yet; start one with `nas-host search` or `make demo`",
            args.db.display()
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
    println!("{:<7}  {:<13}  {:<8}  path", "kind", "name", "version");
    for file in files {
        match describe(&runtime, &file) {
            Ok((kind, info, _)) => println!(
                "{:<7}  {:<13}  {:<8}  {}",
                kind.as_str(),
                info.name,
                info.version,
                file.display()
            ),
            Err(e) => println!("{:<7}  {:<13}  {:<8}  {} ({e:#})", "invalid", "-", "-", file.display()),
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

fn train_arch(args: TrainArchArgs) -> anyhow::Result<()> {
    let arch: Architecture = args.arch.parse().map_err(anyhow::Error::msg)?;
    let (_, side, _) = args.dataset.image_shape();
    Mdp::new(MdpConfig::default(), side as u32)
        .validate(&arch)
        .map_err(|e| anyhow::anyhow!("invalid architecture `{arch}` for {}: {e}", args.dataset))?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        activation: args.activation,
        validation: args.validation,
        seed: args.seed,
    };
    let data = TensorData::load(
        args.dataset,
        args.data.data_dir.as_deref(),
        args.data.device,
        config.validation,
        config.seed,
    )?;
    let outcome = train::train(&arch, &data, &config);
    if args.json {
        let json = serde_json::json!({
            "arch": arch.to_string(),
            "dataset": args.dataset.as_str(),
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
        println!("dataset        {} ({:?})", args.dataset, data.device);
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
