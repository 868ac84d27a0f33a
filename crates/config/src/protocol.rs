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
}

impl EvaluatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluatorKind::Train => "train",
            EvaluatorKind::Synthetic => "synthetic",
        }
    }
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
