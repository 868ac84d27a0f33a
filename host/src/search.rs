//! The search loop: per episode, the agent designs a network under the exact mask, the evaluator
//! scores it (or the architecture cache already knows it), the reward plugin shapes the reward, and
//! the agent learns from it. Every finished episode is committed to the store with an agent
//! checkpoint, so a run can be resumed from its last committed episode.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use nas_datasets::sha256_hex;

use crate::arch::Architecture;
use crate::config::RunConfig;
use crate::device::DeviceChoice;
use crate::evaluator::{Evaluator, EvaluatorKind, Outcome};
use crate::mdp::Mdp;
use crate::plugin::{self, AgentPlugin, RewardPlugin, Runtime};
use crate::store::{EpisodeRecord, NewEvaluation, NewRun, PluginRecord, RunRecord, Store};
use crate::train::TrainConfig;

/// How a search talks to the outside: where data and the store are, and what it prints.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub db: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: DeviceChoice,
    /// Train even architectures the cache knows.
    pub no_cache: bool,
}

/// Receives a search's progress as it happens: the episodes already committed when it starts,
/// then each episode as it is committed. The loop only hands results over; printing them (a
/// progress bar, JSON lines) is the CLI's sinks' business, and tests record them.
pub trait EpisodeSink {
    fn started(&mut self, _run: i64, _committed: &[EpisodeRecord], _total: usize) {}
    fn episode(&mut self, run: i64, episode: &EpisodeRecord);
    fn finished(&mut self) {}
}

/// A sink that shows nothing.
pub struct Silent;

impl EpisodeSink for Silent {
    fn episode(&mut self, _run: i64, _episode: &EpisodeRecord) {}
}

/// Everything one run needs: the MDP, the plugins and the evaluator.
pub struct Session {
    pub config: RunConfig,
    pub mdp: Mdp,
    pub agent: AgentPlugin,
    pub reward: RewardPlugin,
    pub evaluator: Evaluator,
    pub agent_record: PluginRecord,
    pub reward_record: PluginRecord,
}

fn record(path: &Path, info: &plugin::PluginInfo, sha256: &str) -> PluginRecord {
    PluginRecord {
        name: info.name.clone(),
        version: info.version.clone(),
        path: path.display().to_string(),
        sha256: sha256.to_string(),
    }
}

impl Session {
    /// Loads the plugins and the evaluator (and the dataset, for real training). `agent_config`
    /// overrides the agent's configuration section (used by `eval`).
    pub fn open(
        config: &RunConfig,
        agent_path: &Path,
        reward_path: &Path,
        options: &SearchOptions,
        agent_config: Option<String>,
    ) -> anyhow::Result<Session> {
        let (_, side, _) = config.dataset.image_shape();
        let mdp = Mdp::new(config.mdp.clone(), side as u32);
        let runtime = Runtime::new(Runtime::default_cache_dir())?;
        let agent_file = runtime.load(agent_path)?;
        let reward_file = runtime.load(reward_path)?;
        let mut agent = AgentPlugin::instantiate(&runtime, &agent_file, config.sandbox, config.seed)?;
        let mut reward = RewardPlugin::instantiate(&runtime, &reward_file, config.sandbox, config.seed)?;
        let agent_name = plugin_section_name(agent_path);
        let reward_name = plugin_section_name(reward_path);
        agent.init(
            &mdp,
            &agent_config.unwrap_or_else(|| config.plugin_json(&agent_name)),
            config.seed,
        )?;
        reward.init(&config.plugin_json(&reward_name))?;
        let evaluator = Evaluator::for_run(config, &mdp, options.data_dir.as_deref(), options.device)?;
        let agent_record = record(agent_path, agent.info(), &agent_file.sha256);
        let reward_record = record(reward_path, reward.info(), &reward_file.sha256);
        Ok(Session {
            config: config.clone(),
            mdp,
            agent,
            reward,
            evaluator,
            agent_record,
            reward_record,
        })
    }

