//! `nas-host export`: trains the chosen architectures of a run and writes each as portable files —
//! TorchScript (`model.pt`), ONNX (`model.onnx`), `weights.safetensors` with a plain PyTorch
//! `model.py`, `model.json` (everything needed to feed it), and `check.safetensors` (a batch of
//! evaluation inputs with the logits nas-host computed, so any consumer can check itself).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use nas_config::Activation;
use nas_config::DeviceChoice;
use nas_config::RunConfig;
use nas_config::{Normalize, TrainConfig};
use nas_core::arch::Architecture;
use nas_core::netplan::{NetworkPlan, Op};
use nas_core::record::top_distinct;
use nas_store::Store;
use nas_train::model;
use nas_train::train;
use nas_train::train::TensorData;

/// The ONNX operator set the graphs are written for.
pub const ONNX_OPSET: i64 = 17;
/// Evaluation inputs (and nas-host's logits for them) written to `check.safetensors`.
const CHECK_BATCH: i64 = 16;

/// Which architectures of a run to export.
#[derive(Debug, Clone)]
pub enum Choice {
    /// The K best-rewarded distinct architectures of the run.
    Top(usize),
    /// One architecture, found by the run or not.
    Arch(Architecture),
    /// The run's Pareto-optimal children: accuracy against latency when measured, else against
    /// multiply-adds (into OUT/pareto-1 …, cheapest first, with the set in OUT/pareto.json).
    Pareto,
}

#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub run: i64,
    pub choice: Choice,
    /// Epochs to train (default: the run's protocol).
    pub epochs: Option<usize>,
    pub out: PathBuf,
    /// Write into an output directory that already exists.
    pub force: bool,
    pub data_dir: Option<PathBuf>,
    pub device: DeviceChoice,
}

