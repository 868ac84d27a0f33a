//! The host's handle on an agent plugin.

use super::bindings::{wit, wit_layer};
use super::handle::{on_agent, AgentBindings, PluginHandle};
use super::runtime::plugin_text;
use super::PluginError;
use nas_core::mdp::{Mdp, State};

/// A running agent plugin. Every call is sandboxed; an action the mask forbids is refused.
pub type AgentPlugin = PluginHandle<AgentBindings>;

impl AgentPlugin {
    /// Tells the agent the search space, its configuration (JSON) and seed.
    pub fn init(&mut self, mdp: &Mdp, config_json: &str, seed: u64) -> Result<(), PluginError> {
        let space = wit::Space {
            actions: mdp
                .actions()
                .iter()
                .map(|a| wit::ActionSpec {
                    layer: wit_layer(&a.layer),
                    terminate: a.terminate,
                })
                .collect(),
            observation_len: mdp.observation_len() as u32,
            tuple_field_sizes: mdp.tuple_field_sizes().iter().map(|&s| s as u32).collect(),
            max_depth: mdp.config.max_depth as u32,
        };
        let plugin = &self.bindings;
        self.sandbox.call("init", |s| {
            on_agent!(plugin, |agent| agent.call_init(s, &space, config_json, seed))
        })
    }

    /// Asks for an action in `state`; refuses (never executes) an index the mask forbids.
    pub fn act(
        &mut self,
        env: u32,
        mdp: &Mdp,
        state: &State,
        mask: &[bool],
        explore: bool,
    ) -> Result<usize, PluginError> {
        let observation = wit::Observation {
            features: mdp.observation(state),
            tuple: mdp.tuple(state).to_vec(),
            depth: state.depth as u32,
            image_size: state.image_size,
        };
        let plugin = &self.bindings;
        let index = self.sandbox.call("act", |s| {
            on_agent!(plugin, |agent| agent.call_act(s, env, &observation, mask, explore))
        })? as usize;
        match mask.get(index) {
            Some(true) => Ok(index),
            Some(false) => Err(self.sandbox.error(
                "act",
                format!("returned action {index}, which the mask forbids in this state; the action was not executed"),
                false,
            )),
            None => Err(self.sandbox.error(
                "act",
                format!(
                    "returned action {index}, but there are only {} actions; the action was not executed",
                    mask.len()
                ),
                false,
            )),
        }
    }

    pub fn observe(&mut self, env: u32, reward: f64, done: bool) -> Result<(), PluginError> {
        let plugin = &self.bindings;
        self.sandbox.call("observe", |s| {
            on_agent!(plugin, |agent| agent.call_observe(s, env, reward, done))
        })
    }

    pub fn save(&mut self) -> Result<Vec<u8>, PluginError> {
        let plugin = &self.bindings;
        self.sandbox
            .call("save", |s| on_agent!(plugin, |agent| agent.call_save(s)))
    }

    pub fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let plugin = &self.bindings;
        self.sandbox
            .call("load", |s| on_agent!(plugin, |agent| agent.call_load(s, state)))
    }

    pub fn metrics(&mut self) -> Result<Vec<(String, f64)>, PluginError> {
        let plugin = &self.bindings;
        let metrics = self.sandbox.call("metrics", |s| {
            on_agent!(plugin, |agent| agent.call_metrics(&mut *s)).map(Ok)
        })?;
        Ok(metrics.into_iter().map(|m| (plugin_text(&m.name), m.value)).collect())
    }
}
