//! A run whose agent lives outside the host: a Python RL library stepping `nas_host.NasEnv`, one
//! layer per step. The host keeps everything else exactly as a search does — the MDP and its
//! masks, the architecture cache, training (in this process or on the run's workers), the assessor,
//! the reward plugin and the store — so the run is reported, compared and served like any other,
//! under the agent name `python:NAME`. Control is inverted: the caller picks each action and the
//! terminal step trains the child and returns its shaped reward.
//!
//! One environment, designed in order: episode `k`'s reward is known before episode `k + 1` starts,
//! as in the `sync` schedule with one environment. Several Python environments (a vector env) are
//! several runs, each with its own record.

use std::time::Instant;

use nas_config::RunConfig;
use nas_core::arch::{Architecture, Layer};
use nas_core::mdp::{Mdp, State};
use nas_core::record::EpisodeRecord;
use nas_plugin_runtime as plugin;
use nas_store::{RunRecord, Store};

use crate::options::SearchOptions;
use crate::schedule::{keep_best_weights, Slot};
use crate::session::{Session, EXTERNAL_AGENT_PATH};
use crate::sink::Silent;

/// Refuses to drive a run from the host when its agent lives outside it (`what` is the action:
/// "resumed", "evaluated").
pub(crate) fn ensure_host_agent(record: &RunRecord, what: &str) -> anyhow::Result<()> {
    if record.agent.path == EXTERNAL_AGENT_PATH {
        anyhow::bail!(
            "run {} was designed by {}, an agent outside nas-host (nas_host.NasEnv from Python); its policy lives there, so the run cannot be {what} by nas-host. Its episodes are in the store: `nas-host report {}`",
            record.id,
            record.agent.name,
            record.id
        );
    }
    Ok(())
}

/// A run designed from outside, one action at a time.
pub struct ExternalRun {
    store: Store,
    session: Session,
    run: i64,
    no_cache: bool,
    /// The index of the episode being designed (= episodes committed so far).
    episode: usize,
    state: State,
    layers: Vec<Layer>,
    started: Instant,
    closed: bool,
}

/// What a step did.
#[derive(Debug, Clone)]
pub enum Step {
    /// The network goes on; design its next layer.
    Continue,
    /// The network ended: its child was evaluated and the episode committed.
    Finished(EpisodeRecord),
}

impl ExternalRun {
    /// Starts a new run in `options.db` for an agent named `agent_name` (recorded as is, e.g.
    /// `python:MaskablePPO`), with the run configuration's reward plugin, assessor, evaluator,
    /// training protocol and workers. The configuration's `agent` is not loaded.
    pub fn start(mut config: RunConfig, agent_name: &str, options: &SearchOptions) -> anyhow::Result<ExternalRun> {
        options.parallel.apply(&mut config.parallel, true);
        config.validate()?;
        config.parallel.envs = 1;
        let reward = plugin::resolve(&config.reward)?;
        let assessor = config.assessor_spec().map(plugin::resolve).transpose()?;
        // The store first, as a CLI search opens it: it makes a SQLite file's folder.
        let store = Store::open(&options.db)?;
        let session = Session::open_external(&config, agent_name, &reward, assessor.as_deref(), options)?;
        let run = session.create_run(&store, options.no_cache)?;
        let state = session.mdp.start();
        Ok(ExternalRun {
            store,
            session,
            run,
            no_cache: options.no_cache,
            episode: 0,
            state,
            layers: Vec::new(),
            started: Instant::now(),
            closed: false,
        })
    }

    /// The run's id in the store.
    pub fn run(&self) -> i64 {
        self.run
    }

    pub fn mdp(&self) -> &Mdp {
        &self.session.mdp
    }

    /// The state of the network being designed.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Episodes committed so far.
    pub fn episodes_done(&self) -> usize {
        self.episode
    }

    /// Which actions are allowed now (the MDP's exact mask).
    pub fn mask(&self) -> Vec<bool> {
        self.session.mdp.mask(&self.state)
    }

