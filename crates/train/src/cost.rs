//! Timing a child's inference on the evaluation device, and single layers for a latency table.
//!
//! A child's latency is timed on a freshly built copy of its network, not the trained one: the
//! operations are dense, so the weights' values do not change the time, and measuring needs no
//! weights kept from training (a cache hit from before `[cost]` can be timed too).
//!
//! Stable on a shared machine: the forward passes run with libtorch's thread count as the run
//! set it (one thread per worker when workers share the cores), after untimed warm-up passes, and
//! the median of the timed passes is kept with their p90 and minimum, so one preempted pass moves
//! the spread, not the figure.

use std::time::Instant;

use tch::nn::Module;
use tch::{nn, Device, Kind, Tensor};

use crate::model;
use nas_config::{Activation, CostConfig};
use nas_core::arch::{Architecture, Layer};
use nas_core::cost::{space_layers, structural_cost, LatencyTable};
use nas_core::netplan::NetworkPlan;
use nas_core::record::{Cost, Latency, Throughput};
use nas_core::stats::quantile_sorted;

/// Median, p90 and minimum milliseconds of timed runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
}

/// Times `net` on `input`: `warmup` untimed passes, then `runs` timed ones (each waited for on a
/// GPU, whose kernels run asynchronously).
pub fn time_forward(net: &impl Module, input: &Tensor, warmup: usize, runs: usize) -> Timing {
    let _no_grad = tch::no_grad_guard();
    let device = input.device();
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..warmup {
        let _ = net.forward(input);
    }
    sync();
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let started = Instant::now();
            let out = net.forward(input);
            sync();
            drop(out);
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    Timing {
        median_ms: quantile_sorted(&ms, 0.5),
        p90_ms: quantile_sorted(&ms, 0.9),
        min_ms: ms[0],
    }
}

/// What measures a run's children: the `[cost]` settings and, with a latency table, the table.
#[derive(Debug, Clone)]
pub struct CostMeter {
    pub config: CostConfig,
    /// The latency table and the name its latencies are recorded under.
    table: Option<(LatencyTable, String)>,
}

impl CostMeter {
    /// The meter of `[cost]`; loads its latency table, checked against the dataset's input.
    pub fn new(config: &CostConfig, input: (usize, usize, usize), num_classes: usize) -> anyhow::Result<CostMeter> {
        let table = match &config.latency_table {
            Some(path) => {
                let table = LatencyTable::load(path)?;
                let expected = [input.0 as u64, input.1 as u64, input.2 as u64];
                anyhow::ensure!(
                    table.input == expected && table.classes == num_classes,
                    "the latency table {} was measured for inputs {:?} and {} classes, but the run's dataset has {:?} and {}; measure it for this dataset with `nas-host cost measure-layers`",
                    path.display(),
                    table.input,
                    table.classes,
                    expected,
                    num_classes
                );
                let name = path
                    .file_name()
                    .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                Some((table, name))
            }
            None => None,
        };
        Ok(CostMeter {
            config: config.clone(),
            table,
        })
    }

    /// Whether this meter's latency is a table's (the same on every machine).
    pub fn uses_table(&self) -> bool {
        self.table.is_some()
    }

    /// The cost of `arch`: its structural figures, and its latency from the table or, when
    /// `device` is given and `[cost] measure` is on, timed there. A table lacking a layer is an
    /// error naming it.
    pub fn cost(
        &self,
        arch: &Architecture,
        input: (usize, usize, usize),
        num_classes: usize,
        activation: Activation,
        device: Option<Device>,
    ) -> anyhow::Result<Cost> {
        let mut cost = structural_cost(arch, input, num_classes);
        cost.latency = match (&self.table, device) {
            (Some((table, name)), _) => Some(table.latency(arch, name)?),
            (None, Some(device)) if self.config.measure => Some(measure_latency(
                arch,
                input,
                num_classes,
                activation,
                device,
                &self.config,
            )),
            _ => None,
        };
        Ok(cost)
    }
}

/// libtorch's intra-op thread count set for a measurement (0 keeps it) and restored after it.
struct ThreadsFor(Option<i32>);

impl ThreadsFor {
    fn new(threads: usize) -> ThreadsFor {
        if threads == 0 {
            return ThreadsFor(None);
        }
        let before = tch::get_num_threads();
        tch::set_num_threads(threads as i32);
        ThreadsFor(Some(before))
    }
}

impl Drop for ThreadsFor {
    fn drop(&mut self) {
        if let Some(before) = self.0 {
            tch::set_num_threads(before);
        }
    }
}