    /// Lets the agent design one architecture in environment 0. With `learn`, the agent is told
    /// the (zero) reward of every intermediate step.
    pub fn design(&mut self, explore: bool, learn: bool) -> anyhow::Result<Architecture> {
        let mut state = self.mdp.start();
        let mut layers = Vec::new();
        while !state.terminated {
            let mask = self.mdp.mask(&state);
            let index = self.agent.act(0, &self.mdp, &state, &mask, explore)?;
            let action = self.mdp.actions()[index];
            layers.push(action.layer);
            state = self.mdp.next_state(&state, &action);
            if learn && !state.terminated {
                self.agent.observe(0, 0.0, false)?;
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
        }
        .expect("protocols serialize");
        let text = format!(
            "{arch}|{}|{}|{protocol}|{PROTOCOL_REVISION}|{}",
            self.config.dataset,
            self.config.evaluator.as_str(),
            self.evaluator.device_kind()
        );
        (sha256_hex(text.as_bytes()), protocol)
    }

    /// Evaluates an architecture through the cache: returns (evaluation id, outcome, cache hit).
    /// A new evaluation is stored as soon as it finishes, marked with `origin` (run, episode):
    /// when that episode is redone after a kill it reuses the evaluation and records it exactly
    /// as the first attempt would have (not a cache hit), even with `use_cache` off.
    pub fn evaluate(
        &self,
        store: &Store,
        arch: &Architecture,
        use_cache: bool,
        origin: Option<(i64, usize)>,
    ) -> anyhow::Result<(i64, Outcome, bool)> {
        self.evaluate_with_seed(store, arch, use_cache, origin, self.config.train.seed)
    }

    /// [`Session::evaluate`] with another training seed (`eval` trains each sample with its own).
    pub fn evaluate_with_seed(
        &self,
        store: &Store,
        arch: &Architecture,
        use_cache: bool,
        origin: Option<(i64, usize)>,
        train_seed: u64,
    ) -> anyhow::Result<(i64, Outcome, bool)> {
        let (id, outcome, cache_hit, _) = self.evaluate_keeping(store, arch, use_cache, origin, train_seed, false)?;
        Ok((id, outcome, cache_hit))
    }

    /// [`Session::evaluate_with_seed`], also returning the trained weights when `keep` is set and
    /// the child was trained now (not served from the store).
    fn evaluate_keeping(
        &self,
        store: &Store,
        arch: &Architecture,
        use_cache: bool,
        origin: Option<(i64, usize)>,
        train_seed: u64,
        keep: bool,
    ) -> anyhow::Result<(i64, Outcome, bool, Option<Vec<u8>>)> {
        let (key, protocol) = self.cache_key(arch, train_seed);
        if let Some((run, episode)) = origin {
            if let Some(mine) = store.evaluation_of_episode(&key, run, episode)? {
                return Ok((mine.id, mine.outcome, false, None));
            }
        }
        if use_cache {
            if let Some(cached) = store.cached_evaluation(&key)? {
                return Ok((cached.id, cached.outcome, true, None));
            }
        }
        let (outcome, weights) = self.evaluator.evaluate_keeping(arch, train_seed, keep);
        if let Some(reason) = &outcome.failure {
            tracing::warn!("child `{arch}` failed: {reason}");
        }
        let id = store.insert_evaluation(&NewEvaluation {
            cache_key: &key,
            architecture: &arch.to_string(),
            dataset: self.config.dataset.as_str(),
            evaluator: self.config.evaluator.as_str(),
            protocol_json: &protocol,
            depth: arch.depth(),
            outcome: &outcome,
            origin,
        })?;
        Ok((id, outcome, false, weights))
    }

    /// Reseeds both plugins' WASI randomness for `episode`.
    pub fn reseed(&mut self, episode: usize) {
        let seed = episode_seed(self.config.seed, episode);
        self.agent.reseed(seed);
        self.reward.reseed(seed ^ 1);
    }
}

/// Bumped whenever training changes results for the same protocol (e.g. the initialisation), so
/// that older cached evaluations are not served as if they were trained the current way.
/// Revision 2: PyTorch's default initialisation of conv and linear layers.
const PROTOCOL_REVISION: u32 = 2;

fn episode_seed(seed: u64, episode: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (episode as u64).wrapping_add(1).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// The name of a plugin's configuration section: its file stem (`plugins/ppo.wasm` → `ppo`).
pub fn plugin_section_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// Where a search starts.
pub enum Start {
    New(Box<RunConfig>),
    Resume {
        run: i64,
        /// Resume even though a plugin file changed since the run started.
        force: bool,
        /// A new episode target (to extend a finished run).
        episodes: Option<usize>,
    },
}

/// What a finished (or stopped) search reports.
#[derive(Debug, Clone)]
pub struct SearchSummary {
    pub run: i64,
    /// Every committed episode of the run, in order.
    pub episodes: Vec<EpisodeRecord>,
}

/// Refuses to resume with a plugin whose file changed, unless forced.
fn check_unchanged(kind: &str, recorded: &PluginRecord, force: bool) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(&recorded.path);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "the run's {kind} plugin {} is gone; restore it to resume",
            path.display()
        )
    })?;
    let sha = sha256_hex(&bytes);
    if sha != recorded.sha256 {
        if force {
            tracing::warn!(
                "{kind} plugin {} changed since the run started; resuming anyway (--force)",
                path.display()
            );
        } else {
            anyhow::bail!(
                "the {kind} plugin {} changed since the run started (sha256 {} then, {} now); its checkpoint may not fit the new code. Restore the old file, or pass --force to resume anyway",
                path.display(),
                &recorded.sha256[..12],
                &sha[..12]
            );
        }
    }
    Ok(path)
}