/// `model.json`: what a user needs to feed the model and what it achieved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCard {
    pub architecture: String,
    pub dataset: String,
    pub classes: Vec<String>,
    /// [channels, height, width] of one input.
    pub input_shape: [usize; 3],
    /// How pixels become inputs: `x = (pixel / 255 − mean[c]) / std[c]` per channel c.
    pub normalization: Normalization,
    /// Accuracy on the evaluation split after this export's training.
    pub accuracy: f64,
    /// The evaluation split accuracy was measured on ("test", or a holdout of the training set).
    pub evaluation_split: String,
    pub params: u64,
    pub protocol: TrainConfig,
    pub run: i64,
    pub onnx_opset: i64,
    pub exported_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Normalization {
    pub scale: f64,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// One exported model.
#[derive(Debug, Clone)]
pub struct Exported {
    pub dir: PathBuf,
    pub card: ModelCard,
    /// The weights the search kept (`[search] keep_weights`) were used; nothing was trained.
    pub from_search: bool,
}

/// Hears about each model as it is trained and written (the CLI shows progress).
pub trait ExportSink {
    fn training(&mut self, _index: usize, _total: usize, _arch: &Architecture, _epochs: usize) {}
    fn written(&mut self, _model: &Exported) {}
}

/// No output.
pub struct Quiet;
impl ExportSink for Quiet {}

/// Trains and writes every chosen architecture; returns what was written.
pub fn export(store: &Store, request: &ExportRequest, sink: &mut dyn ExportSink) -> anyhow::Result<Vec<Exported>> {
    let record = store
        .run(request.run)
        .with_context(|| format!("there is no run {} to export from (see `nas-host runs`)", request.run))?;
    let config = RunConfig::from_toml(&record.config_toml)?;
    let architectures = match &request.choice {
        Choice::Arch(arch) => vec![arch.clone()],
        Choice::Top(k) => {
            anyhow::ensure!(*k >= 1, "--top must be at least 1");
            let episodes = store.episodes(request.run)?;
            anyhow::ensure!(!episodes.is_empty(), "run {} has no episodes to export", request.run);
            top_distinct(&episodes, *k)
                .into_iter()
                .map(|e| e.architecture.parse().map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<Architecture>>>()?
        }
        Choice::Pareto => {
            let pareto = crate::pareto::Pareto::of(crate::pareto::cost_points(store, &[request.run])?);
            anyhow::ensure!(
                !pareto.points.is_empty(),
                "run {} has no child that trained to the end to export",
                request.run
            );
            pareto
                .front()
                .iter()
                .map(|p| p.architecture.parse().map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<Architecture>>>()?
        }
    };
    let side = config.dataset.describe()?.height;
    let mdp = nas_core::mdp::Mdp::new(config.mdp.clone(), side as u32);
    for arch in &architectures {
        mdp.validate(arch).map_err(|e| {
            anyhow::anyhow!(
                "`{arch}` cannot be exported for run {}'s search space: {e}",
                request.run
            )
        })?;
    }
    if request.out.exists() {
        anyhow::ensure!(
            request.force,
            "{} already exists; choose another --out, or pass --force to write into it",
            request.out.display()
        );
    }
    let mut protocol = config.train.clone();
    if let Some(epochs) = request.epochs {
        anyhow::ensure!(epochs >= 1, "--epochs must be at least 1");
        protocol.epochs = epochs;
    }
    let data = TensorData::load(&config.dataset, request.data_dir.as_deref(), request.device, &protocol)?;
    let mut written = Vec::new();
    for (i, arch) in architectures.iter().enumerate() {
        let dir = match request.choice {
            Choice::Pareto => request.out.join(format!("pareto-{}", i + 1)),
            _ if architectures.len() == 1 => request.out.clone(),
            _ => request.out.join(format!("top-{}", i + 1)),
        };
        // The search's own protocol: the weights it kept for this architecture are the model.
        let kept = match request.epochs {
            Some(epochs) if epochs != config.train.epochs => None,
            _ => kept_weights(store, request.run, arch)?,
        };
        let from_search = kept.is_some();
        let trained = match kept {
            Some(weights) => restore(arch, &data, &protocol, &weights)?,
            None => {
                sink.training(i, architectures.len(), arch, protocol.epochs);
                train::train_network(arch, &data, &protocol, None, None).map_err(|failed| {
                    anyhow::anyhow!("training `{arch}` failed: {}", failed.failure.unwrap_or_default())
                })?
            }
        };
        let card = ModelCard {
            architecture: arch.to_string(),
            dataset: config.dataset.source.label(),
            classes: data.class_names.clone(),
            input_shape: [data.input.0, data.input.1, data.input.2],
            normalization: Normalization {
                scale: 1.0 / 255.0,
                mean: data.mean.clone(),
                std: data.std.clone(),
            },
            accuracy: trained.outcome.accuracy,
            evaluation_split: match protocol.validation {
                nas_config::Validation::Test => "test".into(),
                nas_config::Validation::Holdout(n) => format!("holdout of {n} training images"),
            },
            params: trained.outcome.params,
            protocol: protocol.clone(),
            run: request.run,
            onnx_opset: ONNX_OPSET,
            exported_by: format!("nas-host {}", env!("CARGO_PKG_VERSION")),
        };
        write_model(&dir, arch, &trained.vs, &data, &card, protocol.activation)?;
        let exported = Exported { dir, card, from_search };
        sink.written(&exported);
        written.push(exported);
    }
    if matches!(request.choice, Choice::Pareto) {
        write_pareto_set(store, request.run, &request.out)?;
    }
    Ok(written)
}

/// `pareto.json`: the exported Pareto set with each child's accuracy and cost, in the order of
/// the pareto-N directories.
fn write_pareto_set(store: &Store, run: i64, out: &Path) -> anyhow::Result<()> {
    let pareto = crate::pareto::Pareto::of(crate::pareto::cost_points(store, &[run])?);
    let set: Vec<serde_json::Value> = pareto
        .front()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({
                "dir": format!("pareto-{}", i + 1),
                "architecture": p.architecture,
                "accuracy": p.accuracy,
                "params": p.params,
                "mult_adds": p.mult_adds,
                "activation_bytes": p.activation_bytes,
                "latency_ms": p.latency_ms,
                "latency_p90_ms": p.latency_p90_ms,
                "latency_device": p.latency_device,
            })
        })
        .collect();
    let against = if pareto.has_latency() { "latency" } else { "mult_adds" };
    let text = serde_json::to_string_pretty(&serde_json::json!({ "run": run, "against": against, "set": set }))?;
    let path = out.join("pareto.json");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The weights a run kept for `arch`, if it kept any.
fn kept_weights(store: &Store, run: i64, arch: &Architecture) -> anyhow::Result<Option<Vec<u8>>> {
    let text = arch.to_string();
    let episodes = store.episodes(run)?;
    let evaluations = store.episode_evaluations(run)?;
    // A child the assessor stopped early did not train the protocol's epochs.
    for episode in episodes.iter().filter(|e| e.architecture == text && !e.stopped) {
        if let Some(weights) = store.kept_weights(run, evaluations[&episode.index])? {
            return Ok(Some(weights));
        }
    }
    Ok(None)
}

/// The network with kept weights, its accuracy measured again on the evaluation split.
fn restore(
    arch: &Architecture,
    data: &TensorData,
    protocol: &TrainConfig,
    weights: &[u8],
) -> anyhow::Result<train::TrainedNetwork> {
    let mut vs = nn::VarStore::new(data.device);
    let net = {
        let _rng = train::libtorch_rng();
        model::build(&vs.root(), arch, data.input, data.num_classes, protocol.activation)
    };
    let file = tempfile::Builder::new().suffix(".safetensors").tempfile()?;
    std::fs::write(file.path(), weights)?;
    vs.load(file.path())
        .with_context(|| format!("loading the weights the search kept for `{arch}`"))?;
    let started = std::time::Instant::now();
    let accuracy = data.eval_accuracy(&net);
    Ok(train::TrainedNetwork {
        vs,
        net,
        outcome: train::TrainOutcome {
            accuracy,
            params: arch.param_count(data.input, data.num_classes),
            seconds: started.elapsed().as_secs_f64(),
            seconds_per_epoch: 0.0,
            failure: None,
            transient: false,
            curve: nas_core::record::Curve::default(),
        },
    })
}

/// Writes one model's files into `dir`.
fn write_model(
    dir: &Path,
    arch: &Architecture,
    trained: &nn::VarStore,
    data: &TensorData,
    card: &ModelCard,
    activation: Activation,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _no_grad = tch::no_grad_guard();
    // The exported network: on the CPU, in libtorch's default memory layout, with the trained
    // weights (the names are PyTorch's: l0.weight, classifier.bias…).
    let mut vs = nn::VarStore::new(Device::Cpu);
    // Building initialises weights from libtorch's generator, which a training may be using.
    let net = {
        let _rng = train::libtorch_rng();
        model::build_with_layout(&vs.root(), arch, data.input, data.num_classes, activation, false)
    };
    vs.copy(trained).context("copying the trained weights")?;
    vs.freeze();

    let path = dir.join("weights.safetensors");
    vs.save(&path).with_context(|| format!("writing {}", path.display()))?;

    let (c, h, w) = data.input;
    let example = Tensor::zeros([1, c as i64, h as i64, w as i64], (Kind::Float, Device::Cpu));
    let traced = tch::CModule::create_by_tracing("NasNet", "forward", &[example], &mut |inputs| {
        vec![net.forward(&inputs[0])]
    })
    .context("tracing the network into TorchScript")?;
    let path = dir.join("model.pt");
    traced
        .save(&path)
        .with_context(|| format!("writing {}", path.display()))?;

    let weights: std::collections::HashMap<String, Tensor> = vs.variables();
    let onnx = onnx_graph(arch, data.input, data.num_classes, activation, &weights)?;
    let path = dir.join("model.onnx");
    std::fs::write(&path, onnx).with_context(|| format!("writing {}", path.display()))?;

    let path = dir.join("model.py");
    std::fs::write(&path, model_py(arch, card, activation)).with_context(|| format!("writing {}", path.display()))?;

    let n = CHECK_BATCH.min(data.eval_y.size()[0]);
    let inputs = data
        .inputs(&data.eval_x.narrow(0, 0, n))
        .to_device(Device::Cpu)
        .contiguous();
    let logits = net.forward(&inputs).contiguous();
    let labels = data.eval_y.narrow(0, 0, n).to_device(Device::Cpu);
    let path = dir.join("check.safetensors");
    Tensor::write_safetensors(&[("input", &inputs), ("logits", &logits), ("label", &labels)], &path)
        .with_context(|| format!("writing {}", path.display()))?;

    let path = dir.join("model.json");
    std::fs::write(&path, serde_json::to_string_pretty(card)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The network as an ONNX model (opset [`ONNX_OPSET`]): input `input` [N, C, H, W] float,
/// output `logits` [N, classes].
fn onnx_graph(
    arch: &Architecture,
    input: (usize, usize, usize),
    num_classes: usize,
    activation: Activation,
    weights: &std::collections::HashMap<String, Tensor>,
) -> anyhow::Result<Vec<u8>> {
    use onnx_protobuf::{
        attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto,
        GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
        ValueInfoProto,
    };
    let ints = |name: &str, values: &[i64]| AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: values.to_vec(),
        ..Default::default()
    };
    let int = |name: &str, value: i64| AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i: value,
        ..Default::default()
    };
    let initializer = |name: &str| -> anyhow::Result<TensorProto> {
        let t = weights
            .get(name)
            .with_context(|| format!("no trained tensor named {name}"))?
            .to_kind(Kind::Float)
            .contiguous();
        let values = Vec::<f32>::try_from(t.flatten(0, -1)).context("reading weights")?;
        Ok(TensorProto {
            name: name.into(),
            dims: t.size(),
            data_type: DataType::FLOAT as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        })
    };
    let value_info = |name: &str, dims: Vec<tensor_shape_proto::dimension::Value>| ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::FLOAT as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .into_iter()
                        .map(|value| tensor_shape_proto::Dimension {
                            value: Some(value),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            })),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    use tensor_shape_proto::dimension::Value::{DimParam, DimValue};

    let mut graph = GraphProto {
        name: arch.to_string(),
        ..Default::default()
    };
    let plan = NetworkPlan::new(arch, input, num_classes, activation == Activation::Relu);
    let operations: Vec<&Op> = plan.ops().collect();
    let mut current = "input".to_string();
    for (i, op) in operations.iter().enumerate() {
        let output = if i + 1 == operations.len() {
            "logits".to_string()
        } else {
            format!("t{i}")
        };
        let mut node = NodeProto {
            name: format!("n{i}"),
            input: vec![current.clone()],
            output: vec![output.clone()],
            ..Default::default()
        };
        match op {
            Op::Conv { name, kernel, .. } => {
                let kernel = *kernel as i64;
                node.op_type = "Conv".into();
                node.input.extend([format!("{name}.weight"), format!("{name}.bias")]);
                node.attribute = vec![
                    ints("kernel_shape", &[kernel, kernel]),
                    ints("strides", &[1, 1]),
                    ints("pads", &[0, 0, 0, 0]),
                ];
                graph.initializer.push(initializer(&format!("{name}.weight"))?);
                graph.initializer.push(initializer(&format!("{name}.bias"))?);
            }
            Op::MaxPool { size, stride } => {
                let (size, stride) = (*size as i64, *stride as i64);
                node.op_type = "MaxPool".into();
                node.attribute = vec![
                    ints("kernel_shape", &[size, size]),
                    ints("strides", &[stride, stride]),
                    ints("pads", &[0, 0, 0, 0]),
                    int("ceil_mode", 0),
                ];
            }
            Op::Flatten => {
                node.op_type = "Flatten".into();
                node.attribute = vec![int("axis", 1)];
            }
            Op::Linear { name, .. } => {
                // y = x Wᵀ + b, as nn.Linear stores W as [out, in].
                node.op_type = "Gemm".into();
                node.input.extend([format!("{name}.weight"), format!("{name}.bias")]);
                node.attribute = vec![int("transB", 1)];
                graph.initializer.push(initializer(&format!("{name}.weight"))?);
                graph.initializer.push(initializer(&format!("{name}.bias"))?);
            }
            Op::Relu => node.op_type = "Relu".into(),
        }
        graph.node.push(node);
        current = output;
    }
    let (c, h, w) = input;
    graph.input.push(value_info(
        "input",
        vec![
            DimParam("batch".into()),
            DimValue(c as i64),
            DimValue(h as i64),
            DimValue(w as i64),
        ],
    ));
    graph.output.push(value_info(
        "logits",
        vec![DimParam("batch".into()), DimValue(num_classes as i64)],
    ));
    let model = ModelProto {
        // IR version 8 goes with opset 17 (ONNX 1.13).
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: ONNX_OPSET,
            ..Default::default()
        }],
        producer_name: "nas-host".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph).into(),
        ..Default::default()
    };
    model.write_to_bytes().context("encoding the ONNX model")
}

