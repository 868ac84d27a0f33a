//! Reward = accuracy − β(δ·x + ln x) for x trainable parameters (the seed's size penalty), or
//! with `measure = "mult_adds"` the child's multiply-adds (contract 0.3), a closer proxy for the
//! time a network takes than its size.
//!
//! Default β = 0.01, chosen so the penalty moves on the scale of accuracy differences between
//! architectures (a few points): with δ = 1e-8 the penalty is
//!
//! | parameters x | δ·x + ln x | penalty (β = 0.01) |
//! |-------------:|-----------:|-------------------:|
//! | 1k           | 6.908      | 0.0691             |
//! | 10k          | 9.210      | 0.0921             |
//! | 100k         | 11.514     | 0.1151             |
//! | 1M           | 13.826     | 0.1383             |
//!
//! so growing a network tenfold costs ≈ 0.023 reward: it must buy more than 2.3 points of accuracy.
use nas_plugin_sdk::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    beta: f64,
    delta: f64,
    failure_reward: f64,
    /// What x counts: trainable parameters (the seed's) or multiply-adds.
    measure: Measure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Measure {
    Params,
    MultAdds,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Hyperparameters {
            beta: 0.01,
            delta: 1e-8,
            failure_reward: 0.0,
            measure: Measure::Params,
        }
    }
}

struct SizePenalty {
    hp: Hyperparameters,
}

fn penalty(hp: &Hyperparameters, params: u64) -> f64 {
    let x = params.max(1) as f64;
    hp.beta * (hp.delta * x + x.ln())
}

impl RewardShaper for SizePenalty {
    const NAME: &'static str = "size_penalty";
    const DESCRIPTION: &'static str =
        "Reward = accuracy - beta*(delta*x + ln x), x = trainable parameters or multiply-adds (beta 0.01, delta 1e-8)";

    type Config = Hyperparameters;

    fn init(hp: Hyperparameters) -> Result<Self, String> {
        if !(hp.beta >= 0.0 && hp.delta >= 0.0) {
            return Err(format!(
                "beta and delta must be non-negative (got beta {}, delta {})",
                hp.beta, hp.delta
            ));
        }
        Ok(SizePenalty { hp })
    }

    fn shape(&mut self, evaluation: &Evaluation) -> Result<f64, String> {
        Ok(match evaluation.failure {
            Some(_) => self.hp.failure_reward,
            None => {
                let x = match self.hp.measure {
                    Measure::Params => evaluation.params,
                    Measure::MultAdds => evaluation.cost.mult_adds,
                };
                evaluation.accuracy - penalty(&self.hp, x)
            }
        })
    }
}

register_reward!(SizePenalty);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_table_in_the_docs() {
        let hp = Hyperparameters::default();
        for (x, expected) in [
            (1_000u64, 0.0691),
            (10_000, 0.0921),
            (100_000, 0.1151),
            (1_000_000, 0.1383),
        ] {
            assert!((penalty(&hp, x) - expected).abs() < 1e-4, "{x}: {}", penalty(&hp, x));
        }
    }
}