/// A resumed run must train as it started: another device kind changes results (refused unless
/// forced); turning the cache off (or on) changes which episodes are trained (a warning). Returns
/// whether the resumed run bypasses the cache: `--no-cache` now, or the run's own setting.
fn check_same_environment(record: &RunRecord, device: &str, no_cache: bool, force: bool) -> anyhow::Result<bool> {
    if let Some(recorded) = record.device.as_deref() {
        if recorded != device {
            if force {
                tracing::warn!(
                    "run {} trained on {recorded}, resuming on {device} (--force)",
                    record.id
                );
            } else {
                anyhow::bail!(
                    "run {} trained its children on {recorded}, but this resume would train on {device}, which gives other results; resume with --device {recorded}, or pass --force to continue on {device}",
                    record.id
                );
            }
        }
    }
    if no_cache && !record.no_cache {
        tracing::warn!(
            "run {} used the architecture cache; the resumed episodes will train every architecture (--no-cache)",
            record.id
        );
    }
    Ok(no_cache || record.no_cache)
}

/// Runs (or resumes) a search and stores every episode, silently.
pub fn search(start: Start, options: &SearchOptions) -> anyhow::Result<SearchSummary> {
    search_with(start, options, &mut Silent)
}

/// Runs (or resumes) a search, stores every episode and hands each to `sink`.
pub fn search_with(start: Start, options: &SearchOptions, sink: &mut dyn EpisodeSink) -> anyhow::Result<SearchSummary> {
    let mut store = Store::open(&options.db)?;
    let (run_id, mut session, first_episode, no_cache) = match start {
        Start::New(config) => {
            let agent_path = plugin::resolve(&config.agent)?;
            let reward_path = plugin::resolve(&config.reward)?;
            let session = Session::open(&config, &agent_path, &reward_path, options, None)?;
            let run = store.create_run(&NewRun {
                config_toml: &config.to_toml(),
                dataset: config.dataset.as_str(),
                evaluator: config.evaluator.as_str(),
                seed: config.seed,
                episodes_target: config.episodes,
                agent: &session.agent_record,
                reward: &session.reward_record,
                device: session.evaluator.device_kind(),
                no_cache: options.no_cache,
            })?;
            (run, session, 0, options.no_cache)
        }
        Start::Resume { run, force, episodes } => {
            let record: RunRecord = store.run(run)?;
            let mut config = RunConfig::from_toml(&record.config_toml)?;
            // The stored target wins over the configuration's: it holds every extension so far.
            config.episodes = episodes.unwrap_or(record.episodes_target);
            let agent_path = check_unchanged("agent", &record.agent, force)?;
            let reward_path = check_unchanged("reward", &record.reward, force)?;
            let mut session = Session::open(&config, &agent_path, &reward_path, options, None)?;
            let no_cache = check_same_environment(&record, session.evaluator.device_kind(), options.no_cache, force)?;
            let done = match store.checkpoint(run)? {
                Some((done, state)) => {
                    session.agent.load(&state)?;
                    done
                }
                None => 0,
            };
            // Only now that the run can really continue does its record change.
            store.set_episodes_target(run, config.episodes)?;
            store.set_run_environment(run, session.evaluator.device_kind(), no_cache)?;
            store.set_status(run, "running", None)?;
            tracing::info!("resuming run {run} after episode {done} of {}", config.episodes);
            (run, session, done, no_cache)
        }
    };

    let started = Instant::now();
    let result = run_episodes(&mut store, &mut session, run_id, first_episode, no_cache, sink);
    store.add_wall_seconds(run_id, started.elapsed().as_secs_f64())?;
    match &result {
        Ok(_) => store.set_status(run_id, "finished", None)?,
        Err(e) => store.set_status(run_id, "failed", Some(&format!("{e:#}")))?,
    }
    let episodes = store.episodes(run_id)?;
    result.map_err(|e| {
        e.context(format!(
            "run {run_id} stopped after {} committed episodes (all kept); fix the cause and continue with `nas-host search --resume {run_id}`",
            episodes.len()
        ))
    })?;
    Ok(SearchSummary { run: run_id, episodes })
}