/// `model.py`: the architecture as a plain `nn.Module`, its input preprocessing and a loader.
fn model_py(arch: &Architecture, card: &ModelCard, activation: Activation) -> String {
    let input = (card.input_shape[0], card.input_shape[1], card.input_shape[2]);
    let plan = NetworkPlan::new(arch, input, card.classes.len(), activation == Activation::Relu);
    let mut layers = Vec::new();
    let mut forward = Vec::new();
    for op in plan.ops() {
        match op {
            Op::Conv {
                name,
                in_channels,
                filters,
                kernel,
            } => {
                layers.push(format!(
                    "        self.{name} = nn.Conv2d({in_channels}, {filters}, {kernel})"
                ));
                forward.push(format!("        x = self.{name}(x)"));
            }
            Op::MaxPool { size, stride } => forward.push(format!("        x = F.max_pool2d(x, {size}, {stride})")),
            Op::Flatten => forward.push("        x = torch.flatten(x, 1)".into()),
            Op::Linear { name, inputs, outputs } => {
                layers.push(format!("        self.{name} = nn.Linear({inputs}, {outputs})"));
                forward.push(format!("        x = self.{name}(x)"));
            }
            Op::Relu => forward.push("        x = F.relu(x)".into()),
        }
    }
    let floats = |v: &[f64]| v.iter().map(|x| format!("{x:.8}")).collect::<Vec<_>>().join(", ");
    let normalize_note = match card.protocol.normalize {
        Normalize::PerChannel => "per-channel standardisation with the training split's statistics",
        Normalize::None => "none beyond scaling to [0, 1]",
    };
    format!(
        r#""""{arch} trained on {dataset} by nas-host (run {run}); accuracy {accuracy:.4} on the {split} split.

Exported by {exported_by}. Use:

    import model
    net = model.load()                      # reads weights.safetensors next to this file
    logits = net(model.preprocess(images))  # images: uint8 [N, {c}, {h}, {w}] (or [N, {h}, {w}, {c}])

Input normalisation: {normalize_note}.
"""
import pathlib

import torch
import torch.nn.functional as F
from torch import nn

CLASSES = {classes:?}
INPUT_SHAPE = ({c}, {h}, {w})
MEAN = [{mean}]
STD = [{std}]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
{layers}

    def forward(self, x):
{forward}
        return x


def preprocess(images):
    """uint8 pixels [N, C, H, W] or [N, H, W, C] (0..255) to the network's float input."""
    x = torch.as_tensor(images)
    if x.dim() == 3:
        x = x.unsqueeze(1 if INPUT_SHAPE[0] == 1 else 0)
    if x.shape[1] != INPUT_SHAPE[0] and x.shape[-1] == INPUT_SHAPE[0]:
        x = x.permute(0, 3, 1, 2)
    x = x.float() / 255.0
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return (x - mean) / std


def load(directory=None):
    """The trained network, in eval mode."""
    from safetensors.torch import load_file

    directory = pathlib.Path(directory or pathlib.Path(__file__).parent)
    net = Net()
    net.load_state_dict(load_file(directory / "weights.safetensors"))
    return net.eval()
"#,
        arch = card.architecture,
        dataset = card.dataset,
        run = card.run,
        accuracy = card.accuracy,
        split = card.evaluation_split,
        exported_by = card.exported_by,
        classes = card.classes,
        c = card.input_shape[0],
        h = card.input_shape[1],
        w = card.input_shape[2],
        mean = floats(&card.normalization.mean),
        std = floats(&card.normalization.std),
        layers = layers.join("\n"),
        forward = forward.join("\n"),
    )
}
