//! Comparison plans: one run configuration, searched with several agents × seeds, each run then
//! evaluated the seed's way, so `nas-host compare --plan FILE` produces the whole comparison table.

use anyhow::Context;

use crate::frozen_policy::SampleSink;
use crate::options::SearchOptions;
use crate::search;
use crate::search::Start;
use crate::sink::{EpisodeSink, Silent};
use nas_config::{ComparePlan, RunConfig, RunOverrides};

/// Receives the progress of every search and evaluation of a plan; with shared workers the
/// plan's searches run at once, each in its own thread, so the sink is shared between them.
pub trait PlanSink: EpisodeSink + SampleSink + Send {}

impl<T: EpisodeSink + SampleSink + Send> PlanSink for T {}

/// [`run_plan_with`], silently.
pub fn run_plan(plan: &ComparePlan, base: &RunConfig, options: &SearchOptions) -> anyhow::Result<Vec<i64>> {
    run_plan_with(plan, base, options, &mut Silent)
}

/// The configuration of each run of the plan, in order (agents × seeds).
fn run_configs(plan: &ComparePlan, base: &RunConfig) -> Vec<(String, u64, RunConfig)> {
    let mut configs = Vec::new();
    for agent in &plan.agents {
        for &seed in &plan.seeds {
            let mut config = base.clone();
            RunOverrides {
                agent: Some(agent.clone()),
                seed: Some(seed),
                episodes: plan.episodes,
                reward: plan.reward.clone(),
                assessor: plan.assessor.clone(),
                ..RunOverrides::default()
            }
            .apply(&mut config);
            configs.push((agent.clone(), seed, config));
        }
    }
    configs
}

/// Searches one run of the plan and evaluates it; returns its id.
fn run_one(
    plan: &ComparePlan,
    (agent, seed, config): &(String, u64, RunConfig),
    options: &SearchOptions,
    sink: &mut dyn PlanSink,
) -> anyhow::Result<i64> {
    tracing::info!(
        "plan: {agent}, seed {seed}, {} episodes on {}",
        config.episodes,
        config.dataset
    );
    let summary = search::search_with(Start::New(Box::new(config.clone())), options, sink)
        .with_context(|| format!("plan run of {agent} with seed {seed}"))?;
    let samples = plan.eval_samples.unwrap_or(config.eval.samples);
    if samples > 0 {
        crate::frozen_policy::eval_with(summary.run, Some(samples), None, options, sink)?;
    }
    Ok(summary.run)
}

/// Runs every agent × seed of the plan (then `eval` on each); returns the run ids in plan order.
/// With shared workers (`options.shared_workers`) all runs are in flight at once and the workers
/// train whichever run's children are queued, so the plan takes about its total training time
/// divided by the workers; otherwise the runs follow one another.
pub fn run_plan_with(
    plan: &ComparePlan,
    base: &RunConfig,
    options: &SearchOptions,
    sink: &mut dyn PlanSink,
) -> anyhow::Result<Vec<i64>> {
    let configs = run_configs(plan, base);
    if options.shared_workers.is_none() {
        return configs.iter().map(|run| run_one(plan, run, options, sink)).collect();
    }
    let shared = std::sync::Mutex::new(sink);
    let results: Vec<anyhow::Result<i64>> = std::thread::scope(|scope| {
        let threads: Vec<_> = configs
            .iter()
            .map(|run| {
                let shared = &shared;
                scope.spawn(move || run_one(plan, run, options, &mut SharedSink(shared)))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a plan run panicked"))))
            .collect()
    });
    results.into_iter().collect()
}

/// One plan thread's handle on the plan's sink.
struct SharedSink<'a, 'b>(&'a std::sync::Mutex<&'b mut dyn PlanSink>);

impl SharedSink<'_, '_> {
    fn with(&mut self, f: impl FnOnce(&mut dyn PlanSink)) {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **guard);
    }
}

impl EpisodeSink for SharedSink<'_, '_> {
    fn started(&mut self, run: i64, committed: &[nas_core::record::EpisodeRecord], total: usize) {
        self.with(|s| EpisodeSink::started(s, run, committed, total));
    }
    fn episode(&mut self, run: i64, episode: &nas_core::record::EpisodeRecord) {
        self.with(|s| s.episode(run, episode));
    }
    fn pool(&mut self, status: &crate::pool::PoolStatus) {
        self.with(|s| s.pool(status));
    }
    fn finished(&mut self) {
        self.with(|s| EpisodeSink::finished(s));
    }
}

impl SampleSink for SharedSink<'_, '_> {
    fn started(&mut self, total: usize) {
        self.with(|s| SampleSink::started(s, total));
    }
    fn sample(&mut self, index: usize, sample: &nas_core::record::EvalSampleRow) {
        self.with(|s| s.sample(index, sample));
    }
    fn finished(&mut self) {
        self.with(|s| SampleSink::finished(s));
    }
}
