//! Comparison plans: one run configuration, searched with several agents × seeds, each run then
//! evaluated the seed's way, so `nas-host compare --plan FILE` produces the whole comparison table.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::{RunConfig, RunOverrides};
use crate::frozen_policy::SampleSink;
use crate::search::{self, EpisodeSink, SearchOptions, Start};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparePlan {
    /// The run configuration every run starts from (relative to the plan file).
    pub base: PathBuf,
    /// Agent plugins (names or files).
    pub agents: Vec<String>,
    /// One run per agent and seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Overrides the base configuration's episode budget.
    #[serde(default)]
    pub episodes: Option<usize>,
    /// Reward plugin override.
    #[serde(default)]
    pub reward: Option<String>,
    /// Frozen-policy samples per run for `eval` (0 skips the evaluation).
    #[serde(default)]
    pub eval_samples: Option<usize>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

impl ComparePlan {
    pub fn from_file(path: &Path) -> anyhow::Result<(ComparePlan, RunConfig)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading plan {}", path.display()))?;
        let plan: ComparePlan =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("plan {} is invalid: {e}", path.display()))?;
        anyhow::ensure!(!plan.agents.is_empty(), "plan {} lists no agents", path.display());
        let base = path.parent().unwrap_or(Path::new(".")).join(&plan.base);
        let config = RunConfig::from_file(&base)?;
        let mut others = plan.agents.clone();
        others.extend(plan.reward.clone());
        config
            .check_plugin_sections(&others)
            .with_context(|| format!("plan {}", path.display()))?;
        Ok((plan, config))
    }
}

/// Runs every agent × seed of the plan (then `eval` on each); returns the run ids in order.
/// Receives the progress of every search and evaluation of a plan.
pub trait PlanSink: EpisodeSink + SampleSink {}

impl<T: EpisodeSink + SampleSink> PlanSink for T {}

/// [`run_plan_with`], silently.
pub fn run_plan(plan: &ComparePlan, base: &RunConfig, options: &SearchOptions) -> anyhow::Result<Vec<i64>> {
    run_plan_with(plan, base, options, &mut search::Silent)
}

pub fn run_plan_with(
    plan: &ComparePlan,
    base: &RunConfig,
    options: &SearchOptions,
    sink: &mut dyn PlanSink,
) -> anyhow::Result<Vec<i64>> {
    let mut runs = Vec::new();
    for agent in &plan.agents {
        for &seed in &plan.seeds {
            let mut config = base.clone();
            RunOverrides {
                agent: Some(agent.clone()),
                seed: Some(seed),
                episodes: plan.episodes,
                reward: plan.reward.clone(),
                ..RunOverrides::default()
            }
            .apply(&mut config);
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
            runs.push(summary.run);
        }
    }
    Ok(runs)
}
