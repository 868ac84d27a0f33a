//! Child-network training with libtorch: the seed's Table 3 (Adam, cross entropy, batch 100, 5
//! epochs, reshuffled every epoch) with ReLU children at lr 0.001 by default, and the reward is the
//! accuracy on the evaluation split. The seed's lr 0.01 collapses many ReLU children to chance
//! (BENCHMARKS.md, "Collapse"); `configs/seed-exact.toml` is the seed's whole protocol.
//!
//! The dataset is converted to float tensors on the device once; each epoch shuffles it with one
//! gather and then slices batches as views, so no per-batch copying or host↔device traffic happens.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use nas_datasets::{Dataset, Split};
use serde::{Deserialize, Serialize};
use tch::nn::{Module, OptimizerConfig};
use tch::{nn, Device, Kind, Tensor};

use crate::model;
use nas_config::{DatasetSpec, Normalize, TrainConfig, Validation};
use nas_core::arch::Architecture;
use nas_core::record::Curve;

/// The result of training one child network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// Accuracy on the evaluation split in [0, 1]; 0 when the child failed.
    pub accuracy: f64,
    pub params: u64,
    /// Wall time of training and evaluation.
    pub seconds: f64,
    pub seconds_per_epoch: f64,
    /// Why the child failed (diverged, out of memory…); `None` on success.
    pub failure: Option<String>,
    /// The failure says nothing about the architecture (out of memory, a device or libtorch
    /// error): it is recorded on the episode but never served from the cache, so the next run
    /// trains the architecture again. Divergence is deterministic and is cached.
    #[serde(default)]
    pub transient: bool,
    /// The learning curve, when an assessor watched the training.
    #[serde(default)]
    pub curve: Curve,
}

/// Told the accuracies so far after every epoch but the protocol's last; `true` stops training.
pub type EpochJudge<'a> = &'a mut dyn FnMut(&[f64]) -> bool;

/// A dataset as float tensors on the training device, scaled to [0, 1] and (with
/// `Normalize::PerChannel`) standardised per channel with the training split's statistics.
pub struct TensorData {
    /// Training images as uint8 pixels, `[N, C, H, W]`, on the device: a quarter of the memory
    /// of float pixels. [`TensorData::inputs`] turns a batch into the network's input.
    pub train_x: Tensor,
    pub train_y: Tensor,
    /// Evaluation images, uint8 like `train_x`.
    pub eval_x: Tensor,
    pub eval_y: Tensor,
    pub input: (usize, usize, usize),
    pub num_classes: usize,
    /// The name of each class, by label (what an exported model's predictions are called).
    pub class_names: Vec<String>,
    pub device: Device,
    /// Per-channel mean and std the [0, 1] pixels are standardised with (0 and 1 without
    /// normalisation): what an exported model's users must apply too.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// `mean` and `std` as `[1, C, 1, 1]` float tensors on the device.
    mean_t: Tensor,
    std_t: Tensor,
}

fn to_tensors(split: &Split, input: (usize, usize, usize)) -> (Tensor, Tensor) {
    let (c, h, w) = input;
    let x = Tensor::from_slice(&split.images).view([split.len() as i64, c as i64, h as i64, w as i64]);
    let y = Tensor::from_slice(&split.labels).to_kind(Kind::Int64);
    (x, y)
}

/// Per-channel mean and (population) standard deviation of uint8 images `[N, C, H, W]`, as
/// [0, 1] pixels. Summed exactly in integers, a chunk of images at a time: the statistics do not
/// depend on the CPU's float summation order (AVX-512 and AVX2 machines agree bit for bit), and no
/// float copy of the whole set is ever made.
fn channel_statistics(x: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let _guard = tch::no_grad_guard();
    let (n, c) = (x.size()[0], x.size()[1]);
    let mut sums = vec![0i128; c as usize];
    let mut squares = vec![0i128; c as usize];
    let chunk = 1024;
    let mut start = 0;
    while start < n {
        let part = x.narrow(0, start, chunk.min(n - start)).to_kind(Kind::Int64);
        let dims = [0i64, 2, 3];
        let s = Vec::<i64>::try_from(part.sum_dim_intlist(dims.as_slice(), false, Kind::Int64)).unwrap_or_default();
        let q = Vec::<i64>::try_from((&part * &part).sum_dim_intlist(dims.as_slice(), false, Kind::Int64))
            .unwrap_or_default();
        for (i, (s, q)) in s.iter().zip(&q).enumerate() {
            sums[i] += *s as i128;
            squares[i] += *q as i128;
        }
        start += chunk;
    }
    let count = (n * x.size()[2] * x.size()[3]).max(1) as i128;
    let mean = sums.iter().map(|&s| s as f64 / count as f64 / 255.0).collect();
    // n² var = n Σx² − (Σx)², exact in integers.
    let std = sums
        .iter()
        .zip(&squares)
        .map(|(&s, &q)| (((count * q - s * s) as f64).max(0.0).sqrt() / count as f64) / 255.0)
        .collect();
    (mean, std)
}

