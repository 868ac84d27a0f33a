//! One run's session: the MDP, the agent, reward and assessor plugins, and how children are
//! looked up in the cache or trained. The search loop and `eval` both drive it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use nas_core::checksum::sha256_hex;

use crate::assess::Watch;
use crate::options::SearchOptions;
use crate::pool::{ChildRequest, SharedWorkers, Trainer};
use nas_config::plugin_section_name;
use nas_config::EvaluatorKind;
use nas_config::RunConfig;
use nas_config::TrainConfig;
use nas_core::arch::Architecture;
use nas_core::mdp::Mdp;
use nas_core::record::{Cost, Outcome};
use nas_plugin_runtime as plugin;
use nas_plugin_runtime::{AgentPlugin, AssessorPlugin, RewardPlugin, Runtime};
use nas_store::{NewRun, PluginRecord, Store, TableRecord};

/// Everything one run needs: the MDP, the plugins and where children are trained.
pub struct Session {
    pub config: RunConfig,
    /// The data's part of the cache key ([`nas_train::train::dataset_identity`]).
    dataset_key: String,
    /// The benchmark table, with the table evaluator: its checksum is its part of the cache key.
    table: Option<TableRecord>,
    pub mdp: Mdp,
    /// The agent plugin; `None` when the agent lives outside the host (a Python library driving
    /// an external run: Python's `NasEnv`).
    pub(crate) agent: Option<AgentPlugin>,
    pub reward: RewardPlugin,
    pub trainer: Box<dyn Trainer>,
    /// The assessor watching children in training, if the run has one.
    pub watch: Option<Watch>,
    /// What shapers are told of a child's cost when its evaluation carries none (a cache hit
    /// from before `[cost]`, a queued worker's child) or a latency table replaces the measurement.
    cost_meter: nas_train::cost::CostMeter,
    /// (channels, height, width) of the dataset's inputs and its classes.
    input: (usize, usize, usize),
    classes: usize,
    /// The workers this session started (dropping the session stops them).
    _workers: Option<SharedWorkers>,
    pub agent_record: PluginRecord,
    pub reward_record: PluginRecord,
    pub assessor_record: Option<PluginRecord>,
}

fn record(path: &Path, info: &plugin::PluginInfo, sha256: &str) -> PluginRecord {
    PluginRecord {
        name: info.name.clone(),
        version: info.version.clone(),
        path: path.display().to_string(),
        sha256: sha256.to_string(),
    }
}

/// The plugin files of a session: its agent, reward shaper and, if the search has one, assessor.
/// An external run has no agent file.
#[derive(Debug, Clone)]
pub struct PluginPaths {
    pub agent: PathBuf,
    pub reward: PathBuf,
    pub assessor: Option<PathBuf>,
}

impl PluginPaths {
    /// Resolves a run configuration's plugin names or paths.
    pub fn of(config: &RunConfig) -> anyhow::Result<PluginPaths> {
        Ok(PluginPaths {
            agent: plugin::resolve(&config.agent)?,
            reward: plugin::resolve(&config.reward)?,
            assessor: config.assessor_spec().map(plugin::resolve).transpose()?,
        })
    }
}

