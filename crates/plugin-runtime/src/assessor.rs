//! The host's handle on an assessor plugin.

use super::bindings::{wit, wit_layer};
use super::handle::{on_assessor, AssessorBindings, PluginHandle};
use super::PluginError;
use nas_core::arch::Architecture;

/// A child's learning curve as the assessor is told it.
#[derive(Debug, Clone)]
pub struct CurveInput<'a> {
    pub architecture: &'a Architecture,
    pub params: u64,
    /// Accuracy after each epoch so far.
    pub accuracy: &'a [f64],
    /// Epochs of the training protocol.
    pub epochs: u32,
}

impl CurveInput<'_> {
    fn to_wit(&self) -> wit::LearningCurve {
        wit::LearningCurve {
            accuracy: self.accuracy.to_vec(),
            epochs: self.epochs,
            architecture: self.architecture.to_string(),
            layers: self.architecture.layers.iter().map(wit_layer).collect(),
            params: self.params,
        }
    }
}

/// An assessor's answer after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Stop,
}

/// A running assessor plugin.
pub type AssessorPlugin = PluginHandle<AssessorBindings>;

impl AssessorPlugin {
    pub fn init(&mut self, config_json: &str) -> Result<(), PluginError> {
        let plugin = &self.bindings;
        self.sandbox
            .call("init", |s| on_assessor!(plugin, |a| a.call_init(s, config_json)))
    }

    /// Continue or stop a child after an epoch.
    pub fn assess(&mut self, curve: &CurveInput<'_>) -> Result<Verdict, PluginError> {
        let curve = curve.to_wit();
        let plugin = &self.bindings;
        let verdict = self
            .sandbox
            .call("assess", |s| on_assessor!(plugin, |a| a.call_assess(s, &curve)))?;
        Ok(match verdict {
            wit::Verdict::Continue => Verdict::Continue,
            wit::Verdict::Stop => Verdict::Stop,
        })
    }

    /// Tells the assessor the whole curve of a child that trained to the end.
    pub fn completed(&mut self, curve: &CurveInput<'_>) -> Result<(), PluginError> {
        let curve = curve.to_wit();
        let plugin = &self.bindings;
        self.sandbox
            .call("completed", |s| on_assessor!(plugin, |a| a.call_completed(s, &curve)))
    }
}
