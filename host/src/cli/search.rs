//! `nas-host search` (and a bare `nas-host --agent …`), and `nas-host slurm script`.

use std::path::PathBuf;

use clap::Args;
use nas_config::{ParallelOverrides, RunConfig, RunOverrides};
use nas_search::options::SearchOptions;
use nas_search::search::{self, Start};
use nas_store::Store;

use super::progress::{JsonLinesSink, ProgressSink};
use super::{DataArgs, StoreArgs};

#[derive(Args, Debug, Clone, Default)]
pub(super) struct SearchArgs {
    #[command(flatten)]
    pub overrides: RunOverrides,
    /// Run configuration (TOML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue run RUN from its last committed episode.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<i64>,
    /// With --resume: continue even if a plugin file, the device or the benchmark table changed since the run started.
    #[arg(long)]
    pub force: bool,
    /// Train architectures even if the cache already has them.
    #[arg(long)]
    pub no_cache: bool,
    /// One JSON line per episode instead of the progress bar.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub parallel: ParallelOverrides,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub(super) fn run_search(args: SearchArgs) -> anyhow::Result<()> {
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
            config.check_plugin_sections(&super::plugins_on_path())?;
            config.validate()?;
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
        let best = nas_core::record::top_distinct(&summary.episodes, 5);
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

pub(super) fn slurm_script(args: SearchArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => RunConfig::from_file(path)?,
        None => RunConfig::default(),
    };
    args.overrides.apply(&mut config);
    args.parallel.apply(&mut config.parallel, true);
    let options = args.data.search_options(&args.store);
    print!("{}", nas_search::slurm::script_for(&config, &options)?);
    Ok(())
}
