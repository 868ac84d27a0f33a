//! `nas-host worker`: train children from the store's queue.

use clap::Args;

use super::{DataArgs, StoreArgs};

#[derive(Args, Debug)]
pub(super) struct WorkerArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// libtorch threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds a claim on a child lasts without a heartbeat.
    #[arg(long, default_value_t = 60.0)]
    pub lease_secs: f64,
    /// Exit after this many seconds without a child to train, or waiting this long for the
    /// search's verdict on a watched child (default: wait forever).
    #[arg(long)]
    pub idle_exit: Option<f64>,
    /// Exit after training this many children.
    #[arg(long)]
    pub max_children: Option<usize>,
}

/// Prints one line per worker.
pub(super) struct WorkerLines;

impl nas_search::worker::WorkerSink for WorkerLines {
    fn started(&mut self, name: &str, device: &str) {
        eprintln!("worker {name} on {device}: waiting for children");
    }

    fn claimed(&mut self, job: &nas_store::ClaimedJob) {
        eprintln!("training {} (attempt {})", job.architecture, job.attempt);
    }

    fn finished(&mut self, job: &nas_store::ClaimedJob, outcome: &nas_core::record::Outcome, recorded: bool) {
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

pub(super) fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    let options = nas_search::worker::WorkerOptions {
        db: args.store.db,
        data_dir: args.data.data_dir,
        device: args.data.device,
        threads: args.threads,
        lease_secs: args.lease_secs,
        idle_exit: args
            .idle_exit
            .map(|secs| {
                std::time::Duration::try_from_secs_f64(secs).map_err(|_| {
                    anyhow::anyhow!(
                        "--idle-exit {secs} is not a usable number of seconds: give a finite number of 0 or more"
                    )
                })
            })
            .transpose()?,
        max_children: args.max_children,
    };
    let trained = nas_search::worker::run(&options, &mut WorkerLines)?;
    eprintln!("worker done: trained {trained} children");
    Ok(())
}
