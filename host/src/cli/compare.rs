//! `nas-host compare`: one table across runs, after running a comparison plan if given one.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use nas_outputs::compare;
use nas_store::Store;

use super::progress::ProgressSink;
use super::{DataArgs, StoreArgs};

#[derive(Args, Debug)]
pub(super) struct CompareArgs {
    /// Runs to compare.
    #[arg(required_unless_present = "plan")]
    pub runs: Vec<i64>,
    /// Run a comparison plan first (agents × seeds on one configuration, each then evaluated),
    /// and compare its runs. See configs/compare-cifar5.toml.
    #[arg(long, conflicts_with = "runs")]
    pub plan: Option<PathBuf>,
    /// Worker processes shared by all the plan's searches, which then run at once.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// libtorch threads per worker (default: the cores shared out evenly).
    #[arg(long)]
    pub threads_per_worker: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Also write the table as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw the anytime plots (best accuracy so far per agent, with 95% bands, against episodes
    /// and against distinct architectures trained) into this directory, with the agent tables as
    /// anytime.md, and accuracy against latency and multiply-adds with the runs' Pareto set.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub(super) fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let runs = match &args.plan {
        Some(path) => {
            let (plan, base) = nas_config::ComparePlan::from_file(path, &super::plugins_on_path())?;
            let mut options = args.data.search_options(&args.store);
            if args.workers > 0 {
                let parallel = nas_config::ParallelConfig {
                    workers: args.workers,
                    threads_per_worker: args.threads_per_worker.unwrap_or(0),
                    ..base.parallel.clone()
                };
                let device_kind =
                    nas_search::launch::device_kind_for(nas_config::EvaluatorKind::Train, args.data.device)?;
                let spec = nas_search::local::WorkerSpec::for_config(
                    &parallel,
                    &args.store.db,
                    args.data.data_dir.as_deref(),
                    device_kind,
                )?;
                options.shared_workers = Some(nas_search::local::LocalWorkers::start(spec)?);
            }
            let runs = nas_search::plan::run_plan_with(&plan, &base, &options, &mut ProgressSink::default());
            if let Some(workers) = options.shared_workers.take() {
                workers.stop();
            }
            runs?
        }
        None => args.runs.clone(),
    };
    let store = Store::open(&args.store.db)?;
    let table = compare::compare_table(&store, &runs)?;
    println!("{}", table.to_markdown());
    for note in nas_outputs::report::table_notes(&store, &runs)? {
        println!("{note}\n");
    }
    // The accuracy–cost trade-off of every run's children together (plots with --plots).
    let pareto = match &args.plots {
        Some(dir) => nas_outputs::pareto::write_pareto(&store, &runs, dir, &format!("runs {runs:?}"), "accuracy")?,
        None => nas_outputs::pareto::Pareto::of(nas_outputs::pareto::cost_points(&store, &runs)?),
    };
    if !pareto.points.is_empty() {
        println!("{}", pareto.to_markdown("accuracy"));
    }
    let anytime = nas_outputs::anytime::Anytime::of(&store, &runs)?;
    let agents = anytime.to_markdown();
    println!("{agents}");
    if let Some(dir) = &args.plots {
        anytime.plot(dir)?;
        std::fs::write(dir.join("anytime.md"), &agents).with_context(|| format!("writing {}", dir.display()))?;
        eprintln!(
            "wrote {} and {}",
            dir.join("anytime.png").display(),
            dir.join("anytime-distinct.png").display()
        );
    }
    if let Some(path) = args.csv {
        std::fs::write(&path, table.to_csv()).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
