//! Plain Rust types for plugin authors, converted from and to the WIT-generated ones.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layer {
    Conv { filters: u32, kernel: u32 },
    Pool { size: u32, stride: u32 },
    Fc { units: u32 },
}

/// One entry of the flat action list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActionSpec {
    pub layer: Layer,
    pub terminate: bool,
}

/// The search space: the flat action list and the observation layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub actions: Vec<ActionSpec>,
    pub observation_len: usize,
    pub tuple_field_sizes: Vec<usize>,
    pub max_depth: usize,
}

/// One environment's current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// One-hot encoding of the state tuple.
    pub features: Vec<f32>,
    /// The seed's 7-field tuple (depth, type, filter depth, filter size, pool, fc size, terminate).
    pub tuple: Vec<u32>,
    pub depth: usize,
    pub image_size: u32,
}

/// A finished child network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub accuracy: f64,
    pub params: u64,
    pub depth: usize,
    pub architecture: String,
    pub layers: Vec<Layer>,
    pub train_seconds: f64,
    pub failure: Option<String>,
    /// Epochs the child was trained for: `epochs`, unless an assessor stopped it.
    pub epochs_trained: usize,
    /// Epochs of the training protocol.
    pub epochs: usize,
    /// An assessor stopped the child early: `accuracy` is the last one measured.
    pub stopped: bool,
    /// Multiply-adds, activation memory and inference latency (contract 0.3).
    pub cost: Cost,
}

/// What running a child costs, beside its parameter count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Multiply-adds of one forward pass for one input.
    pub mult_adds: u64,
    /// Peak activation memory of one input's forward pass, in bytes.
    pub activation_bytes: u64,
    /// Inference latency, when the run measures it (`[cost]`).
    pub latency: Option<Latency>,
}

/// A child's inference latency: measured on the evaluation device, or summed from a latency table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median milliseconds of one forward pass of `batch` inputs.
    pub median_ms: f64,
    /// 90th percentile of the timed runs.
    pub p90_ms: f64,
    pub batch: u32,
    /// `cpu`, `cuda`, or `table:NAME` for a latency table.
    pub device: String,
}

/// A child's learning curve: accuracy on the evaluation split after each epoch so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningCurve {
    /// `accuracy[i]` is the accuracy after epoch i + 1.
    pub accuracy: Vec<f64>,
    /// Epochs of the training protocol (the full curve's length).
    pub epochs: usize,
    pub architecture: String,
    pub layers: Vec<Layer>,
    pub params: u64,
}

impl LearningCurve {
    /// Epochs trained so far.
    pub fn epochs_trained(&self) -> usize {
        self.accuracy.len()
    }

    /// The best accuracy so far (0 for an empty curve).
    pub fn best(&self) -> f64 {
        self.accuracy.iter().copied().fold(0.0, f64::max)
    }

    /// Accuracy after `epoch` (1-based), if the curve reached it.
    pub fn at_epoch(&self, epoch: usize) -> Option<f64> {
        epoch.checked_sub(1).and_then(|i| self.accuracy.get(i)).copied()
    }
}

/// An assessor's answer after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Train the next epoch.
    Continue,
    /// Stop now; the reward is shaped from the last accuracy.
    Stop,
}

/// A seeded, serializable random generator (ChaCha8): save it with the agent's state so a resumed
/// run draws the same numbers as an uninterrupted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRng(ChaCha8Rng);

impl PluginRng {
    pub fn new(seed: u64) -> PluginRng {
        PluginRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform float in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// A uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    /// A uniformly chosen index among those where `mask` is true; `None` if none is.
    pub fn uniform_valid(&mut self, mask: &[bool]) -> Option<usize> {
        let count = mask.iter().filter(|&&v| v).count();
        if count == 0 {
            return None;
        }
        let pick = self.below(count);
        mask.iter().enumerate().filter(|(_, &v)| v).nth(pick).map(|(i, _)| i)
    }

    /// Samples an index from unnormalised probabilities `weights` (≥ 0); `None` if they sum to 0.
    pub fn weighted(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 || !total.is_finite() {
            return None;
        }
        let mut target = self.uniform() * total;
        for (i, &w) in weights.iter().enumerate() {
            if target < w {
                return Some(i);
            }
            target -= w;
        }
        weights.iter().rposition(|&w| w > 0.0)
    }

    /// A standard normal sample (mean 0, std 1).
    pub fn normal(&mut self) -> f64 {
        rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut self.0)
    }

    /// Shuffles `items` uniformly in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        rand::seq::SliceRandom::shuffle(items, &mut self.0);
    }

    /// A generator seeded from the host's randomness for this episode. The host reseeds what a
    /// plugin reads from it at every episode, so a stateless plugin that draws from it replays
    /// exactly on resume and needs no `save`.
    pub fn from_host() -> PluginRng {
        PluginRng(ChaCha8Rng::from_os_rng())
    }

    /// The underlying generator, for `rand` APIs.
    pub fn inner(&mut self) -> &mut ChaCha8Rng {
        &mut self.0
    }
}

