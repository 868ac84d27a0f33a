//! `[cost]`: measuring what each child costs to run, beside its accuracy.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[cost]`: after training, the host times each child's inference on the evaluation device
/// (warm-up, then the median and p90 of `runs` timed forward passes of `batch` inputs) and stores
/// it with the evaluation beside its multiply-adds and peak activation memory; reward shapers
/// see all of it (contract 0.3). With a `latency_table`, latency is summed from the table's
/// per-layer latencies (measured on the deployment target) instead of measured here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// Measure latency. On by default: it costs well under 2% of an MNIST-3 child's training
    /// (BENCHMARKS.md, "Latency measurement overhead").
    pub measure: bool,
    /// Inputs per timed forward pass (1: a single request's latency).
    pub batch: usize,
    /// Timed forward passes; the median and p90 are kept.
    pub runs: usize,
    /// Untimed forward passes first (allocator and kernel caches warm up).
    pub warmup: usize,
    /// A second, larger batch timed for throughput (inputs per second); 0 skips it.
    pub throughput_batch: usize,
    /// libtorch threads while timing (0: as the run trains). One by default: on a shared or
    /// oversubscribed machine a multi-threaded batch-1 pass waits for descheduled threads at
    /// every layer, which turned a 1 ms child into 36 ms here (BENCHMARKS.md).
    pub threads: usize,
    /// Per-layer latencies measured on the deployment target (`nas-host cost measure-layers`),
    /// summed per architecture in place of a measurement on this machine.
    pub latency_table: Option<PathBuf>,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            measure: true,
            batch: 1,
            runs: 30,
            warmup: 5,
            throughput_batch: 0,
            threads: 1,
            latency_table: None,
        }
    }
}

impl CostConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch >= 1, "[cost] batch must be at least 1 (got {})", self.batch);
        anyhow::ensure!(
            self.runs >= 1,
            "[cost] runs must be at least 1 (got {}); 30 gives a stable median",
            self.runs
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_cost_key_is_named() {
        let e = toml::from_str::<crate::RunConfig>("[cost]\nrun = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `run`") && e.contains("runs"), "{e}");
        let config: crate::RunConfig = toml::from_str("[cost]\nruns = 5\nlatency_table = \"t.json\"\n").unwrap();
        assert_eq!(config.cost.runs, 5);
        assert_eq!(config.cost.batch, 1);
        assert!(CostConfig {
            runs: 0,
            ..CostConfig::default()
        }
        .validate()
        .is_err());
    }
}
