//! Reward = the child's validation accuracy; a failed child gets `failure_reward`, and a child an
//! assessor stopped early loses `stopped_penalty` (0 by default: its last accuracy counts as is).
use nas_plugin_sdk::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    /// Reward of a child that failed to train (diverged, out of memory…).
    failure_reward: f64,
    /// Subtracted from the accuracy of a child an assessor stopped early, so an agent can be
    /// taught to avoid designs that are stopped (their last accuracy is an early, low reading).
    stopped_penalty: f64,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Hyperparameters {
            failure_reward: 0.0,
            stopped_penalty: 0.0,
        }
    }
}

struct Accuracy {
    hp: Hyperparameters,
}

impl RewardShaper for Accuracy {
    const NAME: &'static str = "accuracy";
    const DESCRIPTION: &'static str = "Reward = validation accuracy (failed children get failure_reward, default 0)";

    type Config = Hyperparameters;

    fn init(hp: Hyperparameters) -> Result<Self, String> {
        Ok(Accuracy { hp })
    }

    fn shape(&mut self, evaluation: &Evaluation) -> Result<f64, String> {
        Ok(match evaluation.failure {
            Some(_) => self.hp.failure_reward,
            None if evaluation.stopped => evaluation.accuracy - self.hp.stopped_penalty,
            None => evaluation.accuracy,
        })
    }
}

register_reward!(Accuracy);
