//! Child networks: every masked rollout builds and runs in libtorch with the analytic parameter
//! count, and training on the synthetic dataset learns, is seeded, and fails cleanly.

use nas_config::Activation;
use nas_config::{Normalize, TrainConfig, Validation};
use nas_core::arch::Architecture;
use nas_core::mdp::{Mdp, MdpConfig};
use nas_train::model;
use nas_train::train;
use nas_train::train::TensorData;
use rand::{Rng, SeedableRng};
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
            // Building draws from libtorch's process-wide generator: never while a seeded test runs.
            let net = {
                let _rng = nas_train::train::libtorch_rng();
                model::build(&vs.root(), &arch, input, classes, Activation::Relu)
            };
            let y = net.forward(&x);
            assert_eq!(y.size(), vec![2, classes as i64], "{arch}");
            let counted: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
            assert_eq!(counted as u64, arch.param_count(input, classes), "{arch}");
        }
    }
}

/// The summary table (`show-arch`, reports) counts exactly the parameters of the network that is
/// trained, layer by layer, including fc after pool, fc after fc and 1×1 convolutions.
#[test]
fn the_summary_counts_the_parameters_of_the_built_network() {
    let cases = [
        ("conv(32,3) pool(5,3) fc(64)", (3usize, 32usize, 32usize), 5usize),
        ("conv(64,1) conv(10,1)", (3, 32, 32), 10),
        ("pool(2,2) fc(128)", (1, 28, 28), 3),
        ("conv(20,5) pool(3,2) fc(256) fc(64)", (1, 28, 28), 3),
        ("conv(10,1) pool(2,2) conv(32,3) pool(5,3) fc(512)", (3, 32, 32), 10),
    ];
    for (text, input, classes) in cases {
        let arch: Architecture = text.parse().unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = {
            let _rng = nas_train::train::libtorch_rng();
            model::build(&vs.root(), &arch, input, classes, Activation::Relu)
        };
        let built: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        let summary = arch.summary(input, classes);
        assert_eq!(summary.total_params(), built as u64, "{text}");
        assert!(
            summary.to_string().contains(&format!(
                "Total params: {}",
                nas_core::summary::with_thousands(built as u64)
            )),
            "{text}"
        );
        assert_eq!(summary.rows.last().unwrap().output, vec![classes as u64], "{text}");
    }
}

fn synthetic_data(validation: Validation) -> TensorData {
    let dataset = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    let protocol = TrainConfig {
        validation,
        ..TrainConfig::default()
    };
    TensorData::new(&dataset, &protocol, Device::Cpu).unwrap()
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
    assert!(a.accuracy > 0.85, "accuracy {}", a.accuracy);
    assert_eq!(a.params, arch.param_count((1, 28, 28), 3));
    // Without a nonlinearity (the seed's networks) the network still learns the shapes.
    let none = train::train(
        &arch,
        &data,
        &TrainConfig {
            activation: Activation::None,
            ..config.clone()
        },
    );
    assert_eq!(none.failure, None);
    assert!(none.accuracy > 0.7, "accuracy without activation {}", none.accuracy);
}

