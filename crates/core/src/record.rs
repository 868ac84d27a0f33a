//! The records every layer shares: what evaluating a child gives (an [`Outcome`] with its learning
//! [`Curve`]), an episode of a run and a sample of a frozen policy as the store keeps them, and
//! the summaries the search and the outputs both draw from them.

use serde::{Deserialize, Serialize};

use crate::stats::mean_std;

/// The outcome of evaluating one architecture: what the architecture cache stores, episodes
/// record and the reward shaper is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Accuracy on the evaluation split in [0, 1] (the synthetic score with that evaluator); 0
    /// when the child failed.
    pub accuracy: f64,
    pub params: u64,
    /// Wall time of training and evaluation (0 for the synthetic evaluator).
    pub seconds: f64,
    /// Why the child failed (diverged, out of memory…); `None` on success.
    pub failure: Option<String>,
    /// The failure says nothing about the architecture (out of memory, a device or libtorch
    /// error): recorded on the episode but never served from the cache.
    pub transient: bool,
    /// The learning curve, when an assessor watched (empty otherwise). A stopped child is
    /// recorded on its episode but never served from the cache.
    #[serde(default)]
    pub curve: Curve,
    /// The accuracy is a surrogate model's prediction, not a measurement (the table evaluator,
    /// for an architecture its table lacks): recorded with the evaluation and shown as such.
    #[serde(default)]
    pub predicted: bool,
    /// What running the child costs (multiply-adds, activation memory, latency), when the run
    /// measured it (`[cost]`); `None` for evaluations stored before cost was measured.
    #[serde(default)]
    pub cost: Option<Cost>,
}

/// What running a child network costs, beside its parameter count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Multiply-adds of one forward pass for one input.
    pub mult_adds: u64,
    /// Peak activation memory of one input's forward pass in bytes (float32): the largest input
    /// plus output of any layer, both alive while it runs.
    pub activation_bytes: u64,
    /// Inference latency, when measured (or summed from a latency table).
    #[serde(default)]
    pub latency: Option<Latency>,
}

/// A child's inference latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Where the figure comes from: the evaluation device (`cpu`, `cuda`), or `table:NAME` for a
    /// per-layer latency table measured on the deployment target.
    pub device: String,
    /// Inputs per forward pass.
    pub batch: usize,
    /// Timed runs (after warm-up); 0 for a table's sum.
    pub runs: usize,
    /// libtorch threads the runs used (0: unknown, or a table's sum).
    #[serde(default)]
    pub threads: usize,
    /// Median milliseconds per forward pass of `batch` inputs.
    pub median_ms: f64,
    /// 90th percentile (p90 ≥ median): the spread on a shared machine.
    pub p90_ms: f64,
    /// Fastest timed run.
    pub min_ms: f64,
    /// Inputs per second at the throughput batch (`[cost] throughput_batch`), when measured.
    #[serde(default)]
    pub throughput: Option<Throughput>,
    /// Wall time the measurement took (building the network, warm-up and timed runs): what
    /// measuring adds to the child's evaluation (BENCHMARKS.md compares it with training).
    #[serde(default)]
    pub seconds: f64,
}

/// Inference throughput at a larger batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub batch: usize,
    /// Median milliseconds per forward pass of `batch` inputs.
    pub median_ms: f64,
    /// Inputs per second at that median.
    pub per_second: f64,
}

impl Outcome {
    /// Epochs trained: the protocol's `epochs` unless an assessor stopped the child.
    pub fn epochs_trained(&self, epochs: usize) -> usize {
        if self.curve.stopped {
            self.curve.accuracy.len()
        } else {
            epochs
        }
    }
}

