//! `nas-host runs`: the runs in the store, and the workers training children now.

use nas_store::Store;

use super::StoreArgs;

pub(super) fn list_runs(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.db)?;
    let runs = store.runs()?;
    let workers = store.workers_seen_within(60.0)?;
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
