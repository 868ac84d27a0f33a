//! The search loop: per episode, the agent designs a network under the exact mask, the evaluator
//! scores it (or the architecture cache already knows it), the reward plugin shapes the reward, and
//! the agent learns from it. Every finished episode is committed to the store with an agent
//! checkpoint, so a run can be resumed from its last committed episode.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use nas_datasets::sha256_hex;

use crate::arch::Architecture;
use crate::assess::Watch;
use crate::config::{ParallelOverrides, RunConfig, Schedule};
use crate::device::DeviceChoice;
use crate::evaluator::{EvaluatorKind, Outcome};
use crate::mdp::Mdp;
use crate::plugin::{self, AgentPlugin, AssessorPlugin, RewardPlugin, Runtime};
use crate::pool::{self, ChildRequest, PoolStatus, SharedWorkers, Trainer};
use crate::store::{EpisodeRecord, InFlightDesign, NewRun, PluginRecord, RunRecord, Store};
use crate::train::TrainConfig;

/// How a search talks to the outside: where data and the store are, and what it prints.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub db: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: DeviceChoice,
    /// Train even architectures the cache knows.
    pub no_cache: bool,
    /// Flags over the run's `[parallel]` (on a resumed run, only how it is executed).
    pub parallel: ParallelOverrides,
    /// Workers already started for several searches at once (a comparison plan); else a search
    /// starts its own as its `[parallel]` says.
    pub shared_workers: Option<SharedWorkers>,
}

impl SearchOptions {
    /// Options with the defaults: CPU, the architecture cache on, training in this process.
    pub fn new(db: PathBuf) -> SearchOptions {
        SearchOptions {
            db,
            data_dir: None,
            device: DeviceChoice::Cpu,
            no_cache: false,
            parallel: ParallelOverrides::default(),
            shared_workers: None,
        }
    }
}

/// Receives a search's progress as it happens: the episodes already committed when it starts,
/// then each episode as it is committed, and the workers' state while children train. The loop
/// only hands results over; printing them (a progress bar, JSON lines) is the CLI's sinks'
/// business, and tests record them.
pub trait EpisodeSink {
    fn started(&mut self, _run: i64, _committed: &[EpisodeRecord], _total: usize) {}
    fn episode(&mut self, run: i64, episode: &EpisodeRecord);
    /// About once a second while the search waits for workers.
    fn pool(&mut self, _status: &PoolStatus) {}
    fn finished(&mut self) {}
}

/// A sink that shows nothing.
pub struct Silent;

impl EpisodeSink for Silent {
    fn episode(&mut self, _run: i64, _episode: &EpisodeRecord) {}
}