impl TensorData {
    /// Finds (or downloads) a named dataset, or reads a folder or .npz file (decoded once into
    /// the cache), picks the device and loads the dataset onto it.
    pub fn load(
        spec: &DatasetSpec,
        data_dir: Option<&std::path::Path>,
        device: nas_config::DeviceChoice,
        protocol: &TrainConfig,
    ) -> anyhow::Result<TensorData> {
        let device = crate::device::select(device)?;
        let dataset = load_dataset(spec, data_dir)?;
        TensorData::new(&dataset, protocol, device)
    }

    /// The dataset as tensors for `protocol` (its validation split, its seed for the holdout
    /// shuffle and its input normalisation).
    pub fn new(dataset: &Dataset, protocol: &TrainConfig, device: Device) -> anyhow::Result<TensorData> {
        let (validation, seed) = (protocol.validation, protocol.seed);
        let input = (dataset.channels, dataset.height, dataset.width);
        // A lower-fidelity proxy trains on a stratified, seeded subset; with holdout validation
        // the holdout is then drawn from that subset.
        let subset;
        let train = match protocol.train_subset {
            Some(size) => {
                let n = size.images_of(dataset.train.len());
                subset = dataset
                    .train
                    .stratified_subset(n, protocol.train_subset_seed, dataset.image_len());
                &subset
            }
            None => &dataset.train,
        };
        let (mut train_x, mut train_y) = to_tensors(train, input);
        let (mut eval_x, mut eval_y) = to_tensors(&dataset.test, input);
        if let Validation::Holdout(n) = validation {
            let total = train.len();
            anyhow::ensure!(
                n < total,
                "--validation holdout:{n} holds out every training image ({total}); use fewer"
            );
            let _guard = tch::no_grad_guard();
            let _rng = libtorch_rng();
            tch::manual_seed(seed as i64);
            let perm = Tensor::randperm(total as i64, (Kind::Int64, Device::Cpu));
            let (keep, held) = (
                perm.narrow(0, 0, (total - n) as i64),
                perm.narrow(0, (total - n) as i64, n as i64),
            );
            eval_x = train_x.index_select(0, &held);
            eval_y = train_y.index_select(0, &held);
            train_x = train_x.index_select(0, &keep);
            train_y = train_y.index_select(0, &keep);
        }
        let channels = input.0;
        let (mean, std) = match protocol.normalize {
            Normalize::PerChannel => {
                let (mean, std) = channel_statistics(&train_x);
                (mean, std.into_iter().map(|s| s.max(1e-6)).collect())
            }
            Normalize::None => (vec![0.0; channels], vec![1.0; channels]),
        };
        let per_channel = |values: &[f64]| {
            let floats: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            Tensor::from_slice(&floats)
                .view([1, channels as i64, 1, 1])
                .to_device(device)
        };
        Ok(TensorData {
            mean_t: per_channel(&mean),
            std_t: per_channel(&std),
            mean,
            std,
            train_x: train_x.to_device(device).contiguous(),
            train_y: train_y.to_device(device),
            eval_x: eval_x.to_device(device).contiguous(),
            eval_y: eval_y.to_device(device),
            input,
            num_classes: dataset.num_classes,
            class_names: dataset.class_names.clone(),
            device,
        })
    }

    /// The network's input for a batch of uint8 images (of `train_x` or `eval_x`): pixels in
    /// [0, 1], standardised per channel.
    pub fn inputs(&self, pixels: &Tensor) -> Tensor {
        (pixels.to_kind(Kind::Float) / 255.0 - &self.mean_t) / &self.std_t
    }

    /// Accuracy of `net` on the evaluation split.
    pub fn eval_accuracy(&self, net: &impl Module) -> f64 {
        accuracy(net, self, &self.eval_x, &self.eval_y)
    }
}

/// The dataset a run names: a named one (downloaded when missing and allowed), or a folder or
/// .npz file decoded once into the cache.
pub fn load_dataset(spec: &DatasetSpec, data_dir: Option<&std::path::Path>) -> anyhow::Result<Dataset> {
    let source = nas_datasets::DataSource::resolve(data_dir);
    nas_datasets::load_ref(&spec.source, &source, &spec.folder_options(), Some(&spec.cache_dir()))
        .map_err(|e| anyhow::anyhow!("loading dataset {}: {e}", spec.source))
}