    /// Starts a new network; one not finished is forgotten (nothing of it was stored).
    pub fn reset(&mut self) {
        self.state = self.session.mdp.start();
        self.layers.clear();
    }

    /// Takes action `index` of the flat action list. An action outside the mask is refused
    /// (nothing changes; after the network ended every action is, until `reset`). The action that
    /// ends the network evaluates the child — from the cache,
    /// or trained as the run's protocol says, which blocks for as long as training takes — shapes
    /// its reward with the reward plugin, and commits the episode.
    pub fn step(&mut self, index: usize) -> anyhow::Result<Step> {
        anyhow::ensure!(!self.closed, "run {} is closed", self.run);
        let actions = self.session.mdp.actions();
        anyhow::ensure!(
            index < actions.len(),
            "action {index} does not exist: the action list has {} entries (0–{})",
            actions.len(),
            actions.len() - 1
        );
        let action = actions[index];
        if let Err(rule) = self.session.mdp.check(&self.state, &action) {
            let mask = self.session.mdp.mask(&self.state);
            let allowed: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
            anyhow::bail!(
                "action {index} ({}) is masked out after {} layer(s): {rule}; the allowed actions are {allowed:?} (see action_masks())",
                describe(&action),
                self.layers.len()
            );
        }
        self.layers.push(action.layer);
        self.state = self.session.mdp.next_state(&self.state, &action);
        if !self.state.terminated {
            return Ok(Step::Continue);
        }
        // The state stays terminal (every action masked) until `reset` starts the next network.
        let arch = Architecture {
            layers: std::mem::take(&mut self.layers),
        };
        match self.finish(arch) {
            Ok(record) => Ok(Step::Finished(record)),
            Err(e) => {
                // Every committed episode is kept; the run is marked failed with the cause.
                let _ = self.store.set_status(self.run, "failed", Some(&format!("{e:#}")));
                self.closed = true;
                Err(e.context(format!(
                    "run {} stopped after {} committed episodes (all kept)",
                    self.run, self.episode
                )))
            }
        }
    }

    /// Evaluates a finished network as this run's next episode and commits it.
    fn finish(&mut self, arch: Architecture) -> anyhow::Result<EpisodeRecord> {
        let episode = self.episode;
        let mut slot = Slot {
            episode,
            env: 0,
            arch,
            metrics: serde_json::Map::new(),
            result: None,
        };
        self.session.reseed(episode);
        self.session
            .evaluate_slot(&self.store, self.run, &mut slot, self.no_cache)?;
        while slot.result.is_none() {
            self.session
                .wait_into(&self.store, std::slice::from_mut(&mut slot), &mut Silent)?;
        }
        let (record, evaluation_id) = self.session.report(&slot, episode)?;
        // The agent's state lives outside the host: the checkpoint is empty.
        self.store
            .commit_episodes(self.run, &[(record.clone(), evaluation_id)], &[], episode + 1)?;
        if episode + 1 > self.session.config.episodes {
            self.store.set_episodes_target(self.run, episode + 1)?;
        }
        if let Some(weights) = slot.result.as_mut().and_then(|r| r.3.take()) {
            keep_best_weights(
                &self.store,
                self.run,
                self.session.config.search.keep_weights,
                &record,
                evaluation_id,
                &weights,
            )?;
        }
        self.episode += 1;
        Ok(record)
    }

    /// Marks the run finished (its wall time added); later steps are refused. Dropping an open
    /// run closes it.
    pub fn close(&mut self) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.store
            .add_wall_seconds(self.run, self.started.elapsed().as_secs_f64())?;
        self.store.set_status(self.run, "finished", None)
    }
}

impl Drop for ExternalRun {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!("closing run {}: {e:#}", self.run);
        }
    }
}

fn describe(action: &nas_core::mdp::Action) -> String {
    if action.terminate {
        format!("{} then terminate", action.layer)
    } else {
        action.layer.to_string()
    }
}