/// What an assessor's watch leaves: the accuracy after each epoch and whether training stopped
/// early. Empty (the default) when nobody watched: accuracy was then measured once, at the end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Accuracy on the evaluation split after each epoch trained.
    pub accuracy: Vec<f64>,
    /// The assessor stopped training after `accuracy.len()` epochs.
    pub stopped: bool,
    /// Seconds spent measuring accuracy after epochs other than the last one trained: what
    /// watching cost (the last measurement is the reward's, made anyway).
    pub measure_seconds: f64,
}

impl Curve {
    /// Whether a curve was measured.
    pub fn is_measured(&self) -> bool {
        !self.accuracy.is_empty()
    }
}

/// One committed episode of a run, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    pub index: usize,
    pub env: u32,
    pub architecture: String,
    pub reward: f64,
    pub accuracy: f64,
    pub params: u64,
    pub depth: usize,
    pub cache_hit: bool,
    /// Why the child failed, if it did (a transient failure is recorded here but not cached).
    #[serde(default)]
    pub failure: Option<String>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// The position of this episode's reward among the rewards the agent was told (0-based). The
    /// episode index is the order of design; with the `async` schedule, rewards arrive in the
    /// order children finish.
    #[serde(default)]
    pub reported: usize,
    /// The run's assessor stopped its child early: `accuracy` is the last one measured, not the
    /// full protocol's.
    #[serde(default)]
    pub stopped: bool,
}

/// One architecture sampled from a frozen policy by `nas-host eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSampleRow {
    pub architecture: String,
    pub accuracy: f64,
    pub params: u64,
    pub depth: usize,
    pub evaluation_id: i64,
    pub cache_hit: bool,
    /// The training seed of this sample (`None`: the run's own, through the cache).
    #[serde(default)]
    pub train_seed: Option<u64>,
    #[serde(default)]
    pub failure: Option<String>,
}

/// The `count` best-rewarded episodes with distinct architectures, best first (an
/// architecture's best episode represents it; ties keep episode order).
pub fn top_distinct(episodes: &[EpisodeRecord], count: usize) -> Vec<&EpisodeRecord> {
    let mut sorted: Vec<&EpisodeRecord> = episodes.iter().collect();
    sorted.sort_by(|a, b| b.reward.total_cmp(&a.reward));
    let mut top: Vec<&EpisodeRecord> = Vec::new();
    for e in sorted {
        if top.len() == count {
            break;
        }
        if !top.iter().any(|t| t.architecture == e.architecture) {
            top.push(e);
        }
    }
    top
}

/// (mean accuracy, std accuracy, mean params, mean depth) of `eval` samples.
pub fn sample_stats(samples: &[EvalSampleRow]) -> (f64, f64, f64, f64) {
    let (accuracy, std) = mean_std(&samples.iter().map(|x| x.accuracy).collect::<Vec<_>>());
    let (params, _) = mean_std(&samples.iter().map(|x| x.params as f64).collect::<Vec<_>>());
    let (depth, _) = mean_std(&samples.iter().map(|x| x.depth as f64).collect::<Vec<_>>());
    (accuracy, std, params, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_distinct_lists_each_architecture_once() {
        let episode = |index: usize, architecture: &str, reward: f64| EpisodeRecord {
            index,
            env: 0,
            architecture: architecture.into(),
            reward,
            accuracy: reward,
            params: 1,
            depth: 1,
            cache_hit: false,
            failure: None,
            metrics: Default::default(),
            reported: index,
            stopped: false,
        };
        // A and B interleave in reward order: dropping only adjacent duplicates would list A twice.
        let episodes = [
            episode(0, "A", 0.9),
            episode(1, "B", 0.8),
            episode(2, "A", 0.7),
            episode(3, "C", 0.6),
        ];
        let top: Vec<(&str, f64)> = top_distinct(&episodes, 5)
            .iter()
            .map(|e| (e.architecture.as_str(), e.reward))
            .collect();
        assert_eq!(top, vec![("A", 0.9), ("B", 0.8), ("C", 0.6)]);
        assert_eq!(top_distinct(&episodes, 2).len(), 2);
    }
}
