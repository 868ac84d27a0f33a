//! `nas-host eval`: sample a run's frozen policy and train the samples.

use clap::Args;
use nas_config::ParallelOverrides;
use nas_search::frozen_policy::{self};
use nas_search::options::SearchOptions;

use super::progress::ProgressSink;
use super::{DataArgs, StoreArgs};

#[derive(Args, Debug)]
pub(super) struct EvalArgs {
    pub run: i64,
    /// Architectures to sample (default: the run's [eval] samples, 50).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Look samples up in the architecture cache (trained with the run's seed) instead of
    /// training each afresh with its own seed: cheap, but the std then leaves out training noise.
    #[arg(long)]
    pub reuse_cache: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub parallel: ParallelOverrides,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub(super) fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
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
