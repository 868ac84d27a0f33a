//! The run configuration: a TOML file (see `configs/`) whose values command-line flags override.
//! Each plugin's section `[plugins.NAME]` is handed to that plugin as JSON.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use nas_datasets::DatasetName;
use serde::{Deserialize, Serialize};

use nas_core::mdp::MdpConfig;

mod cost;
mod dataset;
mod overrides;
mod plan;
mod protocol;
mod sandbox;
mod validate;

pub use cost::CostConfig;
pub use dataset::{DatasetOptions, DatasetSpec};
pub use overrides::{ParallelOverrides, RunOverrides, TrainOverrides};
pub use plan::ComparePlan;
pub use protocol::{
    Activation, DeviceChoice, EvaluatorChoice, EvaluatorKind, Normalize, SyntheticConfig, TableConfig, TrainConfig,
    TrainSubset, Validation,
};
pub use sandbox::SandboxLimits;

/// Settings of `nas-host eval`: sampling the frozen final policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Architectures sampled and trained (the seed: 50).
    pub samples: usize,
    /// Sample with exploration (Q-learning: ε-greedy with the ε below; PPO: sampling from its
    /// policy). False takes each agent's greedy choice.
    pub explore: bool,
    /// Look each sample up in the architecture cache (trained with the run's own seed) instead
    /// of training every sample afresh with its own seed. Cheap, but repeated architectures then
    /// share one result and the std leaves out training noise.
    pub reuse_cache: bool,
    /// Overrides of plugin configuration sections while sampling, keyed by plugin name. By default
    /// Q-learning samples with ε = 0.1, as the seed did.
    pub plugins: BTreeMap<String, toml::Table>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        let mut qlearning = toml::Table::new();
        qlearning.insert(
            "epsilon_schedule".into(),
            toml::Value::Array(vec![toml::Value::Array(vec![
                toml::Value::Float(0.1),
                toml::Value::Integer(1),
            ])]),
        );
        EvalConfig {
            samples: 50,
            explore: true,
            reuse_cache: false,
            plugins: BTreeMap::from([("qlearning".to_string(), qlearning)]),
        }
    }
}

/// `[search]`: what a search keeps beyond its episodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Keep the trained weights of the run's K best distinct architectures (by reward) in the
    /// store, so `export --top K` with the run's protocol needs no training. 0 keeps none.
    pub keep_weights: usize,
}

/// How children in flight are turned into rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Design one child per environment, train them all, then report their rewards in
    /// environment order: reproducible and exactly resumable for a fixed number of environments.
    #[default]
    Sync,
    /// Design a new child as soon as any finishes (MetaQNN's distributed mode): no worker waits
    /// for the slowest child, but rewards arrive in the order children finish.
    Async,
}

/// Who starts the workers of a parallel search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// The search starts `workers` worker processes on this machine and replaces any that die.
    #[default]
    Local,
    /// The search only queues children; start workers by hand (`nas-host worker --db …`).
    None,
    /// The search submits a Slurm job array of `workers` workers (`sbatch`), follows it with
    /// `squeue` and cancels it (`scancel`) when it ends; see `[slurm]`. Needs a PostgreSQL store.
    Slurm,
}

/// `[slurm]`: how `--launcher slurm` submits its workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmConfig {
    pub partition: Option<String>,
    /// Generic resources per worker, e.g. "gpu:1" (workers then train on CUDA).
    pub gres: Option<String>,
    /// Time limit per worker, e.g. "04:00:00".
    pub time_limit: Option<String>,
    pub cpus_per_worker: usize,
    /// Memory per worker, e.g. "8G".
    pub mem_per_worker: Option<String>,
    /// Most workers running at once (the array's `%N`; 0: no limit).
    pub array_parallelism: usize,
    /// More `sbatch` options, each as one `#SBATCH` line (e.g. "--account=lab", "--qos=short").
    pub extra_args: Vec<String>,
    /// Seconds a worker may wait in the queue before the search reports it.
    pub pending_warn_secs: f64,
    /// A worker exits after this many seconds without a child, or waiting for an assessor's
    /// verdict (it outlives a search that was killed outright).
    pub idle_exit_secs: f64,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            partition: None,
            gres: None,
            time_limit: None,
            cpus_per_worker: 1,
            mem_per_worker: None,
            array_parallelism: 0,
            extra_args: Vec::new(),
            pending_warn_secs: 300.0,
            idle_exit_secs: 600.0,
        }
    }
}