/// Index of the largest `values[i]` with `mask[i]`; ties go to the lowest index.
pub fn argmax_valid(values: &[f64], mask: &[bool]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, (&v, &ok)) in values.iter().zip(mask).enumerate() {
        if ok && best.is_none_or(|b| v > values[b]) {
            best = Some(i);
        }
    }
    best
}

// Conversions from the WIT-generated types (one set: the worlds share `nas:plugin/types`).
impl From<crate::agent_bindings::nas::plugin::types::Layer> for Layer {
    fn from(layer: crate::agent_bindings::nas::plugin::types::Layer) -> Layer {
        use crate::agent_bindings::nas::plugin::types as w;
        match layer {
            w::Layer::Conv(c) => Layer::Conv {
                filters: c.filters,
                kernel: c.kernel,
            },
            w::Layer::Pool(p) => Layer::Pool {
                size: p.size,
                stride: p.stride,
            },
            w::Layer::Fc(units) => Layer::Fc { units },
        }
    }
}

impl From<crate::agent_bindings::nas::plugin::types::Space> for Space {
    fn from(s: crate::agent_bindings::nas::plugin::types::Space) -> Space {
        Space {
            actions: s
                .actions
                .into_iter()
                .map(|a| ActionSpec {
                    layer: a.layer.into(),
                    terminate: a.terminate,
                })
                .collect(),
            observation_len: s.observation_len as usize,
            tuple_field_sizes: s.tuple_field_sizes.into_iter().map(|x| x as usize).collect(),
            max_depth: s.max_depth as usize,
        }
    }
}

impl From<crate::agent_bindings::nas::plugin::types::Observation> for Observation {
    fn from(o: crate::agent_bindings::nas::plugin::types::Observation) -> Observation {
        Observation {
            features: o.features,
            tuple: o.tuple,
            depth: o.depth as usize,
            image_size: o.image_size,
        }
    }
}

impl From<crate::agent_bindings::nas::plugin::types::Evaluation> for Evaluation {
    fn from(e: crate::agent_bindings::nas::plugin::types::Evaluation) -> Evaluation {
        Evaluation {
            accuracy: e.accuracy,
            params: e.params,
            depth: e.depth as usize,
            architecture: e.architecture,
            layers: e.layers.into_iter().map(Layer::from).collect(),
            train_seconds: e.train_seconds,
            failure: e.failure,
            epochs_trained: e.epochs_trained as usize,
            epochs: e.epochs as usize,
            stopped: e.stopped,
            cost: Cost {
                mult_adds: e.cost.mult_adds,
                activation_bytes: e.cost.activation_bytes,
                latency: e.cost.latency.map(|l| Latency {
                    median_ms: l.median_ms,
                    p90_ms: l.p90_ms,
                    batch: l.batch,
                    device: l.device,
                }),
            },
        }
    }
}

impl From<crate::agent_bindings::nas::plugin::types::LearningCurve> for LearningCurve {
    fn from(c: crate::agent_bindings::nas::plugin::types::LearningCurve) -> LearningCurve {
        LearningCurve {
            accuracy: c.accuracy,
            epochs: c.epochs as usize,
            architecture: c.architecture,
            layers: c.layers.into_iter().map(Layer::from).collect(),
            params: c.params,
        }
    }
}

impl From<Verdict> for crate::agent_bindings::nas::plugin::types::Verdict {
    fn from(v: Verdict) -> Self {
        use crate::agent_bindings::nas::plugin::types as w;
        match v {
            Verdict::Continue => w::Verdict::Continue,
            Verdict::Stop => w::Verdict::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_valid_only_picks_valid_indices() {
        let mut rng = PluginRng::new(3);
        let mask = [false, true, false, true, false];
        for _ in 0..200 {
            let i = rng.uniform_valid(&mask).unwrap();
            assert!(mask[i]);
        }
        assert_eq!(rng.uniform_valid(&[false, false]), None);
    }

    #[test]
    fn rng_state_round_trips_through_bytes() {
        let mut a = PluginRng::new(9);
        a.uniform();
        let mut b: PluginRng = crate::from_bytes(&crate::to_bytes(&a).unwrap()).unwrap();
        assert_eq!(a.below(1000), b.below(1000));
    }

    #[test]
    fn learning_curve_helpers() {
        let curve = LearningCurve {
            accuracy: vec![0.5, 0.7, 0.6],
            epochs: 5,
            architecture: "fc(64)".into(),
            layers: vec![Layer::Fc { units: 64 }],
            params: 10,
        };
        assert_eq!(curve.epochs_trained(), 3);
        assert_eq!(curve.best(), 0.7);
        assert_eq!(curve.at_epoch(1), Some(0.5));
        assert_eq!(curve.at_epoch(0), None);
        assert_eq!(curve.at_epoch(4), None);
    }

    #[test]
    fn argmax_respects_mask() {
        assert_eq!(argmax_valid(&[5.0, 1.0, 3.0], &[false, true, true]), Some(2));
        assert_eq!(argmax_valid(&[1.0], &[false]), None);
    }
}
