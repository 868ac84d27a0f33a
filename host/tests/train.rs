//! Child networks: every masked rollout builds and runs in libtorch with the analytic parameter
//! count, and training on the synthetic dataset learns, is seeded, and fails cleanly.

use nas_host::arch::Architecture;
use nas_host::mdp::{Mdp, MdpConfig};
use nas_host::model::{self, Activation};
use nas_host::train::{self, TensorData, TrainConfig, Validation};
use rand::SeedableRng;
use tch::nn::Module;
use tch::{nn, Device, Kind, Tensor};

/// Thousands of random masked rollouts on both input shapes build, run a forward pass, and have
/// exactly the analytic parameter count.
#[test]
fn every_masked_rollout_builds_and_counts_its_parameters() {
    let _guard = tch::no_grad_guard();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for (input, classes, rollouts) in [((1usize, 28usize, 28usize), 3usize, 1500), ((3, 32, 32), 10, 1500)] {
        let mdp = Mdp::new(MdpConfig::default(), input.1 as u32);
        let x = Tensor::zeros(
            [2, input.0 as i64, input.1 as i64, input.2 as i64],
            (Kind::Float, Device::Cpu),
        );
        for _ in 0..rollouts {
            let arch = mdp.sample_architecture(&mut rng);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = model::build(&vs.root(), &arch, input, classes, Activation::Relu);
            let y = net.forward(&x);
            assert_eq!(y.size(), vec![2, classes as i64], "{arch}");
            let counted: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
            assert_eq!(counted as u64, arch.param_count(input, classes), "{arch}");
        }
    }
}

fn synthetic_data(validation: Validation) -> TensorData {
    let dataset = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    TensorData::new(&dataset, validation, 0, Device::Cpu).unwrap()
}

#[test]
fn training_learns_with_and_without_activation() {
    let data = synthetic_data(Validation::Test);
    let arch: Architecture = "conv(10,3) pool(2,2)".parse().unwrap();
    let config = TrainConfig {
        epochs: 3,
        seed: 3,
        ..TrainConfig::default()
    };
    let a = train::train(&arch, &data, &config);
    assert_eq!(a.failure, None);
    assert!(a.accuracy > 0.9, "accuracy {}", a.accuracy);
    assert_eq!(a.params, arch.param_count((1, 28, 28), 3));
    let none = train::train(
        &arch,
        &data,
        &TrainConfig {
            activation: Activation::None,
            ..config.clone()
        },
    );
    assert_eq!(none.failure, None);
}

#[test]
fn holdout_validation_uses_training_images() {
    let data = synthetic_data(Validation::Holdout(200));
    assert_eq!(data.eval_y.size(), vec![200]);
    assert_eq!(data.train_y.size(), vec![2800]);
    let dataset = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    assert!(TensorData::new(&dataset, Validation::Holdout(50_000), 0, Device::Cpu).is_err());
    assert!("holdout:0".parse::<Validation>().is_err());
    assert_eq!("holdout:50".parse::<Validation>().unwrap(), Validation::Holdout(50));
}

#[test]
fn a_diverging_child_is_a_failed_evaluation() {
    let data = synthetic_data(Validation::Test);
    let arch: Architecture = "conv(64,3) fc(512) fc(256)".parse().unwrap();
    let outcome = train::train(
        &arch,
        &data,
        &TrainConfig {
            epochs: 1,
            learning_rate: 1e30,
            ..TrainConfig::default()
        },
    );
    let reason = outcome.failure.expect("a learning rate of 1e30 must diverge");
    assert!(reason.contains("diverged"), "{reason}");
    assert_eq!(outcome.accuracy, 0.0);
}

fn train_arch(seed: &str) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args([
            "train-arch",
            "--dataset",
            "synthetic",
            "--arch",
            "conv(10,3) pool(2,2)",
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--json",
            "--seed",
            seed,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Each run is its own process, as a user runs it: a fixed seed gives the same accuracy on CPU.
#[test]
fn train_arch_cli_prints_json_and_a_seed_fixes_the_result() {
    let json = train_arch("4");
    assert_eq!(train_arch("4")["accuracy"], json["accuracy"]);
    assert!(json["accuracy"].as_f64().unwrap() > 0.8);
    assert_eq!(json["params"], 10 * 10 + 10 * 13 * 13 * 3 + 3);
    assert!(json["seconds"].as_f64().unwrap() > 0.0);

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args(["train-arch", "--dataset", "synthetic", "--arch", "pool(2,2)", "--json"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot start with pooling"));
}
