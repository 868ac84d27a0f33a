//! `nas-host report`: a run's Markdown report with plots.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use nas_config::{ParallelOverrides, RunConfig, RunOverrides, TrainOverrides};
use nas_core::arch::Architecture;
use nas_core::mdp::Mdp;
use nas_core::record::{EpisodeRecord, EvalSampleRow};
use nas_datasets::{DataSource, DatasetName};
use nas_outputs::{compare, export, predict, report};
use nas_plugin_runtime::{self as plugin, Runtime};
use nas_search::frozen_policy::{self, SampleSink};
use nas_search::options::SearchOptions;
use nas_search::search::{self, EpisodeSink, Start};
use nas_store::Store;
use nas_train::device::DeviceChoice;
use nas_train::train::{self, TensorData};

use super::{DataArgs, StoreArgs};

#[derive(Args, Debug)]
pub(super) struct ReportArgs {
    pub run: i64,
    /// Output directory (default: runs/report-RUN).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub(super) fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.store.db)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("runs/report-{}", args.run)));
    let path = report::write_report(&store, args.run, &out)?;
    println!("wrote {}", path.display());
    Ok(())
}
