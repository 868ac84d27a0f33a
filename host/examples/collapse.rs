//! `bench/collapse.sh`: how often children collapse to chance under each training protocol.
//!
//! Samples `--archs` random architectures from the CIFAR search space (uniform valid actions,
//! fixed seed, at least two layers so every protocol can build them), trains each for `--epochs`
//! under every protocol below on CIFAR-5, and prints one JSON line per (protocol, architecture)
//! and a Markdown summary: collapse rate (accuracy ≤ 0.25, chance being 0.20, or a failed child),
//! mean accuracy, and mean accuracy of the children that did not collapse.
use std::path::PathBuf;

use clap::Parser;
use nas_config::Activation;
use nas_config::{Normalize, TrainConfig};
use nas_core::mdp::{Mdp, MdpConfig};
use nas_train::train;
use nas_train::train::TensorData;
use rand::SeedableRng;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 30)]
    archs: usize,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Seed of the architecture sample and of every child's training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Protocols to run, by name (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Accuracy at or below this is a collapse (5 classes: chance is 0.20).
const COLLAPSED: f64 = 0.25;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let protocols: Vec<(&str, TrainConfig)> = vec![
        (
            "relu-lr0.01",
            TrainConfig {
                learning_rate: 0.01,
                ..TrainConfig::default()
            },
        ),
        (
            "relu-lr0.001",
            TrainConfig {
                learning_rate: 0.001,
                ..TrainConfig::default()
            },
        ),
        (
            "seed-exact",
            TrainConfig {
                learning_rate: 0.01,
                activation: Activation::None,
                normalize: Normalize::None,
                ..TrainConfig::default()
            },
        ),
    ];
    let mdp = Mdp::new(
        MdpConfig {
            min_depth: 2,
            ..MdpConfig::default()
        },
        32,
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let archs: Vec<_> = (0..args.archs).map(|_| mdp.sample_architecture(&mut rng)).collect();
    let mut summary = vec![
        "| protocol | children | collapsed (≤ 0.25) | mean accuracy | mean accuracy, not collapsed | s/child |"
            .to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    for (name, protocol) in protocols {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        let protocol = TrainConfig {
            epochs: args.epochs,
            seed: args.seed,
            ..protocol
        };
        let data = TensorData::load(
            &nas_datasets::DatasetName::Cifar5.into(),
            args.data_dir.as_deref(),
            nas_config::DeviceChoice::Cpu,
            &protocol,
        )?;
        let (mut accuracies, mut collapsed, mut seconds) = (Vec::new(), 0, 0.0);
        for arch in &archs {
            let outcome = train::train(arch, &data, &protocol);
            println!(
                "{}",
                serde_json::json!({"protocol": name, "arch": arch.to_string(), "accuracy": outcome.accuracy,
                    "params": outcome.params, "seconds": outcome.seconds, "failure": outcome.failure})
            );
            if outcome.failure.is_some() || outcome.accuracy <= COLLAPSED {
                collapsed += 1;
            }
            accuracies.push(outcome.accuracy);
            seconds += outcome.seconds;
        }
        let n = accuracies.len() as f64;
        let mean = accuracies.iter().sum::<f64>() / n;
        let healthy: Vec<f64> = accuracies.iter().copied().filter(|&a| a > COLLAPSED).collect();
        let healthy_mean = healthy.iter().sum::<f64>() / healthy.len().max(1) as f64;
        summary.push(format!(
            "| {name} | {} | {collapsed} ({:.0}%) | {mean:.4} | {healthy_mean:.4} | {:.1} |",
            accuracies.len(),
            100.0 * collapsed as f64 / n,
            seconds / n
        ));
    }
    eprintln!("{}", summary.join("\n"));
    Ok(())
}
