//! Turns an architecture into an evaluation: by training it (libtorch) or with the synthetic
//! evaluator, a cheap, deterministic stand-in with a known optimum for developing and testing agents.

use std::path::Path;

use crate::train;
use crate::train::{EpochJudge, TensorData, TrainOutcome};
use nas_config::DeviceChoice;
use nas_config::RunConfig;
use nas_config::{EvaluatorKind, TrainConfig};
use nas_core::arch::{Architecture, Layer};
use nas_core::mdp::Mdp;
use nas_core::record::Curve;
use nas_core::record::Outcome;

/// The synthetic score, a fixed function of the layers with its optimum at `target`:
///
/// score = 0.1 + 0.9 · Σ_{i < min(n, m)} sim(layer_i, target_i) / max(n, m)
///
/// where n and m are the depths of the architecture and the target, and sim is 1 for the same
/// layer, 0.5 for the same kind of layer (conv/pool/fc) with other sizes, and 0 otherwise. The score
/// lies in [0.1, 1.0] and is 1.0 exactly for the target.
pub fn synthetic_score(arch: &Architecture, target: &Architecture) -> f64 {
    let same_kind = |a: &Layer, b: &Layer| std::mem::discriminant(a) == std::mem::discriminant(b);
    let matched: f64 = arch
        .layers
        .iter()
        .zip(&target.layers)
        .map(|(a, b)| {
            if a == b {
                1.0
            } else if same_kind(a, b) {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    0.1 + 0.9 * matched / arch.depth().max(target.depth()).max(1) as f64
}

impl From<TrainOutcome> for Outcome {
    fn from(t: TrainOutcome) -> Outcome {
        Outcome {
            accuracy: t.accuracy,
            params: t.params,
            seconds: t.seconds,
            failure: t.failure,
            transient: t.transient,
            curve: t.curve,
            predicted: false,
            cost: None,
        }
    }
}

pub enum Evaluator {
    Train {
        data: Box<TensorData>,
        config: TrainConfig,
    },
    Synthetic {
        target: Architecture,
        /// (channels, height, width) of the dataset's images and its classes, for parameter counts.
        input: (usize, usize, usize),
        classes: usize,
        /// Points of the synthetic learning curve an assessor is shown (the protocol's epochs).
        epochs: usize,
    },
    /// Answers from a benchmark table; a surrogate predicts what the table lacks.
    Table {
        table: Box<nas_bench_table::TableEvaluator>,
        /// Points of the learning curve an assessor is shown (the table has final accuracies
        /// only, so the curve is the synthetic evaluator's rise to the answer).
        epochs: usize,
    },
}

impl Evaluator {
    pub fn kind(&self) -> EvaluatorKind {
        match self {
            Evaluator::Train { .. } => EvaluatorKind::Train,
            Evaluator::Synthetic { .. } => EvaluatorKind::Synthetic,
            Evaluator::Table { .. } => EvaluatorKind::Table,
        }
    }

    /// The evaluator a run configuration asks for; loads the dataset onto the device for real
    /// training, checks the synthetic target against the search space otherwise.
    pub fn for_run(
        config: &RunConfig,
        mdp: &Mdp,
        data_dir: Option<&Path>,
        device: DeviceChoice,
    ) -> anyhow::Result<Evaluator> {
        Ok(match config.evaluator {
            EvaluatorKind::Synthetic => {
                let target: Architecture = config.synthetic.target.parse().map_err(anyhow::Error::msg)?;
                mdp.validate(&target).map_err(|e| {
                    anyhow::anyhow!("synthetic target `{target}` is not valid for {}: {e}", config.dataset)
                })?;
                let info = config.dataset.describe()?;
                Evaluator::Synthetic {
                    target,
                    input: info.image_shape(),
                    classes: info.num_classes(),
                    epochs: config.train.epochs,
                }
            }
            EvaluatorKind::Train => Evaluator::Train {
                data: Box::new(TensorData::load(&config.dataset, data_dir, device, &config.train)?),
                config: config.train.clone(),
            },
            EvaluatorKind::Table => Evaluator::Table {
                table: Box::new(load_table(config, mdp)?),
                epochs: config.train.epochs,
            },
        })
    }

    /// The benchmark table a table evaluator answers from.
    pub fn table(&self) -> Option<&nas_bench_table::TableEvaluator> {
        match self {
            Evaluator::Table { table, .. } => Some(table),
            _ => None,
        }
    }

    /// The device kind children are trained on (`cpu`, `cuda`), or `none` for the synthetic
    /// evaluator. Part of the cache key and recorded with a run: CPU and CUDA kernels give
    /// different results for the same seed.
    pub fn device_kind(&self) -> &'static str {
        match self {
            Evaluator::Train { data, .. } if data.device == tch::Device::Cpu => "cpu",
            Evaluator::Train { .. } => "cuda",
            Evaluator::Synthetic { .. } | Evaluator::Table { .. } => "none",
        }
    }

    /// The cost of `arch` as `meter` measures it: timed on the training device with real
    /// training, structural figures (and a latency table's sum) otherwise.
    pub fn measure_cost(
        &self,
        arch: &Architecture,
        meter: &crate::cost::CostMeter,
    ) -> anyhow::Result<Option<nas_core::record::Cost>> {
        Ok(match self {
            Evaluator::Train { data, config } => {
                Some(meter.cost(arch, data.input, data.num_classes, config.activation, Some(data.device))?)
            }
            Evaluator::Synthetic { input, classes, .. } => {
                Some(meter.cost(arch, *input, *classes, nas_config::Activation::Relu, None)?)
            }
            // The table's rows carry no input shape: the search adds the structural figures.
            Evaluator::Table { .. } => None,
        })
    }

    /// Evaluates `arch`, training with `train_seed` (the synthetic score has no randomness); also
    /// returns the trained weights (safetensors) when `keep` is set and a network was trained.
    /// A `judge` (an assessor) sees the learning curve after every epoch and may stop training.
    pub fn evaluate(
        &self,
        arch: &Architecture,
        train_seed: u64,
        keep: bool,
        judge: Option<EpochJudge<'_>>,
    ) -> (Outcome, Option<Vec<u8>>) {
        match self {
            Evaluator::Train { data, config } => {
                let protocol = TrainConfig {
                    seed: train_seed,
                    ..config.clone()
                };
                train_child(arch, data, &protocol, keep, judge, None)
            }
            Evaluator::Synthetic {
                target,
                input,
                classes,
                epochs,
            } => {
                let mut outcome = score_synthetic(arch, target, *input, *classes);
                if let Some(judge) = judge {
                    outcome.curve = synthetic_curve(outcome.accuracy, *epochs, judge);
                    outcome.accuracy = outcome.curve.accuracy.last().copied().unwrap_or(outcome.accuracy);
                }
                (outcome, None)
            }
            Evaluator::Table { table, epochs } => {
                let mut outcome = answer_from_table(table, arch);
                if let (Some(judge), None) = (judge, &outcome.failure) {
                    outcome.curve = synthetic_curve(outcome.accuracy, *epochs, judge);
                    outcome.accuracy = outcome.curve.accuracy.last().copied().unwrap_or(outcome.accuracy);
                }
                (outcome, None)
            }
        }
    }
}

/// The synthetic evaluator's learning curve for a final score `score` over `epochs` epochs, as a
/// judge watching it would stop it: score · (1 − 2^−e) / (1 − 2^−E) after epoch e, rising fast and
/// ending at the score. Architectures keep their order at every epoch, as an assessor assumes.
fn synthetic_curve(score: f64, epochs: usize, judge: EpochJudge<'_>) -> Curve {
    let mut curve = Curve::default();
    let full = 1.0 - 0.5f64.powi(epochs as i32);
    for epoch in 1..=epochs {
        // The last point is the score itself, bit for bit, as without an assessor.
        curve.accuracy.push(if epoch == epochs {
            score
        } else {
            score * (1.0 - 0.5f64.powi(epoch as i32)) / full
        });
        if epoch < epochs && judge(&curve.accuracy) {
            curve.stopped = true;
            break;
        }
    }
    curve
}

/// The synthetic evaluator's outcome for `arch`.
pub fn score_synthetic(
    arch: &Architecture,
    target: &Architecture,
    input: (usize, usize, usize),
    classes: usize,
) -> Outcome {
    Outcome {
        accuracy: synthetic_score(arch, target),
        params: arch.param_count(input, classes),
        seconds: 0.0,
        failure: None,
        transient: false,
        curve: Curve::default(),
        predicted: false,
        cost: None,
    }
}

/// The run's benchmark table (`[table] file`) with a surrogate for what it lacks, checked against
/// the run: its rows must be of the run's dataset and valid in its search space.
pub fn load_table(config: &RunConfig, mdp: &Mdp) -> anyhow::Result<nas_bench_table::TableEvaluator> {
    let file = config
        .table
        .file
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the table evaluator needs its benchmark table: --evaluator table:FILE"))?;
    let table = nas_bench_table::BenchTable::load(file)?;
    let dataset = config.dataset.to_string();
    if let Some(other) = table.entries().iter().find(|e| e.dataset != dataset) {
        anyhow::bail!(
            "{} holds {} results (line {}), but the run searches {dataset}; use a table of {dataset} or --dataset {}",
            file.display(),
            other.dataset,
            other.line,
            other.dataset
        );
    }
    if let Some((entry, e)) = table
        .entries()
        .iter()
        .find_map(|e| mdp.validate(&e.architecture).err().map(|err| (e, err)))
    {
        anyhow::bail!(
            "{} line {}: `{}` is not in this run's search space ({e}); the table was made for other [mdp] settings",
            file.display(),
            entry.line,
            entry.architecture
        );
    }
    let info = config.dataset.describe()?;
    let encoder = nas_bench_table::Encoder::new(mdp.config.max_depth, info.image_shape(), info.num_classes());
    let evaluator = nas_bench_table::TableEvaluator::from_table(table, encoder, config.table.surrogate_seed)?;
    match &evaluator.quality {
        Some(quality) => tracing::info!(
            "table evaluator: {} architectures from {}; a random forest predicts the others ({quality})",
            evaluator.table.len(),
            file.display()
        ),
        None => tracing::info!(
            "table evaluator: {} architectures from {}; too few for a surrogate, so others fail",
            evaluator.table.len(),
            file.display()
        ),
    }
    Ok(evaluator)
}

/// The table's answer for `arch` as an outcome: recorded, or predicted and marked so. An
/// architecture the table lacks without a surrogate is a failed child naming the table.
pub fn answer_from_table(table: &nas_bench_table::TableEvaluator, arch: &Architecture) -> Outcome {
    match table.evaluate(arch) {
        Ok(answer) => Outcome {
            accuracy: answer.accuracy,
            params: answer.params,
            seconds: answer.seconds,
            failure: None,
            transient: false,
            curve: Curve::default(),
            predicted: answer.predicted,
            cost: None,
        },
        Err(e) => Outcome {
            accuracy: 0.0,
            params: 0,
            seconds: 0.0,
            failure: Some(e.to_string()),
            transient: true,
            curve: Curve::default(),
            predicted: false,
            cost: None,
        },
    }
}

/// Trains `arch` on `data` with `protocol`; with `keep`, also returns the trained weights
/// (safetensors). Never panics: a failed child is a failed outcome.
pub fn train_child(
    arch: &Architecture,
    data: &TensorData,
    protocol: &TrainConfig,
    keep: bool,
    judge: Option<EpochJudge<'_>>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> (Outcome, Option<Vec<u8>>) {
    match train::train_network(arch, data, protocol, judge, cancel) {
        Ok(trained) if !keep => (trained.outcome.into(), None),
        Ok(trained) => {
            let weights = crate::weights::safetensors_bytes(&trained.vs)
                .map_err(|e| tracing::warn!("could not keep the weights of `{arch}`: {e:#}"))
                .ok();
            (trained.outcome.into(), weights)
        }
        Err(failed) => (failed.into(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_optimum_is_the_target() {
        let target: Architecture = nas_config::SyntheticConfig::default().target.parse().unwrap();
        assert_eq!(synthetic_score(&target, &target), 1.0);
        let near: Architecture = "conv(64,3) pool(2,2) conv(32,3) fc(128)".parse().unwrap();
        assert!((synthetic_score(&near, &target) - (0.1 + 0.9 * 3.5 / 4.0)).abs() < 1e-12);
        let far: Architecture = "conv(10,1)".parse().unwrap();
        assert!((synthetic_score(&far, &target) - (0.1 + 0.9 * 0.5 / 4.0)).abs() < 1e-12);
        let longer: Architecture = "conv(64,3) pool(2,2) conv(64,3) fc(128) fc(64)".parse().unwrap();
        assert!(synthetic_score(&longer, &target) < 1.0);
    }

    #[test]
    fn the_synthetic_curve_rises_to_the_score_and_stops_when_judged() {
        let mut never = |_: &[f64]| false;
        let full = synthetic_curve(0.8, 3, &mut never);
        // 0.8 · (1/2, 3/4, 7/8) / (7/8)
        let expected = [0.8 * 4.0 / 7.0, 0.8 * 6.0 / 7.0, 0.8];
        assert_eq!(full.accuracy.len(), 3);
        for (got, want) in full.accuracy.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert!(!full.stopped);
        let mut asked = 0;
        let mut after_two = |curve: &[f64]| {
            asked += 1;
            curve.len() == 2
        };
        let stopped = synthetic_curve(0.8, 3, &mut after_two);
        assert_eq!((stopped.accuracy.len(), stopped.stopped, asked), (2, true, 2));
        let mut judge_never_asked_after_the_last = |curve: &[f64]| {
            assert!(curve.len() < 3);
            false
        };
        assert!(!synthetic_curve(0.8, 3, &mut judge_never_asked_after_the_last).stopped);
    }
}
