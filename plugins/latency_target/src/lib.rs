//! MnasNet's latency-aware reward (Tan et al. 2019, eq. 2): reward = ACC(m) · [LAT(m) / T]^w with
//! w = alpha when LAT(m) ≤ T and beta otherwise, T the target latency in milliseconds.
//!
//! - Soft constraint (the default, MnasNet's): alpha = beta = −0.07. A child at half the target
//!   earns 0.5^−0.07 = 1.050 × its accuracy, one at twice the target 2^−0.07 = 0.953 ×: MnasNet
//!   chose −0.07 so that doubling latency must buy about 5 % more accuracy.
//! - Hard constraint (`hard = true`): alpha = 0, beta = −1, so a child within the target earns its
//!   accuracy and one over it is penalised sharply (MnasNet's §3 alternative).
//!
//! The latency is the one the host measured (or summed from a latency table); a run without
//! `[cost] measure` gives none, and shaping then fails with an error saying so rather than
//! rewarding as if latency were free.
use nas_plugin_sdk::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    /// The target latency T in milliseconds (MnasNet: 75 ms on a Pixel 1; MNIST children on one
    /// CPU core take well under 1 ms).
    target_ms: f64,
    /// The exponent w below the target (soft: −0.07).
    alpha: f64,
    /// The exponent w above the target (soft: −0.07).
    beta: f64,
    /// MnasNet's hard constraint: alpha = 0, beta = −1 (overrides alpha and beta).
    hard: bool,
    /// The reward of a child that failed (diverged, ran out of memory).
    failure_reward: f64,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Hyperparameters {
            target_ms: 1.0,
            alpha: -0.07,
            beta: -0.07,
            hard: false,
            failure_reward: 0.0,
        }
    }
}

struct LatencyTarget {
    hp: Hyperparameters,
}

/// accuracy · (latency / target)^w, w by which side of the target the latency lies.
fn reward(hp: &Hyperparameters, accuracy: f64, latency_ms: f64) -> f64 {
    let (alpha, beta) = if hp.hard { (0.0, -1.0) } else { (hp.alpha, hp.beta) };
    let ratio = latency_ms / hp.target_ms;
    let w = if latency_ms <= hp.target_ms { alpha } else { beta };
    accuracy * ratio.powf(w)
}

impl RewardShaper for LatencyTarget {
    const NAME: &'static str = "latency_target";
    const DESCRIPTION: &'static str =
        "MnasNet's latency constraint: accuracy * (latency / target_ms)^w (soft w = -0.07; hard: 0 within, -1 over)";

    type Config = Hyperparameters;

    fn init(hp: Hyperparameters) -> Result<Self, String> {
        if !(hp.target_ms > 0.0 && hp.target_ms.is_finite()) {
            return Err(format!(
                "target_ms must be a positive number of milliseconds (got {})",
                hp.target_ms
            ));
        }
        if hp.alpha > 0.0 || hp.beta > 0.0 {
            return Err(format!(
                "alpha and beta must be <= 0 (got alpha {}, beta {}): a slower network may not earn more",
                hp.alpha, hp.beta
            ));
        }
        Ok(LatencyTarget { hp })
    }

    fn shape(&mut self, evaluation: &Evaluation) -> Result<f64, String> {
        if evaluation.failure.is_some() {
            return Ok(self.hp.failure_reward);
        }
        let latency = evaluation.cost.latency.as_ref().ok_or_else(|| {
            "the host measured no latency for this child: set `measure = true` or a `latency_table` in the run's [cost] section".to_string()
        })?;
        // A latency of 0 (a table of zeros) would make the soft reward infinite.
        Ok(reward(&self.hp, evaluation.accuracy, latency.median_ms.max(1e-6)))
    }
}

register_reward!(LatencyTarget);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_constraint_by_hand() {
        let hp = Hyperparameters {
            target_ms: 2.0,
            ..Hyperparameters::default()
        };
        // At the target: the accuracy.
        assert_eq!(reward(&hp, 0.9, 2.0), 0.9);
        // Half the target: 0.9 · 0.5^−0.07 = 0.9 · 1.049717 = 0.944745.
        assert!(
            (reward(&hp, 0.9, 1.0) - 0.944_745_0).abs() < 1e-6,
            "{}",
            reward(&hp, 0.9, 1.0)
        );
        // Twice the target: 0.9 · 2^−0.07 = 0.9 · 0.952638 = 0.857374.
        assert!(
            (reward(&hp, 0.9, 4.0) - 0.857_374_2).abs() < 1e-6,
            "{}",
            reward(&hp, 0.9, 4.0)
        );
    }

    #[test]
    fn hard_constraint_by_hand() {
        let hp = Hyperparameters {
            target_ms: 2.0,
            hard: true,
            ..Hyperparameters::default()
        };
        // Within the target: the accuracy, however fast.
        assert_eq!(reward(&hp, 0.9, 0.5), 0.9);
        assert_eq!(reward(&hp, 0.9, 2.0), 0.9);
        // Over it: accuracy · target / latency.
        assert!((reward(&hp, 0.9, 3.0) - 0.6).abs() < 1e-12);
    }
}
