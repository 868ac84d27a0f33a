//! The host's handle on a reward-shaper plugin.

use super::bindings::{self, wit, wit_layer};
use super::handle::{PluginHandle, RewardBindings};
use super::PluginError;
use nas_core::arch::Architecture;

/// What the reward shaper is told about a finished child.
#[derive(Debug, Clone)]
pub struct EvaluationInput<'a> {
    pub architecture: &'a Architecture,
    pub accuracy: f64,
    pub params: u64,
    pub train_seconds: f64,
    pub failure: Option<&'a str>,
    /// Epochs the child was trained for (`epochs` unless an assessor stopped it).
    pub epochs_trained: u32,
    /// Epochs of the training protocol.
    pub epochs: u32,
    /// An assessor stopped the child; `accuracy` is the last one measured.
    pub stopped: bool,
    /// Multiply-adds, activation memory and latency (not told to 0.1 and 0.2 shapers).
    pub cost: &'a nas_core::record::Cost,
}

/// A running reward-shaper plugin.
pub type RewardPlugin = PluginHandle<RewardBindings>;

impl RewardPlugin {
    pub fn init(&mut self, config_json: &str) -> Result<(), PluginError> {
        let plugin = &self.bindings;
        self.sandbox.call("init", |s| match plugin {
            RewardBindings::Current(b) => b.nas_plugin_reward().call_init(s, config_json),
            RewardBindings::V0_2(b) => b.nas_plugin_reward().call_init(s, config_json),
            RewardBindings::V0_1(b) => b.nas_plugin_reward().call_init(s, config_json),
        })
    }

    /// The reward for a finished child; a non-finite reward is refused. A 0.1 shaper is told the
    /// same child without the epochs and the stopped flag, a 0.2 one without the cost: what
    /// their contracts lack.
    pub fn shape(&mut self, input: &EvaluationInput<'_>) -> Result<f64, PluginError> {
        let evaluation = wit::Evaluation {
            accuracy: input.accuracy,
            params: input.params,
            depth: input.architecture.depth() as u32,
            architecture: input.architecture.to_string(),
            layers: input.architecture.layers.iter().map(wit_layer).collect(),
            train_seconds: input.train_seconds,
            failure: input.failure.map(str::to_string),
            epochs_trained: input.epochs_trained,
            epochs: input.epochs,
            stopped: input.stopped,
            cost: wit::Cost {
                mult_adds: input.cost.mult_adds,
                activation_bytes: input.cost.activation_bytes,
                latency: input.cost.latency.as_ref().map(|l| wit::Latency {
                    median_ms: l.median_ms,
                    p90_ms: l.p90_ms,
                    batch: l.batch as u32,
                    device: l.device.clone(),
                }),
            },
        };
        let plugin = &self.bindings;
        let reward = self.sandbox.call("shape", |s| match plugin {
            RewardBindings::Current(b) => b.nas_plugin_reward().call_shape(s, &evaluation),
            RewardBindings::V0_2(b) => b
                .nas_plugin_reward()
                .call_shape(s, &bindings::v0_2::evaluation(&evaluation)),
            RewardBindings::V0_1(b) => b
                .nas_plugin_reward()
                .call_shape(s, &bindings::v0_1::evaluation(&evaluation)),
        })?;
        if !reward.is_finite() {
            return Err(self
                .sandbox
                .error("shape", format!("returned a non-finite reward ({reward})"), false));
        }
        Ok(reward)
    }
}