/// The device kind a latency is recorded under (`cpu`, `cuda`).
pub fn device_name(device: Device) -> &'static str {
    if device == Device::Cpu {
        "cpu"
    } else {
        "cuda"
    }
}

/// Times `arch`'s inference on `device` as `[cost]` says.
pub fn measure_latency(
    arch: &Architecture,
    input: (usize, usize, usize),
    num_classes: usize,
    activation: Activation,
    device: Device,
    config: &CostConfig,
) -> Latency {
    let started = Instant::now();
    let _threads = ThreadsFor::new(config.threads);
    let vs = nn::VarStore::new(device);
    let net = {
        // Building draws initial weights from libtorch's process-wide generator.
        let _rng = crate::train::libtorch_rng();
        model::build(&vs.root(), arch, input, num_classes, activation)
    };
    let batch_input = |batch: usize| {
        Tensor::zeros(
            [batch as i64, input.0 as i64, input.1 as i64, input.2 as i64],
            (Kind::Float, device),
        )
    };
    let timing = time_forward(&net, &batch_input(config.batch.max(1)), config.warmup, config.runs);
    let throughput = (config.throughput_batch > 0).then(|| {
        let t = time_forward(&net, &batch_input(config.throughput_batch), config.warmup, config.runs);
        Throughput {
            batch: config.throughput_batch,
            median_ms: t.median_ms,
            per_second: config.throughput_batch as f64 / (t.median_ms / 1e3),
        }
    });
    Latency {
        device: device_name(device).to_string(),
        batch: config.batch.max(1),
        runs: config.runs.max(1),
        threads: tch::get_num_threads().max(0) as usize,
        median_ms: timing.median_ms,
        p90_ms: timing.p90_ms,
        min_ms: timing.min_ms,
        throughput,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Measures every layer a design of `mdp` can contain on `device` (`nas-host cost measure-layers`):
/// each layer alone, as the model builder builds it, on the shape it reads (channels-last on a CPU,
/// as the whole network lays out its feature maps there). `progress` is told each key measured.
pub fn measure_layers(
    mdp: &nas_core::mdp::Mdp,
    input: (usize, usize, usize),
    num_classes: usize,
    activation: Activation,
    device: Device,
    config: &CostConfig,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> LatencyTable {
    let _threads = ThreadsFor::new(config.threads);
    let wanted = space_layers(mdp, input);
    let relu = activation == Activation::Relu;
    let mut layers = std::collections::BTreeMap::new();
    let total = wanted.len();
    for (i, (key, (layer, shape))) in wanted.iter().enumerate() {
        progress(i, total, key);
        let ms = time_layer(*layer, shape, num_classes, relu, device, config);
        layers.insert(key.clone(), ms);
    }
    LatencyTable {
        device: format!(
            "{} ({} thread{})",
            device_name(device),
            tch::get_num_threads(),
            if tch::get_num_threads() == 1 { "" } else { "s" }
        ),
        batch: config.batch.max(1),
        input: [input.0 as u64, input.1 as u64, input.2 as u64],
        classes: num_classes,
        runs: config.runs.max(1),
        layers,
    }
}

/// Median milliseconds of `layer` (the classifier for `None`) alone on an input of `shape`.
pub fn time_layer(
    layer: Option<Layer>,
    shape: &[u64],
    num_classes: usize,
    relu: bool,
    device: Device,
    config: &CostConfig,
) -> f64 {
    // A feature vector reads as a 1×1 map of that many channels: the plan then flattens it, which
    // for the [batch, features] input timed here is a view.
    let (c, side) = match *shape {
        [c, side, _] => (c as usize, side as usize),
        [features] => (features as usize, 1),
        _ => unreachable!("shapes are [c, h, w] or [features]"),
    };
    let arch = Architecture {
        layers: layer.into_iter().collect(),
    };
    let plan = NetworkPlan::new(&arch, (c, side, side), num_classes, relu);
    let vs = nn::VarStore::new(device);
    let net = {
        let _rng = crate::train::libtorch_rng();
        model::add_ops(&vs.root(), nn::seq(), plan.layers[0].ops.iter())
    };
    let batch = config.batch.max(1) as i64;
    let mut dims = vec![batch];
    dims.extend(shape.iter().map(|&d| d as i64));
    let mut x = Tensor::zeros(dims.as_slice(), (Kind::Float, device));
    if shape.len() == 3 && device == Device::Cpu && matches!(layer, Some(Layer::Conv { .. } | Layer::Pool { .. })) {
        x = model::to_channels_last(&x);
    }
    time_forward(&net, &x, config.warmup, config.runs).median_ms
}