/// Everything one run needs: the MDP, the plugins and where children are trained.
pub struct Session {
    pub config: RunConfig,
    pub mdp: Mdp,
    pub agent: AgentPlugin,
    pub reward: RewardPlugin,
    pub trainer: Box<dyn Trainer>,
    /// The assessor watching children in training, if the run has one.
    pub watch: Option<Watch>,
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
        let (agent_path, reward_path) = (plugins.agent.as_path(), plugins.reward.as_path());
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
        let assessor = match plugins.assessor.as_deref() {
            Some(path) => {
                let file = runtime.load(path)?;
                let mut assessor = AssessorPlugin::instantiate(&runtime, &file, config.sandbox, config.seed)?;
                assessor.init(&config.plugin_json(&plugin_section_name(path)))?;
                Some((record(path, assessor.info(), &file.sha256), assessor))
            }
            None => None,
        };
        let (trainer, workers) = pool::trainer_for(config, &mdp, options)?;
        let agent_record = record(agent_path, agent.info(), &agent_file.sha256);
        let reward_record = record(reward_path, reward.info(), &reward_file.sha256);
        let (assessor_record, watch) = match assessor {
            Some((record, plugin)) => {
                let input = config.dataset.image_shape();
                let watch = Watch::new(plugin, config.train.epochs, input, config.dataset.num_classes());
                (Some(record), Some(watch))
            }
            None => (None, None),
        };
        Ok(Session {
            config: config.clone(),
            mdp,
            agent,
            reward,
            trainer,
            watch,
            _workers: workers,
            agent_record,
            reward_record,
            assessor_record,
        })
    }

    /// Tells the assessor, in the order their rewards were reported, the whole curves of the
    /// run's committed children, as an uninterrupted run had told it by now.
    fn replay_completed(&mut self, store: &Store, run: i64) -> anyhow::Result<()> {
        let Some(watch) = self.watch.as_mut() else {
            return Ok(());
        };
        let mut episodes = store.episodes(run)?;
        episodes.sort_by_key(|e| e.reported);
        let evaluations = store.episode_evaluations(run)?;
        for episode in &episodes {
            let id = evaluations[episode.index];
            let arch: Architecture = episode.architecture.parse().map_err(anyhow::Error::msg)?;
            watch.completed(id, &arch, &store.evaluation(id)?.outcome)?;
        }
        Ok(())
    }

    /// Lets the agent design one architecture in environment `env`. With `learn`, the agent is
    /// told the (zero) reward of every intermediate step.
    pub fn design(&mut self, env: u32, explore: bool, learn: bool) -> anyhow::Result<Architecture> {
        let mut state = self.mdp.start();
        let mut layers = Vec::new();
        while !state.terminated {
            let mask = self.mdp.mask(&state);
            let index = self.agent.act(env, &self.mdp, &state, &mask, explore)?;
            let action = self.mdp.actions()[index];
            layers.push(action.layer);
            state = self.mdp.next_state(&state, &action);
            if learn && !state.terminated {
                self.agent.observe(env, 0.0, false)?;
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
        }))
    }

    /// Reseeds both plugins' WASI randomness for `episode`.
    pub fn reseed(&mut self, episode: usize) {
        let seed = episode_seed(self.config.seed, episode);
        self.agent.reseed(seed);
        self.reward.reseed(seed ^ 1);
    }

    /// Reseeds the reward plugin alone for `episode`, before it shapes that episode's reward.
    fn reseed_reward(&mut self, episode: usize) {
        self.reward.reseed(episode_seed(self.config.seed, episode) ^ 1);
    }

    /// Shapes the reward of an evaluated architecture.
    fn shape(&mut self, arch: &Architecture, outcome: &Outcome) -> anyhow::Result<f64> {
        let epochs = self.config.train.epochs;
        Ok(self.reward.shape(&crate::plugin::EvaluationInput {
            architecture: arch,
            accuracy: outcome.accuracy,
            params: outcome.params,
            train_seconds: outcome.seconds,
            failure: outcome.failure.as_deref(),
            epochs_trained: outcome.epochs_trained(epochs) as u32,
            epochs: epochs as u32,
            stopped: outcome.curve.stopped,
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
        Start::New(mut config) => {
            options.parallel.apply(&mut config.parallel, true);
            // The number of environments shapes the results: fixed now, whatever workers a
            // resume brings.
            config.parallel.envs = config.parallel.env_count();
            let session = Session::open(&config, &PluginPaths::of(&config)?, options, None)?;
            let run = store.create_run(&NewRun {
                config_toml: &config.to_toml(),
                dataset: config.dataset.as_str(),
                evaluator: config.evaluator.as_str(),
                seed: config.seed,
                episodes_target: config.episodes,
                agent: &session.agent_record,
                reward: &session.reward_record,
                assessor: session.assessor_record.as_ref(),
                device: session.trainer.device_kind(),
                no_cache: options.no_cache,
            })?;
            (run, session, 0, options.no_cache)
        }
        Start::Resume { run, force, episodes } => {
            let record: RunRecord = store.run(run)?;
            let mut config = RunConfig::from_toml(&record.config_toml)?;
            // The stored target wins over the configuration's: it holds every extension so far.
            config.episodes = episodes.unwrap_or(record.episodes_target);
            // Runs from before parallel search designed in one environment.
            config.parallel.envs = config.parallel.envs.max(1);
            let designed_with = (config.parallel.envs, config.parallel.schedule);
            options.parallel.apply(&mut config.parallel, false);
            if options.parallel.envs.is_some_and(|k| k != designed_with.0)
                || options.parallel.schedule.is_some_and(|s| s != designed_with.1)
            {
                tracing::warn!(
                    "run {run} designs in {} environments with the {:?} schedule, as it started; --envs and --schedule apply to new runs only",
                    designed_with.0,
                    designed_with.1
                );
            }
            let agent = check_unchanged("agent", &record.agent, force)?;
            let reward = check_unchanged("reward", &record.reward, force)?;
            let assessor = match (&record.assessor, config.assessor_spec()) {
                (Some(recorded), _) => Some(check_unchanged("assessor", recorded, force)?),
                // A run stored before its assessor was recorded: resolve it as it started.
                (None, Some(spec)) => Some(plugin::resolve(spec)?),
                (None, None) => None,
            };
            let plugins = PluginPaths {
                agent,
                reward,
                assessor,
            };
            let mut session = Session::open(&config, &plugins, options, None)?;
            session.replay_completed(&store, run)?;
            let no_cache = check_same_environment(&record, session.trainer.device_kind(), options.no_cache, force)?;
            let designed = match store.checkpoint(run)? {
                Some((designed, state)) => {
                    session.agent.load(&state)?;
                    designed
                }
                None => 0,
            };
            // Only now that the run can really continue does its record change.
            store.set_episodes_target(run, config.episodes)?;
            store.set_run_environment(run, session.trainer.device_kind(), no_cache)?;
            store.set_status(run, "running", None)?;
            tracing::info!(
                "resuming run {run} after episode {} of {}",
                record.episodes_done,
                config.episodes
            );
            (run, session, designed, no_cache)
        }
    };

    let started = Instant::now();
    sink.started(run_id, &store.episodes(run_id)?, session.config.episodes);
    let result = match session.config.parallel.schedule {
        Schedule::Sync => run_sync(&mut store, &mut session, run_id, first_episode, no_cache, sink),
        Schedule::Async => run_async(&mut store, &mut session, run_id, first_episode, no_cache, sink),
    };
    if result.is_ok() {
        sink.finished();
    }
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

/// One design of an episode on its way to a reward.
struct Slot {
    episode: usize,
    env: u32,
    arch: Architecture,
    /// The agent's values while it designed this episode (its ε, say), before the episode's
    /// reward updates them.
    metrics: serde_json::Map<String, serde_json::Value>,
    /// (evaluation id, outcome, cache hit, kept weights) once evaluated.
    result: Option<(i64, Outcome, bool, Option<Vec<u8>>)>,
}

impl Session {
    /// Lets the agent design episode `episode` in environment `env`, learning as it goes.
    fn design_slot(&mut self, episode: usize, env: u32) -> anyhow::Result<Slot> {
        self.reseed(episode);
        let arch = self.design(env, true, true)?;
        let metrics = self.agent_metrics()?;
        Ok(Slot {
            episode,
            env,
            arch,
            metrics,
            result: None,
        })
    }

    fn agent_metrics(&mut self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        Ok(self
            .agent
            .metrics()?
            .into_iter()
            .map(|(k, v)| (k, serde_json::json!(v)))
            .collect())
    }

    /// Fills in the slot's result when it is known, else submits its child.
    fn evaluate_slot(&mut self, store: &Store, run: i64, slot: &mut Slot, no_cache: bool) -> anyhow::Result<()> {
        let keep = self.config.search.keep_weights > 0;
        let seed = self.config.train.seed;
        match self.lookup(store, &slot.arch, !no_cache, Some((run, slot.episode)), seed, keep)? {
            Lookup::Known {
                evaluation_id,
                outcome,
                cache_hit,
            } => slot.result = Some((evaluation_id, outcome, cache_hit, None)),
            Lookup::Train(child) => self.trainer.submit(store, slot.episode, child)?,
        }
        Ok(())
    }

    /// Waits for one submitted child and files its result in its slot; returns the slot's index.
    fn wait_into(&mut self, store: &Store, slots: &mut [Slot], sink: &mut dyn EpisodeSink) -> anyhow::Result<usize> {
        let (ticket, finished) = self
            .trainer
            .wait(store, &mut |status| sink.pool(status), self.watch.as_mut())?;
        let index = slots
            .iter()
            .position(|s| s.episode == ticket && s.result.is_none())
            .context("a child finished that no episode waits for")?;
        if let Some(reason) = &finished.outcome.failure {
            tracing::warn!("child `{}` failed: {reason}", slots[index].arch);
        }
        slots[index].result = Some((
            finished.evaluation_id,
            finished.outcome,
            finished.joined,
            finished.weights,
        ));
        Ok(index)
    }

    /// Shapes the slot's reward and tells the agent; returns the episode record.
    fn report(&mut self, slot: &Slot, reported: usize) -> anyhow::Result<(EpisodeRecord, i64)> {
        let (evaluation_id, outcome, cache_hit, _) = slot.result.as_ref().expect("evaluated");
        self.reseed_reward(slot.episode);
        let reward = self.shape(&slot.arch, outcome)?;
        self.agent.observe(slot.env, reward, true)?;
        if let Some(watch) = self.watch.as_mut() {
            watch.completed(*evaluation_id, &slot.arch, outcome)?;
        }
        tracing::debug!(
            episode = slot.episode,
            env = slot.env,
            reward,
            accuracy = outcome.accuracy,
            cache_hit,
            "{}",
            slot.arch
        );
        Ok((
            EpisodeRecord {
                index: slot.episode,
                env: slot.env,
                architecture: slot.arch.to_string(),
                reward,
                accuracy: outcome.accuracy,
                params: outcome.params,
                depth: slot.arch.depth(),
                cache_hit: *cache_hit,
                failure: outcome.failure.clone(),
                metrics: slot.metrics.clone(),
                reported,
                stopped: outcome.curve.stopped,
            },
            *evaluation_id,
        ))
    }
}

/// The `sync` schedule: the agent designs one episode in each environment, the children are
/// trained (in parallel, with workers), and the rewards are reported in environment order; the
/// batch is then committed with one checkpoint. With one environment this is the plain loop:
/// design, train, reward, commit.
fn run_sync(
    store: &mut Store,
    session: &mut Session,
    run: i64,
    first: usize,
    no_cache: bool,
    sink: &mut dyn EpisodeSink,
) -> anyhow::Result<()> {
    let total = session.config.episodes;
    let envs = session.config.parallel.envs.max(1);
    let mut next = first;
    while next < total {
        let end = (next + envs).min(total);
        let mut slots = Vec::with_capacity(end - next);
        for (env, episode) in (next..end).enumerate() {
            let mut slot = session.design_slot(episode, env as u32)?;
            session.evaluate_slot(store, run, &mut slot, no_cache)?;
            slots.push(slot);
        }
        while slots.iter().any(|s| s.result.is_none()) {
            session.wait_into(store, &mut slots, sink)?;
        }
        let mut records = Vec::with_capacity(slots.len());
        for slot in &slots {
            records.push(session.report(slot, slot.episode)?);
        }
        let state = session.agent.save()?;
        store.commit_episodes(run, &records, &state, end)?;
        for (slot, (episode, evaluation_id)) in slots.iter_mut().zip(&records) {
            if let Some(weights) = slot.result.as_mut().and_then(|r| r.3.take()) {
                keep_best_weights(
                    store,
                    run,
                    session.config.search.keep_weights,
                    episode,
                    *evaluation_id,
                    &weights,
                )?;
            }
            sink.episode(run, episode);
        }
        next = end;
    }
    Ok(())
}

/// The `async` schedule: whenever an environment is free the agent designs its next episode
/// there (the design and the agent's state are committed at once), and a finished child's reward
/// is reported as soon as it arrives. A resumed run waits for the designs it left in flight.
fn run_async(
    store: &mut Store,
    session: &mut Session,
    run: i64,
    first: usize,
    no_cache: bool,
    sink: &mut dyn EpisodeSink,
) -> anyhow::Result<()> {
    let total = session.config.episodes;
    let envs = session.config.parallel.envs.max(1) as u32;
    let mut designed = first;
    let mut reported = store.episodes(run)?.len();
    let mut slots: Vec<Slot> = Vec::new();
    for design in store.in_flight(run)? {
        let mut slot = Slot {
            episode: design.episode,
            env: design.env,
            arch: design.architecture.parse().map_err(anyhow::Error::msg)?,
            metrics: design.metrics,
            result: None,
        };
        session.evaluate_slot(store, run, &mut slot, no_cache)?;
        slots.push(slot);
    }
    loop {
        while designed < total && slots.len() < envs as usize {
            let env = (0..envs)
                .find(|e| slots.iter().all(|s| s.env != *e))
                .expect("a free environment");
            let mut slot = session.design_slot(designed, env)?;
            let state = session.agent.save()?;
            store.commit_design(
                run,
                &InFlightDesign {
                    episode: designed,
                    env,
                    architecture: slot.arch.to_string(),
                    metrics: slot.metrics.clone(),
                },
                &state,
                designed + 1,
            )?;
            session.evaluate_slot(store, run, &mut slot, no_cache)?;
            slots.push(slot);
            designed += 1;
        }
        if slots.is_empty() {
            return Ok(());
        }
        let index = match slots.iter().position(|s| s.result.is_some()) {
            Some(index) => index,
            None => session.wait_into(store, &mut slots, sink)?,
        };
        let mut slot = slots.remove(index);
        let (episode, evaluation_id) = session.report(&slot, reported)?;
        let state = session.agent.save()?;
        store.commit_episodes(run, &[(episode.clone(), evaluation_id)], &state, designed)?;
        reported += 1;
        if let Some(weights) = slot.result.as_mut().and_then(|r| r.3.take()) {
            keep_best_weights(
                store,
                run,
                session.config.search.keep_weights,
                &episode,
                evaluation_id,
                &weights,
            )?;
        }
        sink.episode(run, &episode);
    }
}

/// Keeps `weights` (of `episode`'s evaluation `evaluation_id`, just committed) if its
/// architecture is among the run's `k` best distinct ones, and forgets the
/// weights of any that left them. A child kept here is exported without training again
/// (`nas-host export`); one the assessor stopped early is not the protocol's model, so its
/// weights are never kept and its export trains it fully.
fn keep_best_weights(
    store: &Store,
    run: i64,
    k: usize,
    episode: &EpisodeRecord,
    evaluation_id: i64,
    weights: &[u8],
) -> anyhow::Result<()> {
    if episode.stopped {
        return Ok(());
    }
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