/// Without an activation, conv and fc layers compose to an affine map: f(x + y) − f(y) = f(x) − f(0)
/// for every input. With ReLU the identity fails, so this tells the two apart.
#[test]
fn no_activation_builds_an_affine_network() {
    let _guard = tch::no_grad_guard();
    let arch: Architecture = "conv(10,3) conv(8,1) fc(64)".parse().unwrap();
    let x = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let zero = Tensor::zeros([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let gap = |activation: Activation| {
        let rng = nas_train::train::libtorch_rng();
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = model::build(&vs.root(), &arch, (1, 28, 28), 3, activation);
        drop(rng);
        let lhs = net.forward(&(&x + &y)) - net.forward(&y);
        let rhs = net.forward(&x) - net.forward(&zero);
        (lhs - rhs).abs().max().double_value(&[])
    };
    assert!(gap(Activation::None) < 1e-4, "{}", gap(Activation::None));
    assert!(gap(Activation::Relu) > 1e-2, "{}", gap(Activation::Relu));
}

/// Every conv and linear layer starts as PyTorch's `reset_parameters` leaves it: weights and
/// biases uniform in ±1/√fan_in (tch's own default draws weights up to √6/√fan_in and zero conv
/// biases).
#[test]
fn layers_are_initialised_as_pytorch_does() {
    let _rng = nas_train::train::libtorch_rng();
    tch::manual_seed(0);
    let arch: Architecture = "conv(64,3) conv(32,5) pool(2,2) fc(256) fc(64)".parse().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = model::build(&vs.root(), &arch, (3, 32, 32), 5, Activation::Relu);
    let fan_in = |name: &str| -> f64 {
        match name {
            "l0" => 3.0 * 9.0,
            "l1" => 64.0 * 25.0,
            "l3" => 32.0 * 12.0 * 12.0,
            "l4" => 256.0,
            "classifier" => 64.0,
            other => panic!("unexpected layer {other}"),
        }
    };
    let variables = vs.variables();
    assert_eq!(variables.len(), 10, "a weight and a bias per layer");
    for (name, tensor) in variables {
        let (layer, _) = name.split_once('.').unwrap();
        let bound = 1.0 / fan_in(layer).sqrt();
        let max = tensor.abs().max().double_value(&[]);
        assert!(
            max <= bound * (1.0 + 1e-6),
            "{name}: max |w| {max} > 1/sqrt(fan_in) = {bound}"
        );
        // Large tensors fill the range and centre on 0 (the classifier's 5 biases need not).
        if tensor.numel() >= 50 {
            assert!(max > 0.8 * bound, "{name}: max |w| {max} uses too little of ±{bound}");
            let mean = tensor.mean(Kind::Float).double_value(&[]);
            assert!(mean.abs() < 0.2 * bound, "{name}: mean {mean} is not centred");
        }
    }
}

/// A CIFAR-5-like task: five classes of 3×32×32 images, each a fixed random colour pattern under
/// pixel noise.
fn cifar_like(train: usize, test: usize) -> nas_datasets::Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let templates: Vec<Vec<f64>> = (0..5)
        .map(|_| (0..3 * 32 * 32).map(|_| rng.random_range(60.0..196.0)).collect())
        .collect();
    let mut split = |n: usize| {
        let mut images = Vec::with_capacity(n * 3 * 32 * 32);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % 5;
            labels.push(class as u8);
            images.extend(
                templates[class]
                    .iter()
                    .map(|&t| (t + rng.random_range(-60.0..60.0)).clamp(0.0, 255.0) as u8),
            );
        }
        nas_datasets::Split { images, labels }
    };
    let (train, test) = (split(train), split(test));
    nas_datasets::Dataset::named(nas_datasets::DatasetName::Cifar5, train, test)
}

/// With the default protocol, a network with fc layers learns from every seed instead of
/// collapsing to chance (0.20) on some.
#[test]
fn networks_with_fc_layers_do_not_collapse_across_seeds() {
    let dataset = cifar_like(4000, 500);
    let data = TensorData::new(&dataset, &TrainConfig::default(), Device::Cpu).unwrap();
    let arch: Architecture = "conv(32,3) pool(5,3) fc(64)".parse().unwrap();
    // Measured when written: 0.8 to 1.0 for seeds 0–3 by default; with the seed's lr 0.01 seed 1
    // stalls at 0.4 (two classes of five). A collapsed child learns at most two classes.
    for seed in 0..4 {
        let protocol = TrainConfig {
            epochs: 2,
            seed,
            ..TrainConfig::default()
        };
        let outcome = train::train(&arch, &data, &protocol);
        assert_eq!(outcome.failure, None);
        assert!(outcome.accuracy > 0.6, "seed {seed}: accuracy {}", outcome.accuracy);
    }
}

