//! Comparison plans: one run configuration, searched with several agents × seeds, each run then
//! evaluated the seed's way (`nas-host compare --plan FILE`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::RunConfig;

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
    /// Assessor plugin override.
    #[serde(default)]
    pub assessor: Option<String>,
    /// Frozen-policy samples per run for `eval` (0 skips the evaluation).
    #[serde(default)]
    pub eval_samples: Option<usize>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

impl ComparePlan {
    /// Reads a plan and its base configuration; `known` are the plugins found on the plugin
    /// path, which the base configuration's `[plugins.NAME]` sections may name.
    pub fn from_file(path: &Path, known: &[String]) -> anyhow::Result<(ComparePlan, RunConfig)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading plan {}", path.display()))?;
        let plan: ComparePlan =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("plan {} is invalid: {e}", path.display()))?;
        anyhow::ensure!(!plan.agents.is_empty(), "plan {} lists no agents", path.display());
        let base = path.parent().unwrap_or(Path::new(".")).join(&plan.base);
        let config = RunConfig::from_file(&base)?;
        let mut others: Vec<String> = plan
            .agents
            .iter()
            .chain(&plan.reward)
            .chain(&plan.assessor)
            .map(|p| crate::plugin_section_name(Path::new(p)))
            .collect();
        others.extend(known.iter().cloned());
        config
            .check_plugin_sections(&others)
            .with_context(|| format!("plan {}", path.display()))?;
        Ok((plan, config))
    }
}
