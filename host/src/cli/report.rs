//! `nas-host report`: a run's Markdown report with plots.

use std::path::PathBuf;

use clap::Args;
use nas_outputs::report;
use nas_store::Store;

use super::StoreArgs;

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