/// Where a session's agent comes from.
enum AgentSource<'a> {
    /// A plugin file, with the configuration to init it with (else the run's section for it).
    Plugin(&'a Path, Option<String>),
    /// Outside the host, under this name.
    External(&'a str),
}

/// What the store records as the plugin path of an agent that lives outside the host.
pub const EXTERNAL_AGENT_PATH: &str = "(external)";

/// How an architecture is evaluated: already known (this episode's own evaluation, or the
/// cache), or to be trained.
pub enum Lookup {
    Known {
        evaluation_id: i64,
        outcome: Outcome,
        cache_hit: bool,
    },
    Train(ChildRequest),
}

impl Session {
    /// Loads the plugins and sets up training as the run's `[parallel]` says (loading the
    /// dataset when this process trains). `agent_config` overrides the agent's configuration
    /// section (used by `eval`); an assessor in `plugins` watches the search's children.
    pub fn open(
        config: &RunConfig,
        plugins: &PluginPaths,
        options: &SearchOptions,
        agent_config: Option<String>,
    ) -> anyhow::Result<Session> {
        Session::open_with(
            config,
            AgentSource::Plugin(&plugins.agent, agent_config),
            &plugins.reward,
            plugins.assessor.as_deref(),
            options,
        )
    }

    /// A session whose agent lives outside the host: `agent_name` is what the store records
    /// (`python:NAME`); `reward` and `assessor` are plugin files as in [`PluginPaths`].
    pub fn open_external(
        config: &RunConfig,
        agent_name: &str,
        reward: &Path,
        assessor: Option<&Path>,
        options: &SearchOptions,
    ) -> anyhow::Result<Session> {
        Session::open_with(config, AgentSource::External(agent_name), reward, assessor, options)
    }

    fn open_with(
        config: &RunConfig,
        agent_source: AgentSource<'_>,
        reward_path: &Path,
        assessor_path: Option<&Path>,
        options: &SearchOptions,
    ) -> anyhow::Result<Session> {
        let info = config.dataset.describe()?;
        let mdp = Mdp::new(config.mdp.clone(), info.height as u32);
        tracing::info!(
            "{} ({}×{}×{}, {} classes): {}",
            config.dataset,
            info.channels,
            info.height,
            info.width,
            info.num_classes(),
            mdp.allowed_first_layers()
        );
        let dataset_key = nas_train::train::dataset_identity(&config.dataset, options.data_dir.as_deref())?;
        let runtime = Runtime::new(Runtime::default_cache_dir())?;
        let (agent, agent_record) = match agent_source {
            AgentSource::Plugin(agent_path, agent_config) => {
                let agent_file = runtime.load(agent_path)?;
                let mut agent = AgentPlugin::instantiate(&runtime, &agent_file, config.sandbox, config.seed)?;
                agent.init(
                    &mdp,
                    &agent_config.unwrap_or_else(|| config.plugin_json(&plugin_section_name(agent_path))),
                    config.seed,
                )?;
                let agent_record = record(agent_path, agent.info(), &agent_file.sha256);
                (Some(agent), agent_record)
            }
            AgentSource::External(name) => (
                None,
                PluginRecord {
                    name: name.to_string(),
                    version: String::new(),
                    path: EXTERNAL_AGENT_PATH.to_string(),
                    sha256: String::new(),
                },
            ),
        };
        let reward_file = runtime.load(reward_path)?;
        let mut reward = RewardPlugin::instantiate(&runtime, &reward_file, config.sandbox, config.seed)?;
        let reward_name = plugin_section_name(reward_path);
        reward.init(&config.plugin_json(&reward_name))?;
        let assessor = match assessor_path {
            Some(path) => {
                let file = runtime.load(path)?;
                let mut assessor = AssessorPlugin::instantiate(&runtime, &file, config.sandbox, config.seed)?;
                assessor.init(&config.plugin_json(&plugin_section_name(path)))?;
                Some((record(path, assessor.info(), &file.sha256), assessor))
            }
            None => None,
        };
        let cost_meter = nas_train::cost::CostMeter::new(&config.cost, info.image_shape(), info.num_classes())?;
        let (trainer, workers) = crate::launch::trainer_for(config, &mdp, options, &cost_meter)?;
        // The checksum of the very bytes the evaluator parsed (a table still being built grows
        // between two reads).
        let table = trainer.table();
        let reward_record = record(reward_path, reward.info(), &reward_file.sha256);
        let (assessor_record, watch) = match assessor {
            Some((record, plugin)) => {
                let watch = Watch::new(plugin, config.train.epochs, info.image_shape(), info.num_classes());
                (Some(record), Some(watch))
            }
            None => (None, None),
        };
        Ok(Session {
            config: config.clone(),
            dataset_key,
            table,
            mdp,
            agent,
            reward,
            trainer,
            watch,
            cost_meter,
            input: info.image_shape(),
            classes: info.num_classes(),
            _workers: workers,
            agent_record,
            reward_record,
            assessor_record,
        })
    }

    /// The benchmark table children are answered from, with the table evaluator.
    pub(crate) fn table(&self) -> Option<&TableRecord> {
        self.table.as_ref()
    }

    /// Records a new run of this session's configuration and plugins in `store`; returns its id.
    pub(crate) fn create_run(&self, store: &Store, no_cache: bool) -> anyhow::Result<i64> {
        let config = &self.config;
        store.create_run(&NewRun {
            config_toml: &config.to_toml(),
            dataset: &config.dataset.source.label(),
            evaluator: config.evaluator.as_str(),
            seed: config.seed,
            episodes_target: config.episodes,
            agent: &self.agent_record,
            reward: &self.reward_record,
            assessor: self.assessor_record.as_ref(),
            device: self.trainer.device_kind(),
            no_cache,
            table: self.table.as_ref(),
        })
    }

    /// Tells the assessor, in the order their rewards were reported, the whole curves of the
    /// run's committed children, as an uninterrupted run had told it by now.
    pub(crate) fn replay_completed(&mut self, store: &Store, run: i64) -> anyhow::Result<()> {
        let Some(watch) = self.watch.as_mut() else {
            return Ok(());
        };
        let mut episodes = store.episodes(run)?;
        episodes.sort_by_key(|e| e.reported);
        let evaluations = store.episode_evaluations(run)?;
        for episode in &episodes {
            let id = evaluations[&episode.index];
            let arch: Architecture = episode.architecture.parse().map_err(anyhow::Error::msg)?;
            watch.completed(id, &arch, &store.evaluation(id)?.outcome)?;
        }
        Ok(())
    }

    /// The agent plugin; an error for a run whose agent lives outside the host.
    pub fn agent(&mut self) -> anyhow::Result<&mut AgentPlugin> {
        let name = &self.agent_record.name;
        self.agent.as_mut().ok_or_else(|| {
            anyhow::anyhow!("the agent of this run ({name}) lives outside nas-host; drive it from there")
        })
    }

    /// Lets the agent design one architecture in environment `env`. With `learn`, the agent is
    /// told the (zero) reward of every intermediate step.
    pub fn design(&mut self, env: u32, explore: bool, learn: bool) -> anyhow::Result<Architecture> {
        let mut state = self.mdp.start();
        let mut layers = Vec::new();
        while !state.terminated {
            let mask = self.mdp.mask(&state);
            let mdp = &self.mdp;
            let agent = self
                .agent
                .as_mut()
                .context("an external run's agent designs outside the host")?;
            let index = agent.act(env, mdp, &state, &mask, explore)?;
            let action = self.mdp.actions()[index];
            layers.push(action.layer);
            state = self.mdp.next_state(&state, &action);
            if learn && !state.terminated {
                self.agent()?.observe(env, 0.0, false)?;
            }
        }
        Ok(Architecture { layers })
    }

    /// The cache key of an architecture under this run's dataset, evaluator, protocol (with the
    /// training seed `train_seed`) and, for real training, device kind: CPU and CUDA kernels give
    /// different results for the same seed.
    fn cache_key(&self, arch: &Architecture, train_seed: u64) -> (String, String) {
        let protocol = match self.config.evaluator {
            EvaluatorKind::Train => serde_json::to_string(&TrainConfig {
                seed: train_seed,
                ..self.config.train.clone()
            }),
            EvaluatorKind::Synthetic => serde_json::to_string(&self.config.synthetic),
            // The table's content (not its path) and the surrogate's seed decide the answers.
            EvaluatorKind::Table => Ok(serde_json::json!({
                "table_sha256": self.table.as_ref().map(|t| &t.sha256),
                "surrogate_seed": self.config.table.surrogate_seed,
            })
            .to_string()),
        }
        .expect("protocols serialize");
        let text = format!(
            "{arch}|{}|{}|{protocol}|{PROTOCOL_REVISION}|{}",
            self.dataset_key,
            self.config.evaluator.as_str(),
            self.trainer.device_kind()
        );
        (sha256_hex(text.as_bytes()), protocol)
    }

    /// Finds how `arch` is evaluated: the evaluation stored for `origin` (run, episode) when that
    /// episode is redone after a kill, so it is recorded exactly as the first attempt would have
    /// been (not a cache hit, even with `use_cache` off); else the cache; else a child to train.
    pub fn lookup(
        &self,
        store: &Store,
        arch: &Architecture,
        use_cache: bool,
        origin: Option<(i64, usize)>,
        train_seed: u64,
        keep: bool,
    ) -> anyhow::Result<Lookup> {
        let (cache_key, protocol_json) = self.cache_key(arch, train_seed);
        if let Some((run, episode)) = origin {
            if let Some(mine) = store.evaluation_of_episode(&cache_key, run, episode)? {
                return Ok(Lookup::Known {
                    evaluation_id: mine.id,
                    outcome: mine.outcome,
                    cache_hit: false,
                });
            }
        }
        if use_cache {
            if let Some(cached) = store.cached_evaluation(&cache_key)? {
                return Ok(Lookup::Known {
                    evaluation_id: cached.id,
                    outcome: cached.outcome,
                    cache_hit: true,
                });
            }
        }
        Ok(Lookup::Train(ChildRequest {
            arch: arch.clone(),
            cache_key,
            protocol_json,
            train_seed,
            origin,
            keep,
            watch_epochs: self.watch.is_some().then_some(self.config.train.epochs),
            cost_json: self.worker_cost_json(),
        }))
    }

    /// How a worker times a child it trained: `[cost]` when latency is measured on this run's
    /// device; `None` with a latency table (the search sums it, `cost_of`) or with measuring off.
    fn worker_cost_json(&self) -> Option<String> {
        let cost = &self.config.cost;
        (cost.measure && cost.latency_table.is_none()).then(|| serde_json::to_string(cost).expect("[cost] serializes"))
    }

    /// Reseeds both plugins' WASI randomness for `episode`.
    pub fn reseed(&mut self, episode: usize) {
        let seed = episode_seed(self.config.seed, episode);
        if let Some(agent) = self.agent.as_mut() {
            agent.reseed(seed);
        }
        self.reward.reseed(seed ^ 1);
    }

    /// Reseeds the reward plugin alone for `episode`, before it shapes that episode's reward.
    pub(crate) fn reseed_reward(&mut self, episode: usize) {
        self.reward.reseed(episode_seed(self.config.seed, episode) ^ 1);
    }

    /// The cost of an evaluated child as its shaper is told it: the one stored with the
    /// evaluation, else its structural figures; with a latency table, the table's latency.
    pub fn cost_of(&self, arch: &Architecture, outcome: &Outcome) -> anyhow::Result<Cost> {
        let from_table = |latency: &Option<nas_core::record::Latency>| {
            latency.as_ref().is_some_and(|l| l.device.starts_with("table:"))
        };
        match &outcome.cost {
            Some(cost) if !self.cost_meter.uses_table() || from_table(&cost.latency) => Ok(cost.clone()),
            _ => self
                .cost_meter
                .cost(arch, self.input, self.classes, self.config.train.activation, None),
        }
    }

    /// Shapes the reward of an evaluated architecture.
    pub(crate) fn shape(&mut self, arch: &Architecture, outcome: &Outcome) -> anyhow::Result<f64> {
        let epochs = self.config.train.epochs;
        let cost = self.cost_of(arch, outcome)?;
        Ok(self.reward.shape(&nas_plugin_runtime::EvaluationInput {
            architecture: arch,
            accuracy: outcome.accuracy,
            params: outcome.params,
            train_seconds: outcome.seconds,
            failure: outcome.failure.as_deref(),
            epochs_trained: outcome.epochs_trained(epochs) as u32,
            epochs: epochs as u32,
            stopped: outcome.curve.stopped,
            cost: &cost,
        })?)
    }
}

/// Bumped whenever training changes results for the same protocol (e.g. the initialisation), so
/// that older cached evaluations are not served as if they were trained the current way.
/// Revision 2: PyTorch's default initialisation of conv and linear layers.
const PROTOCOL_REVISION: u32 = 2;

fn episode_seed(seed: u64, episode: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (episode as u64).wrapping_add(1).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episode_seeds_differ() {
        assert_ne!(episode_seed(1, 0), episode_seed(1, 1));
        assert_ne!(episode_seed(1, 0), episode_seed(2, 0));
        assert_eq!(episode_seed(3, 7), episode_seed(3, 7));
    }
}