/// What identifies a run's data in the architecture cache: a named dataset's name (as before
/// folders existed, so old caches stay valid), else `custom:` and the content fingerprint — the
/// same images give the same key wherever they lie, and changed images another.
pub fn dataset_identity(spec: &DatasetSpec, data_dir: Option<&std::path::Path>) -> anyhow::Result<String> {
    match spec.named() {
        Some(name) => Ok(name.to_string()),
        None => Ok(format!("custom:{}", load_dataset(spec, data_dir)?.fingerprint())),
    }
}

/// Trains `arch` on `data` and measures its accuracy. Never panics: a diverging or out-of-memory
/// child comes back as a failed outcome with its reason.
pub fn train(arch: &Architecture, data: &TensorData, config: &TrainConfig) -> TrainOutcome {
    match train_network(arch, data, config, None, None) {
        Ok(trained) => trained.outcome,
        Err(failed) => failed,
    }
}

/// Exclusive use of libtorch's random generator, which is process-wide: a training (or anything
/// that initialises a network) while another runs would draw from it in an unpredictable
/// interleaving, and a seed would no longer fix the result. Hold the guard while drawing.
pub fn libtorch_rng() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A trained child with its weights, for `export`.
pub struct TrainedNetwork {
    pub vs: nn::VarStore,
    pub net: nn::Sequential,
    pub outcome: TrainOutcome,
}

