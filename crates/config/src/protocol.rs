//! How a child is evaluated: the training protocol (`[train]`), the evaluator and the synthetic
//! evaluator's settings. Every field that changes a result is part of the architecture cache key.

use serde::{Deserialize, Serialize};

/// Which images measure the reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "images")]
pub enum Validation {
    /// The dataset's test split (the seed's protocol).
    #[default]
    Test,
    /// The last N images of a seeded shuffle of the training split; training uses the rest.
    Holdout(usize),
}

impl std::str::FromStr for Validation {
    type Err = String;
    fn from_str(s: &str) -> Result<Validation, String> {
        match s.split_once(':') {
            None if s == "test" => Ok(Validation::Test),
            Some(("holdout", n)) => n
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .map(Validation::Holdout)
                .ok_or_else(|| format!("`{s}`: holdout needs a positive image count, e.g. holdout:5000")),
            _ => Err(format!("`{s}`: expected `test` or `holdout:N`")),
        }
    }
}

impl std::fmt::Display for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Validation::Test => f.write_str("test"),
            Validation::Holdout(n) => write!(f, "holdout:{n}"),
        }
    }
}

/// How pixel values reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// Scaled to [0, 1], then standardised per channel with the training split's mean and std.
    #[default]
    PerChannel,
    /// Scaled to [0, 1] only, as the seed's ToTensor() did.
    None,
}

/// The training protocol; part of the architecture cache key, so every field that changes the
/// result belongs here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub activation: Activation,
    pub normalize: Normalize,
    pub validation: Validation,
    pub seed: u64,
    /// Train on a stratified, seeded subset of the training split: a number of images, or a
    /// fraction of them (a lower-fidelity proxy; evaluation stays on the whole evaluation split).
    /// Absent from the protocol's JSON when unset, so cache keys of full-data runs stay the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<TrainSubset>,
    /// Seed of that subset's draw: its own, so that every child (whatever its training seed)
    /// and every worker trains on the same images.
    #[serde(skip_serializing_if = "is_zero")]
    pub train_subset_seed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `[train] train_subset`: `2500` images, or `0.1` of the training split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TrainSubset {
    Images(usize),
    Fraction(f64),
}

impl TrainSubset {
    /// Images to keep of `total`: at least one, at most all.
    pub fn images_of(self, total: usize) -> usize {
        let n = match self {
            TrainSubset::Images(n) => n,
            TrainSubset::Fraction(f) => (f * total as f64).round() as usize,
        };
        n.clamp(1, total.max(1))
    }

    /// Refuses subsets that select nothing or more than everything.
    pub fn check(self) -> anyhow::Result<()> {
        match self {
            TrainSubset::Images(0) => anyhow::bail!("[train] train_subset = 0 selects no image"),
            TrainSubset::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                anyhow::bail!("[train] train_subset = {f}: a fraction must lie in (0, 1]")
            }
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for TrainSubset {
    type Err = String;
    fn from_str(s: &str) -> Result<TrainSubset, String> {
        if let Ok(n) = s.parse::<usize>() {
            return Ok(TrainSubset::Images(n));
        }
        s.parse::<f64>()
            .map(TrainSubset::Fraction)
            .map_err(|_| format!("`{s}`: expected a number of images (2500) or a fraction (0.1)"))
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 5,
            batch_size: 100,
            learning_rate: 0.001,
            activation: Activation::Relu,
            normalize: Normalize::PerChannel,
            validation: Validation::Test,
            seed: 0,
            train_subset: None,
            train_subset_seed: 0,
        }
    }
}

/// The nonlinearity after conv and fc layers. The seed's networks had none (`None`); see
/// `configs/seed-exact.toml` for its whole protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EvaluatorKind {
    /// Train the child network and measure its accuracy.
    #[default]
    Train,
    /// Score the architecture with a fixed function of its layers; no training.
    Synthetic,
    /// Answer from a benchmark table of trained architectures (`[table] file`), and predict what
    /// it lacks with a surrogate model; no training.
    Table,
}

impl EvaluatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluatorKind::Train => "train",
            EvaluatorKind::Synthetic => "synthetic",
            EvaluatorKind::Table => "table",
        }
    }
}

/// `--evaluator`: `train`, `synthetic`, or `table:FILE` (a benchmark table; `table` alone uses
/// the configuration's `[table] file`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatorChoice {
    pub kind: EvaluatorKind,
    pub table: Option<std::path::PathBuf>,
}

impl std::str::FromStr for EvaluatorChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, table) = match s.split_once(':') {
            Some(("table", file)) if !file.is_empty() => (EvaluatorKind::Table, Some(file.into())),
            Some(_) => {
                return Err(format!(
                    "`{s}`: only `table:` takes a file, e.g. table:benchmarks/cifar5.csv"
                ))
            }
            None => match s {
                "train" => (EvaluatorKind::Train, None),
                "synthetic" => (EvaluatorKind::Synthetic, None),
                "table" => (EvaluatorKind::Table, None),
                _ => return Err(format!("`{s}` is not an evaluator: use train, synthetic or table:FILE")),
            },
        };
        Ok(EvaluatorChoice { kind, table })
    }
}

/// `[table]`: the table evaluator's benchmark file and its surrogate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableConfig {
    /// The benchmark table (CSV: architecture, accuracy, params, mult_adds, seconds, dataset,
    /// protocol), e.g. `benchmarks/cifar5-25000x2.csv`.
    pub file: Option<std::path::PathBuf>,
    /// Seed of the surrogate (a random forest) and of its cross-validation folds.
    pub surrogate_seed: u64,
}

/// The synthetic evaluator's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// The architecture that scores 1.0, the unique optimum.
    pub target: String,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            target: "conv(64,3) pool(2,2) conv(64,3) fc(128)".into(),
        }
    }
}

/// Which device the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when available, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluator_choices_parse_with_and_without_a_table() {
        let parse = |s: &str| s.parse::<EvaluatorChoice>();
        assert_eq!(parse("train").unwrap().kind, EvaluatorKind::Train);
        assert_eq!(parse("synthetic").unwrap().table, None);
        let table = parse("table:benchmarks/cifar5.csv").unwrap();
        assert_eq!(table.kind, EvaluatorKind::Table);
        assert_eq!(
            table.table.as_deref(),
            Some(std::path::Path::new("benchmarks/cifar5.csv"))
        );
        assert_eq!(parse("table").unwrap().table, None, "the file comes from [table]");
        assert!(parse("train:x").unwrap_err().contains("only `table:`"));
        assert!(parse("table:").is_err());
        assert!(parse("surrogate")
            .unwrap_err()
            .contains("train, synthetic or table:FILE"));
    }
}
