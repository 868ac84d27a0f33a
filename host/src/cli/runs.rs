//! `nas-host runs`: the runs in the store, and the workers training children now.

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

pub(super) fn list_runs(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.db)?;
    let runs = store.runs()?;
    let workers = store.workers(nas_store::queue::unix_now() - 60.0)?;
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
