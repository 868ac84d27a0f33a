//! Builds the libtorch network an architecture plans ([`NetworkPlan`]): conv → activation,
//! max-pool, fc → activation, and a final linear classifier.

use tch::nn;

use nas_config::Activation;
use nas_core::arch::Architecture;
use nas_core::netplan::{NetworkPlan, Op};

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
    let plan = NetworkPlan::new(arch, input, num_classes, activation == Activation::Relu);
    let mut net = nn::seq();
    if channels_last && plan.ops().any(|op| matches!(op, Op::Conv { .. })) {
        net = net.add_fn(to_channels_last);
    }
    add_ops(vs, net, plan.ops())
}

/// Appends `ops` to `net`, each as the model builder builds it (also used to time single layers
/// for a latency table).
pub fn add_ops<'a>(vs: &nn::Path, mut net: nn::Sequential, ops: impl Iterator<Item = &'a Op>) -> nn::Sequential {
    for op in ops {
        net = match op {
            Op::Conv {
                name,
                in_channels,
                filters,
                kernel,
            } => {
                let (c, f, k) = (*in_channels as i64, *filters as i64, *kernel as i64);
                let fan_in = c * k * k;
                net.add(nn::conv2d(
                    vs / name.as_str(),
                    c,
                    f,
                    k,
                    nn::ConvConfig {
                        ws_init: pytorch_default_init(fan_in),
                        bs_init: pytorch_default_init(fan_in),
                        ..Default::default()
                    },
                ))
            }
            Op::Relu => net.add_fn(relu_in_place),
            &Op::MaxPool { size, stride } => {
                let (k, s) = (size as i64, stride as i64);
                net.add_fn(move |x| x.max_pool2d([k, k], [s, s], [0, 0], [1, 1], false))
            }
            Op::Flatten => net.add_fn(|x| x.flatten(1, -1)),
            Op::Linear { name, inputs, outputs } => {
                net.add(linear(vs / name.as_str(), *inputs as i64, *outputs as i64))
            }
        };
    }
    net
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
pub fn to_channels_last(x: &tch::Tensor) -> tch::Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}
