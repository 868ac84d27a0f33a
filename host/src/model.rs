//! Builds the libtorch network for an architecture: conv → activation, max-pool, fc → activation,
//! and a final linear classifier.

use tch::nn;

use crate::arch::{Architecture, Layer};

/// The nonlinearity after conv and fc layers. The seed's networks had none (`None`); see
/// `configs/seed-exact.toml` for its whole protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    None,
}

/// Builds the network under `vs`. `input` is (channels, height, width).
///
/// On CPU, oneDNN's convolutions and ATen's max-pooling are faster on channels-last (NHWC)
/// activations: about 20% per epoch on CIFAR-5 (`make bench`). Only the memory layout changes —
/// the logical NCHW shape and so the computed function stay the same (tested). Not measured on
/// GPUs, so they keep libtorch's default layout.
pub fn build(
    vs: &nn::Path,
    arch: &Architecture,
    input: (usize, usize, usize),
    num_classes: usize,
    activation: Activation,
) -> nn::Sequential {
    let channels_last = vs.device() == tch::Device::Cpu;
    build_with_layout(vs, arch, input, num_classes, activation, channels_last)
}

/// [`build`] with the activation layout chosen by the caller.
pub fn build_with_layout(
    vs: &nn::Path,
    arch: &Architecture,
    input: (usize, usize, usize),
    num_classes: usize,
    activation: Activation,
    channels_last: bool,
) -> nn::Sequential {
    let (mut channels, mut side) = (input.0 as i64, input.1 as u32);
    let mut features: Option<i64> = None;
    let mut net = nn::seq();
    if channels_last && arch.layers.iter().any(|l| matches!(l, Layer::Conv { .. })) {
        net = net.add_fn(to_channels_last);
    }
    let relu = activation == Activation::Relu;
    for (i, layer) in arch.layers.iter().enumerate() {
        let name = format!("l{i}");
        match *layer {
            Layer::Conv { filters, kernel } => {
                let fan_in = channels * i64::from(kernel) * i64::from(kernel);
                let conv = nn::conv2d(
                    vs / name,
                    channels,
                    i64::from(filters),
                    i64::from(kernel),
                    nn::ConvConfig {
                        ws_init: pytorch_default_init(fan_in),
                        bs_init: pytorch_default_init(fan_in),
                        ..Default::default()
                    },
                );
                net = net.add(conv);
                if relu {
                    net = net.add_fn(relu_in_place);
                }
                channels = i64::from(filters);
            }
            Layer::Pool { size, stride } => {
                let (k, s) = (i64::from(size), i64::from(stride));
                net = net.add_fn(move |x| x.max_pool2d([k, k], [s, s], [0, 0], [1, 1], false));
            }
            Layer::Fc { units } => {
                let inputs = match features {
                    Some(f) => f,
                    None => {
                        net = net.add_fn(|x| x.flatten(1, -1));
                        channels * i64::from(side) * i64::from(side)
                    }
                };
                net = net.add(linear(vs / name, inputs, i64::from(units)));
                if relu {
                    net = net.add_fn(relu_in_place);
                }
                features = Some(i64::from(units));
            }
        }
        side = layer.output_side(side);
    }
    let inputs = match features {
        Some(f) => f,
        None => {
            net = net.add_fn(|x| x.flatten(1, -1));
            channels * i64::from(side) * i64::from(side)
        }
    };
    net.add(linear(vs / "classifier", inputs, num_classes as i64))
}

/// PyTorch's default initialisation of `nn.Conv2d` and `nn.Linear` (`reset_parameters`): weights
/// from Kaiming-uniform with a = √5, which is U(−1/√fan_in, 1/√fan_in), and biases from the same
/// range. The seed trained with these; tch's own default (Kaiming-uniform with the ReLU gain, zero
/// conv biases) draws weights 2.45× larger, and with Adam at lr 0.01 many children with fc layers
/// then collapse to chance (BENCHMARKS.md, "Collapse").
pub fn pytorch_default_init(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

fn linear(vs: nn::Path, inputs: i64, outputs: i64) -> nn::Linear {
    nn::linear(
        vs,
        inputs,
        outputs,
        nn::LinearConfig {
            ws_init: pytorch_default_init(inputs),
            bs_init: Some(pytorch_default_init(inputs)),
            bias: true,
        },
    )
}

/// ReLU written over its input: conv and linear layers do not need their output for their own
/// backward pass, so this saves allocating and writing a second activation map per layer.
fn relu_in_place(x: &tch::Tensor) -> tch::Tensor {
    x.shallow_clone().relu_()
}

/// The same tensor laid out channels-last in memory (strides N, 1, W·C, C).
fn to_channels_last(x: &tch::Tensor) -> tch::Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}