/// `[parallel]`: children in flight and the workers that train them. `envs` and `schedule`
/// shape the search's results and stay with a run; the rest is how it is executed, which a
/// resumed run may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParallelConfig {
    /// Worker processes training children; 0 trains them one at a time in the search process.
    pub workers: usize,
    /// Environments the agent designs in, i.e. children in flight (0: one per worker).
    pub envs: usize,
    pub schedule: Schedule,
    pub launcher: Launcher,
    /// GPUs the workers are pinned to, round robin (empty: every visible GPU).
    pub gpus: Vec<u32>,
    /// Workers per GPU when `workers` is 0 and GPUs are listed.
    pub workers_per_gpu: usize,
    /// libtorch intra-op threads of each CPU worker (0: the machine's cores shared out evenly).
    pub threads_per_worker: usize,
    /// Seconds a worker's claim on a child lasts without a heartbeat; after that another worker
    /// trains the child.
    pub lease_secs: f64,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            workers: 0,
            envs: 0,
            schedule: Schedule::Sync,
            launcher: Launcher::Local,
            gpus: Vec::new(),
            workers_per_gpu: 1,
            threads_per_worker: 0,
            lease_secs: 60.0,
        }
    }
}

impl ParallelConfig {
    /// Whether children go through the store's queue to workers (else the search trains them).
    pub fn uses_workers(&self) -> bool {
        self.worker_count() > 0 || self.launcher == Launcher::None
    }

    /// Workers the launcher starts: `workers`, or `workers_per_gpu` on each listed GPU.
    pub fn worker_count(&self) -> usize {
        if self.workers == 0 && !self.gpus.is_empty() {
            self.gpus.len() * self.workers_per_gpu.max(1)
        } else {
            self.workers
        }
    }

    /// Environments the agent designs in.
    pub fn env_count(&self) -> usize {
        if self.envs > 0 {
            self.envs
        } else {
            self.worker_count().max(1)
        }
    }

    /// libtorch threads per CPU worker: as given, or the machine's cores divided among the
    /// workers (at least one each).
    pub fn threads_for(&self, workers: usize) -> usize {
        if self.threads_per_worker > 0 {
            return self.threads_per_worker;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / workers.max(1)).max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Agent plugin: a name on the plugin path or a path to a .wasm file.
    pub agent: String,
    /// Reward-shaper plugin: a name or a path.
    pub reward: String,
    /// Assessor plugin (early stopping): a name or a path; `none` trains every child to the end
    /// and measures accuracy once, as before assessors existed.
    pub assessor: String,
    /// A named dataset, a folder of class folders, or a .npz file (`[dataset]` for options).
    pub dataset: DatasetSpec,
    pub episodes: usize,
    pub seed: u64,
    pub evaluator: EvaluatorKind,
    pub train: TrainConfig,
    pub mdp: MdpConfig,
    pub synthetic: SyntheticConfig,
    pub table: TableConfig,
    pub sandbox: SandboxLimits,
    pub eval: EvalConfig,
    pub search: SearchConfig,
    pub parallel: ParallelConfig,
    pub slurm: SlurmConfig,
    pub cost: CostConfig,
    /// Per-plugin sections, keyed by plugin name (the file stem): passed to the plugin as JSON.
    pub plugins: BTreeMap<String, toml::Table>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            agent: "ppo".into(),
            reward: "accuracy".into(),
            assessor: NO_ASSESSOR.into(),
            dataset: DatasetName::Mnist3.into(),
            episodes: 100,
            seed: 0,
            evaluator: EvaluatorKind::Train,
            train: TrainConfig::default(),
            mdp: MdpConfig::default(),
            synthetic: SyntheticConfig::default(),
            table: TableConfig::default(),
            sandbox: SandboxLimits::default(),
            eval: EvalConfig::default(),
            search: SearchConfig::default(),
            parallel: ParallelConfig::default(),
            slurm: SlurmConfig::default(),
            cost: CostConfig::default(),
            plugins: BTreeMap::new(),
        }
    }
}

/// The `assessor` that loads no plugin: children train to the end, accuracy is measured once.
pub const NO_ASSESSOR: &str = "none";

impl RunConfig {
    /// The assessor plugin to load, if any.
    pub fn assessor_spec(&self) -> Option<&str> {
        (self.assessor != NO_ASSESSOR).then_some(self.assessor.as_str())
    }
}

impl RunConfig {
    /// Checks what serde cannot: every `[plugins.NAME]` and `[eval.plugins.NAME]` section names
    /// a plugin of this run, or one of `known` (the plugins found on the plugin path, a
    /// comparison plan's other agents). A section for a plugin this run does not use is fine —
    /// a shipped configuration serves several agents; a name that matches no plugin is a typo,
    /// and the error names the nearest plugins.
    pub fn check_plugin_sections(&self, known: &[String]) -> anyhow::Result<()> {
        let used: Vec<String> = [&self.agent, &self.reward, &self.assessor]
            .into_iter()
            .map(|p| plugin_section_name(Path::new(p)))
            .collect();
        let mut names: Vec<String> = used.iter().chain(known).cloned().collect();
        names.sort();
        names.dedup();
        for (where_, sections) in [("plugins", &self.plugins), ("eval.plugins", &self.eval.plugins)] {
            for section in sections.keys() {
                // The default [eval.plugins.qlearning] applies only when the agent is qlearning.
                let default_eval = where_ == "eval.plugins" && EvalConfig::default().plugins.contains_key(section);
                if names.contains(section) {
                    if !used.contains(section) {
                        tracing::debug!("[{where_}.{section}] is for a plugin this run does not use");
                    }
                    continue;
                }
                if default_eval {
                    continue;
                }
                let mut nearest: Vec<(usize, &String)> =
                    names.iter().map(|n| (strsim::levenshtein(n, section), n)).collect();
                nearest.sort();
                let close: Vec<&str> = nearest
                    .iter()
                    .filter(|(d, _)| *d <= 2.max(section.len() / 3))
                    .map(|(_, n)| n.as_str())
                    .collect();
                let hint = match close.as_slice() {
                    [] => String::new(),
                    close => format!("did you mean {}? ", close.join(" or ")),
                };
                anyhow::bail!(
                    "[{where_}.{section}] names no plugin (plugins found: {}); {hint}fix the section name or remove it",
                    names.join(", ")
                );
            }
        }
        Ok(())
    }

