//! The crate split moved the layer walk into one plan (`nas_core::netplan`) that the model
//! builder reads. Seeded results must not change: a fixed architecture and seed give the same
//! initial weights bit for bit as before the split (the values below were recorded with the
//! builder as it was, commit 112d3f8), and training stays deterministic for a seed.
//!
//! The trained weights are compared by their sums, not their bits: float kernels sum in a different
//! order on each CPU model (oneDNN picks its blocking by ISA and cache sizes), so the last bits of
//! trained weights differ between machines even with the same AVX-512 flags (an Intel Sapphire
//! Rapids with AMX disagreed on 2026-12-02 with the digests recorded on an AMD EPYC). Such
//! differences move Σ|w| and Σw² by about 1e-8 relative (measured here: one libtorch thread
//! against two, whose reductions also run in another order); any change to what training does —
//! data order, normalisation, initialisation, optimiser — moves them by far more than the 1e-4
//! allowed.

use nas_config::TrainConfig;
use nas_core::arch::Architecture;
use nas_train::model;
use nas_train::train::{self, TensorData};
use tch::{nn, Device};

/// sha256 over the variables in name order: name, shape, then the f32 values.
fn digest(vs: &nn::VarStore) -> String {
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut bytes = Vec::new();
    for (name, t) in vars {
        bytes.extend(name.as_bytes());
        bytes.extend(t.size().iter().flat_map(|d| d.to_le_bytes()));
        let values = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        bytes.extend(values.iter().flat_map(|x| x.to_le_bytes()));
    }
    nas_core::checksum::sha256_hex(&bytes)
}

/// Σ|w| and Σw² over every trained variable, summed in f64.
fn magnitudes(vs: &nn::VarStore) -> (f64, f64) {
    vs.variables().values().fold((0.0, 0.0), |(abs, sq), t| {
        let values = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        values
            .iter()
            .map(|&x| f64::from(x))
            .fold((abs, sq), |(abs, sq), x| (abs + x.abs(), sq + x * x))
    })
}

/// Relative tolerance on the trained weights' magnitudes: 10⁴ times the float noise measured.
const MAGNITUDE_TOLERANCE: f64 = 1e-4;

/// (architecture, initial weights recorded before the split, trained Σ|w|, trained Σw², accuracy).
const GOLDEN: [(&str, &str, f64, f64, f64); 2] = [
    (
        "conv(10,3) pool(2,2) conv(20,3) fc(64) fc(32)",
        "b8d9273ed085a47feae24a5ac3dbf034b7117e7b3043b781d26910ec23c9d630",
        2206.573252409,
        60.022719276,
        0.8616666666666667,
    ),
    (
        "conv(20,5) pool(3,2) conv(10,1)",
        "ae097c8fa01336a0e1b3b120a2ebf7fcb4eb286f17c531615d95835c216a5455",
        143.499653931,
        12.736636854,
        0.85,
    ),
];

#[test]
fn seeded_weights_and_accuracy_are_those_before_the_split() {
    let dataset = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    let config = TrainConfig {
        epochs: 1,
        seed: 7,
        ..TrainConfig::default()
    };
    let data = TensorData::new(&dataset, &config, Device::Cpu).unwrap();
    for (text, init, trained_abs, trained_sq, accuracy) in GOLDEN {
        let arch: Architecture = text.parse().unwrap();
        let built = {
            let _rng = train::libtorch_rng();
            tch::manual_seed(7);
            let vs = nn::VarStore::new(Device::Cpu);
            let _net = model::build(&vs.root(), &arch, data.input, data.num_classes, config.activation);
            digest(&vs)
        };
        assert_eq!(built, init, "initial weights of `{text}`");
        let first = train::train_network(&arch, &data, &config, None, None).ok().unwrap();
        let again = train::train_network(&arch, &data, &config, None, None).ok().unwrap();
        assert_eq!(digest(&first.vs), digest(&again.vs), "training `{text}` twice");
        let (abs, sq) = magnitudes(&first.vs);
        eprintln!(
            "{text}: trained Σ|w| {abs:.9}, Σw² {sq:.9}, accuracy {}",
            first.outcome.accuracy
        );
        for (what, got, want) in [("Σ|w|", abs, trained_abs), ("Σw²", sq, trained_sq)] {
            assert!(
                (got - want).abs() <= MAGNITUDE_TOLERANCE * want,
                "trained weights of `{text}`: {what} {got} against {want} recorded"
            );
        }
        // One or two of the 600 test images near a decision boundary may flip with the noise.
        assert!(
            (first.outcome.accuracy - accuracy).abs() <= 0.005,
            "accuracy of `{text}`: {} against {accuracy} recorded",
            first.outcome.accuracy
        );
    }
}