#[test]
fn normalize_none_keeps_pixels_in_unit_range() {
    let dataset = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    let raw = TensorData::new(
        &dataset,
        &TrainConfig {
            normalize: Normalize::None,
            ..TrainConfig::default()
        },
        Device::Cpu,
    )
    .unwrap();
    let first = dataset.train.images[..28 * 28].iter().map(|&p| f64::from(p) / 255.0);
    assert_eq!(raw.train_x.kind(), Kind::Uint8, "pixels stay uint8 in memory");
    let tensor: Vec<f32> = Vec::<f32>::try_from(raw.inputs(&raw.train_x.narrow(0, 0, 1)).flatten(0, -1)).unwrap();
    for (want, got) in first.zip(tensor) {
        assert!((want - f64::from(got)).abs() < 1e-6);
    }
    let standardised = synthetic_data(Validation::Test);
    let inputs = standardised.inputs(&standardised.train_x);
    let mean = inputs.mean(Kind::Float).double_value(&[]);
    let std = inputs.std(false).double_value(&[]);
    assert!(mean.abs() < 1e-3 && (std - 1.0).abs() < 1e-3, "mean {mean}, std {std}");
}

/// Channels-last activations (the CPU default) compute the same function as the default layout:
/// the same loss and the same gradients on a random batch.
#[test]
fn channels_last_computes_the_same_function() {
    let arch: Architecture = "conv(20,3) pool(3,2) conv(32,5) fc(128)".parse().unwrap();
    let x = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 0, 1, 2]);
    let run = |channels_last: bool| {
        // Both layouts must start from the same weights: no other test may draw in between.
        let rng = nas_train::train::libtorch_rng();
        tch::manual_seed(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = model::build_with_layout(&vs.root(), &arch, (3, 32, 32), 5, Activation::Relu, channels_last);
        drop(rng);
        let loss = net.forward(&x).cross_entropy_for_logits(&y);
        loss.backward();
        let mut grads: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.grad().copy()))
            .collect();
        grads.sort_by(|a, b| a.0.cmp(&b.0));
        (loss.double_value(&[]), grads)
    };
    let (loss_a, grads_a) = run(false);
    let (loss_b, grads_b) = run(true);
    assert!((loss_a - loss_b).abs() < 1e-5, "{loss_a} vs {loss_b}");
    assert_eq!(grads_a.len(), grads_b.len());
    for ((name, a), (_, b)) in grads_a.iter().zip(&grads_b) {
        let diff = (a - b).abs().max().double_value(&[]);
        let scale = a.abs().max().double_value(&[]).max(1e-6);
        assert!(diff <= 1e-4 * scale.max(1.0), "{name}: gradients differ by {diff}");
    }
}

#[test]
fn holdout_validation_uses_training_images() {
    let data = synthetic_data(Validation::Holdout(200));
    assert_eq!(data.eval_y.size(), vec![200]);
    assert_eq!(data.train_y.size(), vec![2800]);
    let dataset = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    let protocol = TrainConfig {
        validation: Validation::Holdout(50_000),
        ..TrainConfig::default()
    };
    assert!(TensorData::new(&dataset, &protocol, Device::Cpu).is_err());
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

/// `train-arch --config` takes the whole protocol from a run configuration: the seed-exact preset
/// trains without activation on [0, 1] inputs and refuses a one-layer network (min_depth 2).
#[test]
fn train_arch_takes_the_protocol_from_a_config() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/seed-exact.toml");
    let run = |arch: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nas-host"))
            .args([
                "train-arch",
                "--config",
                config,
                "--dataset",
                "synthetic",
                "--arch",
                arch,
            ])
            .args(["--epochs", "1", "--device", "cpu", "--json"])
            .output()
            .unwrap()
    };
    let out = run("conv(10,3) pool(2,2)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["protocol"]["activation"], "none");
    assert_eq!(json["protocol"]["normalize"], "none");
    assert_eq!(json["protocol"]["epochs"], 1);
    assert_eq!(json["protocol"]["learning_rate"], 0.01);
    let one_layer = run("conv(10,3)");
    assert!(!one_layer.status.success());
    assert!(String::from_utf8_lossy(&one_layer.stderr).contains("at least 2 layers"));
}