    pub fn from_file(path: &Path) -> anyhow::Result<RunConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {} is invalid: {e}", path.display()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a run configuration always serializes")
    }

    pub fn from_toml(text: &str) -> anyhow::Result<RunConfig> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("stored run configuration is invalid: {e}"))
    }

    /// The JSON configuration handed to the plugin named `name` ("{}" when it has no section).
    pub fn plugin_json(&self, name: &str) -> String {
        let table = self.plugins.get(name).cloned().unwrap_or_default();
        serde_json::to_string(&table).expect("TOML tables serialize to JSON")
    }

    /// The plugin's configuration for `eval`: its section with `[eval.plugins.NAME]` on top.
    pub fn eval_plugin_json(&self, name: &str) -> String {
        let mut table = self.plugins.get(name).cloned().unwrap_or_default();
        if let Some(overrides) = self.eval.plugins.get(name) {
            table.extend(overrides.clone());
        }
        serde_json::to_string(&table).expect("TOML tables serialize to JSON")
    }
}

/// The name of a plugin's configuration section: its file stem (`plugins/ppo.wasm` → `ppo`).
pub fn plugin_section_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_sections_become_json() {
        let config: RunConfig = toml::from_str(
            r#"
            agent = "qlearning"
            dataset = "cifar5"
            [plugins.qlearning]
            alpha = 0.1
            epsilon_schedule = [[1.0, 10], [0.1, 5]]
            "#,
        )
        .unwrap();
        assert_eq!(config.dataset.named(), Some(DatasetName::Cifar5));
        let json: serde_json::Value = serde_json::from_str(&config.plugin_json("qlearning")).unwrap();
        assert_eq!(json["alpha"], 0.1);
        assert_eq!(json["epsilon_schedule"][1][0], 0.1);
        assert_eq!(config.plugin_json("ppo"), "{}");
        let back = RunConfig::from_toml(&config.to_toml()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn misspelt_plugin_sections_are_rejected() {
        let config: RunConfig = toml::from_str(
            r#"
            agent = "qlearning"
            reward = "size_penalty"
            [plugins.qlearnin]
            alpha = 0.1
            "#,
        )
        .unwrap();
        let err = config.check_plugin_sections(&["ppo".into()]).unwrap_err().to_string();
        assert!(
            err.contains("[plugins.qlearnin]") && err.contains("did you mean qlearning?"),
            "{err}"
        );
        // A comparison plan's other agents may have sections of their own.
        assert!(config.check_plugin_sections(&["qlearnin".into()]).is_ok());
        // A shipped configuration with sections for every agent is used with one of them.
        let shipped: RunConfig = toml::from_str("agent = \"ppo\"\n[plugins.qlearning]\nalpha = 0.1").unwrap();
        shipped
            .check_plugin_sections(&["qlearning".into(), "random".into()])
            .unwrap();
        let good: RunConfig = toml::from_str("agent = \"plugins/ppo.wasm\"\n[plugins.ppo]\nn_steps = 8").unwrap();
        good.check_plugin_sections(&[]).unwrap();
    }

    #[test]
    fn flags_override_the_file() {
        let mut config = RunConfig::default();
        RunOverrides {
            agent: Some("random".into()),
            episodes: Some(7),
            epochs: Some(2),
            ..RunOverrides::default()
        }
        .apply(&mut config);
        assert_eq!(
            (config.agent.as_str(), config.episodes, config.train.epochs),
            ("random", 7, 2)
        );
        assert_eq!(config.reward, RunConfig::default().reward);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<RunConfig>("episodez = 3").unwrap_err().to_string();
        assert!(err.contains("episodez"), "{err}");
    }

    #[test]
    fn shipped_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let is_plan = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("compare-"));
            if path.extension().is_some_and(|e| e == "toml") {
                if is_plan {
                    ComparePlan::from_file(&path, &[]).unwrap();
                } else {
                    RunConfig::from_file(&path).unwrap();
                }
                count += 1;
            }
        }
        assert!(count >= 5);
    }
}
