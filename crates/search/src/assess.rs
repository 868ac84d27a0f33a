//! Early stopping: an assessor plugin watches each child's learning curve in training and may stop
//! it. [`Watch`] is the search's side of that: it turns the plugin into the per-epoch judge the
//! training loop asks, keeps the plugin's first failure for the search to report, and tells the
//! assessor about every child that trained to the end, once per evaluation.

use std::collections::HashSet;

use nas_core::arch::Architecture;
use nas_core::record::Outcome;
use nas_plugin_runtime::{AssessorPlugin, CurveInput, PluginError, Verdict};

/// An assessor at work for one run.
pub struct Watch {
    pub plugin: AssessorPlugin,
    /// Epochs of the run's training protocol.
    epochs: u32,
    /// Input shape and classes, for the parameter count the assessor is told.
    input: (usize, usize, usize),
    classes: usize,
    /// The plugin's first failure in a judge: training stops and the search reports it.
    failure: Option<PluginError>,
    /// Evaluations whose whole curve the assessor was told.
    told: HashSet<i64>,
}

impl Watch {
    pub fn new(plugin: AssessorPlugin, epochs: usize, input: (usize, usize, usize), classes: usize) -> Watch {
        Watch {
            plugin,
            epochs: epochs as u32,
            input,
            classes,
            failure: None,
            told: HashSet::new(),
        }
    }

    /// The judge of `arch`'s training: asks the assessor after every epoch. A failing assessor
    /// stops the training; [`Watch::take_failure`] then has the reason.
    pub fn judge<'a>(&'a mut self, arch: &'a Architecture) -> impl FnMut(&[f64]) -> bool + 'a {
        let params = arch.param_count(self.input, self.classes);
        move |accuracy: &[f64]| {
            if self.failure.is_some() {
                return true;
            }
            let curve = CurveInput {
                architecture: arch,
                params,
                accuracy,
                epochs: self.epochs,
            };
            match self.plugin.assess(&curve) {
                Ok(Verdict::Continue) => false,
                Ok(Verdict::Stop) => true,
                Err(e) => {
                    self.failure = Some(e);
                    true
                }
            }
        }
    }

    /// The assessor's failure during the last training, if any.
    pub fn take_failure(&mut self) -> Option<PluginError> {
        self.failure.take()
    }

    /// Tells the assessor the whole curve of evaluation `evaluation_id` if it has one that ran to
    /// the end (not stopped, not failed) and the assessor was not told it already.
    pub fn completed(&mut self, evaluation_id: i64, arch: &Architecture, outcome: &Outcome) -> Result<(), PluginError> {
        let whole = outcome.curve.is_measured() && !outcome.curve.stopped && outcome.failure.is_none();
        if !whole || !self.told.insert(evaluation_id) {
            return Ok(());
        }
        self.plugin.completed(&CurveInput {
            architecture: arch,
            params: outcome.params,
            accuracy: &outcome.curve.accuracy,
            epochs: self.epochs,
        })
    }
}
