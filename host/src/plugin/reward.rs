//! The host's handle on a reward-shaper plugin.

use super::bindings::{self, wit, wit_layer};
use super::runtime::{LoadedPlugin, Runtime, Sandbox, SandboxLimits};
use super::{PluginError, PluginInfo, PluginKind};
use crate::arch::Architecture;

/// What the reward shaper is told about a finished child.
#[derive(Debug, Clone)]
pub struct EvaluationInput<'a> {
    pub architecture: &'a Architecture,
    pub accuracy: f64,
    pub params: u64,
    pub train_seconds: f64,
    pub failure: Option<&'a str>,
}

/// A running reward-shaper plugin.
pub struct RewardPlugin {
    sandbox: Sandbox,
    plugin: bindings::reward::RewardPlugin,
    pub sha256: String,
}

impl RewardPlugin {
    pub fn instantiate(
        runtime: &Runtime,
        loaded: &LoadedPlugin,
        limits: SandboxLimits,
        seed: u64,
    ) -> anyhow::Result<RewardPlugin> {
        let (sandbox, plugin) = runtime.sandboxed(
            loaded,
            PluginKind::Reward,
            limits,
            seed,
            |store, component, linker| bindings::reward::RewardPlugin::instantiate(store, component, linker),
            |p, s| p.nas_plugin_reward().call_describe(s),
        )?;
        Ok(RewardPlugin {
            sandbox,
            plugin,
            sha256: loaded.sha256.clone(),
        })
    }

    pub fn info(&self) -> &PluginInfo {
        &self.sandbox.info
    }

    /// Restarts the plugin's WASI random stream (the host does this at every episode).
    pub fn reseed(&mut self, seed: u64) {
        self.sandbox.reseed(seed);
    }

    pub fn init(&mut self, config_json: &str) -> Result<(), PluginError> {
        let plugin = &self.plugin;
        self.sandbox
            .call("init", |s| plugin.nas_plugin_reward().call_init(s, config_json))
    }

    /// The reward for a finished child; a non-finite reward is refused.
    pub fn shape(&mut self, input: &EvaluationInput<'_>) -> Result<f64, PluginError> {
        let evaluation = wit::Evaluation {
            accuracy: input.accuracy,
            params: input.params,
            depth: input.architecture.depth() as u32,
            architecture: input.architecture.to_string(),
            layers: input.architecture.layers.iter().map(wit_layer).collect(),
            train_seconds: input.train_seconds,
            failure: input.failure.map(str::to_string),
        };
        let plugin = &self.plugin;
        let reward = self
            .sandbox
            .call("shape", |s| plugin.nas_plugin_reward().call_shape(s, &evaluation))?;
        if !reward.is_finite() {
            return Err(self
                .sandbox
                .error("shape", format!("returned a non-finite reward ({reward})"), false));
        }
        Ok(reward)
    }
}