fn run_episodes(
    store: &mut Store,
    session: &mut Session,
    run: i64,
    first: usize,
    no_cache: bool,
    sink: &mut dyn EpisodeSink,
) -> anyhow::Result<()> {
    let total = session.config.episodes;
    sink.started(run, &store.episodes(run)?, total);
    for index in first..total {
        session.reseed(index);
        let arch = session.design(true, true)?;
        // The agent's values while it designed this episode (its ε, say), before the episode's
        // reward updates them.
        let metrics = session.agent.metrics()?;
        let keep = session.config.search.keep_weights > 0;
        let (evaluation_id, outcome, cache_hit, weights) = session.evaluate_keeping(
            store,
            &arch,
            !no_cache,
            Some((run, index)),
            session.config.train.seed,
            keep,
        )?;
        let reward = session.reward.shape(&crate::plugin::EvaluationInput {
            architecture: &arch,
            accuracy: outcome.accuracy,
            params: outcome.params,
            train_seconds: outcome.seconds,
            failure: outcome.failure.as_deref(),
        })?;
        session.agent.observe(0, reward, true)?;
        let state = session.agent.save()?;
        let episode = EpisodeRecord {
            index,
            env: 0,
            architecture: arch.to_string(),
            reward,
            accuracy: outcome.accuracy,
            params: outcome.params,
            depth: arch.depth(),
            cache_hit,
            failure: outcome.failure.clone(),
            metrics: metrics.into_iter().map(|(k, v)| (k, serde_json::json!(v))).collect(),
        };
        store.commit_episode(run, &episode, evaluation_id, &state)?;
        if let Some(weights) = weights {
            keep_best_weights(store, run, session.config.search.keep_weights, evaluation_id, &weights)?;
        }
        tracing::debug!(
            episode = index,
            reward,
            accuracy = outcome.accuracy,
            cache_hit,
            "{arch}"
        );
        sink.episode(run, &episode);
    }
    sink.finished();
    Ok(())
}

/// Keeps `weights` (of evaluation `evaluation_id`, just committed) if its architecture is among
/// the run's `k` best distinct ones, and forgets the weights of any that left them. A child kept
/// here is exported without training again (`nas-host export`).
fn keep_best_weights(store: &Store, run: i64, k: usize, evaluation_id: i64, weights: &[u8]) -> anyhow::Result<()> {
    let episodes = store.episodes(run)?;
    let evaluations = store.episode_evaluations(run)?;
    let best: Vec<i64> = crate::report::top_distinct(&episodes, k)
        .into_iter()
        .map(|e| evaluations[e.index])
        .collect();
    if best.contains(&evaluation_id) {
        store.keep_weights(run, evaluation_id, weights)?;
    }
    store.prune_weights(run, &best)
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