/// [`train`], keeping the trained network; a failure comes back as the failed outcome. With a
/// `judge` (an assessor), accuracy is measured after every epoch and the judge may stop training
/// early; the outcome's accuracy is then the last one measured.
///
/// Training stops between batches once `cancel` is set (a worker that lost its lease on the
/// child): the outcome is then a transient failure, which nobody records.
pub fn train_network(
    arch: &Architecture,
    data: &TensorData,
    config: &TrainConfig,
    judge: Option<EpochJudge<'_>>,
    cancel: Option<&AtomicBool>,
) -> Result<TrainedNetwork, TrainOutcome> {
    let _one_at_a_time = libtorch_rng();
    let params = arch.param_count(data.input, data.num_classes);
    let started = Instant::now();
    let mut curve = Curve::default();
    // Waiting for a verdict (for a worker: store round trips, or a search that is gone) is not
    // training: it is timed apart and left out of the child's seconds, which the cache keeps and
    // reward shapers and the report's "time saved" read.
    let mut waited = std::time::Duration::ZERO;
    let mut timed = judge.map(|judge| {
        let waited = &mut waited;
        move |accuracy: &[f64]| {
            let asked = Instant::now();
            let stop = judge(accuracy);
            *waited += asked.elapsed();
            stop
        }
    });
    let judge = timed.as_mut().map(|j| j as &mut dyn FnMut(&[f64]) -> bool);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        train_inner(arch, data, config, judge, cancel, &mut curve)
    }));
    let seconds = started.elapsed().saturating_sub(waited).as_secs_f64();
    let epochs = if curve.is_measured() {
        curve.accuracy.len() as f64
    } else {
        config.epochs.max(1) as f64
    };
    let failed = |reason: String, transient: bool| TrainOutcome {
        accuracy: 0.0,
        params,
        seconds,
        seconds_per_epoch: seconds / epochs,
        failure: Some(reason),
        transient,
        curve: curve.clone(),
    };
    match result {
        Ok(Ok((vs, net, accuracy))) => Ok(TrainedNetwork {
            vs,
            net,
            outcome: TrainOutcome {
                accuracy,
                params,
                seconds,
                seconds_per_epoch: seconds / epochs,
                failure: None,
                transient: false,
                curve: curve.clone(),
            },
        }),
        Ok(Err(ChildFailure::Diverged(reason))) => Err(failed(reason, false)),
        Ok(Err(ChildFailure::Libtorch(reason))) => Err(failed(reason, true)),
        Ok(Err(ChildFailure::Cancelled)) => Err(failed("training was cancelled".into(), true)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown libtorch error".into());
            let reason = if message.contains("out of memory") {
                format!("out of memory: {}", first_line(&message))
            } else {
                format!("libtorch error: {}", first_line(&message))
            };
            Err(failed(reason, true))
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Why `train_inner` gave up: divergence is a property of the architecture and protocol (cached);
/// a libtorch error is not.
enum ChildFailure {
    Diverged(String),
    Libtorch(String),
    /// The caller cancelled training (see [`train_network`]).
    Cancelled,
}

fn train_inner(
    arch: &Architecture,
    data: &TensorData,
    config: &TrainConfig,
    mut judge: Option<EpochJudge<'_>>,
    cancel: Option<&AtomicBool>,
    curve: &mut Curve,
) -> Result<(nn::VarStore, nn::Sequential, f64), ChildFailure> {
    tch::manual_seed(config.seed as i64);
    let vs = nn::VarStore::new(data.device);
    let net = model::build(&vs.root(), arch, data.input, data.num_classes, config.activation);
    let mut opt = nn::Adam::default()
        .build(&vs, config.learning_rate)
        .map_err(|e| ChildFailure::Libtorch(format!("cannot build the optimizer: {e}")))?;
    let n = data.train_y.size()[0];
    let batch = config.batch_size.max(1) as i64;
    for epoch in 0..config.epochs {
        let perm = Tensor::randperm(n, (Kind::Int64, data.device));
        // Losses are summed on the device and checked once per epoch, so the hot loop never syncs.
        let mut loss_sum = Tensor::zeros([], (Kind::Float, data.device));
        let mut start = 0;
        while start < n {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(ChildFailure::Cancelled);
            }
            let len = batch.min(n - start);
            // Gathering each batch right before it is used keeps memory flat: shuffling the whole
            // dataset up front would hold a second copy of it (600 MB for CIFAR-10) on the device.
            let idx = perm.narrow(0, start, len);
            let loss = net
                .forward(&data.inputs(&data.train_x.index_select(0, &idx)))
                .cross_entropy_for_logits(&data.train_y.index_select(0, &idx));
            opt.backward_step(&loss);
            loss_sum += loss.detach();
            start += len;
        }
        let total = loss_sum.double_value(&[]);
        if !total.is_finite() {
            return Err(ChildFailure::Diverged(format!(
                "diverged: the training loss became {total} in epoch {}",
                epoch + 1
            )));
        }
        let Some(judge) = judge.as_mut() else {
            continue;
        };
        let measuring = Instant::now();
        curve.accuracy.push(data.eval_accuracy(&net));
        let last = epoch + 1 == config.epochs;
        if !last {
            curve.measure_seconds += measuring.elapsed().as_secs_f64();
            if judge(&curve.accuracy) {
                curve.stopped = true;
                break;
            }
        }
    }
    let accuracy = match curve.accuracy.last() {
        Some(&last) => last,
        None => data.eval_accuracy(&net),
    };
    Ok((vs, net, accuracy))
}

/// Accuracy of `net` on uint8 images `x` of `data` with labels `y`, evaluated without gradients
/// in large batches.
pub fn accuracy(net: &impl Module, data: &TensorData, x: &Tensor, y: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let n = y.size()[0];
    if n == 0 {
        return 0.0;
    }
    let mut correct = 0i64;
    let mut start = 0;
    while start < n {
        let len = 1000.min(n - start);
        let predicted = net.forward(&data.inputs(&x.narrow(0, start, len))).argmax(-1, false);
        correct += predicted
            .eq_tensor(&y.narrow(0, start, len))
            .sum(Kind::Int64)
            .int64_value(&[]);
        start += len;
    }
    correct as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_statistics_are_exact_on_a_hand_worked_set() {
        // Two 1x2 images of two channels: channel 0 holds 0, 255, 255, 0 (mean 0.5, std 0.5);
        // channel 1 holds 51 everywhere (mean 0.2, std 0).
        let x = Tensor::from_slice(&[0u8, 255, 51, 51, 255, 0, 51, 51]).view([2, 2, 1, 2]);
        let (mean, std) = channel_statistics(&x);
        assert_eq!(mean, [0.5, 0.2]);
        assert_eq!(std, [0.5, 0.0]);
    }

    #[test]
    fn channel_statistics_agree_with_float_statistics_over_chunks() {
        // More images than one chunk, so the sums cross chunk boundaries.
        let x = Tensor::randint(256, [2500, 3, 4, 4], (Kind::Uint8, Device::Cpu));
        let (mean, std) = channel_statistics(&x);
        let float = x.to_kind(Kind::Double) / 255.0;
        let dims = [0i64, 2, 3];
        let want_mean = Vec::<f64>::try_from(float.mean_dim(dims.as_slice(), false, Kind::Double)).unwrap();
        let want_std = Vec::<f64>::try_from(float.std_dim(dims.as_slice(), false, false)).unwrap();
        for c in 0..3 {
            assert!((mean[c] - want_mean[c]).abs() < 1e-12, "{mean:?} {want_mean:?}");
            assert!((std[c] - want_std[c]).abs() < 1e-12, "{std:?} {want_std:?}");
        }
    }
}
