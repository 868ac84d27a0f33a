//! The plan of the network an architecture becomes: its operations in order, with each layer's
//! output shape, parameters and multiply-adds. The one layer walk of nas-host — the libtorch model
//! builder, the ONNX and `model.py` exporters and the `show-arch` summary all read it, so where
//! the flatten goes, where a ReLU follows and what shape each layer has are decided here alone.

use crate::arch::{Architecture, Layer};

/// One operation of the forward pass, in PyTorch terms. Parameterised operations carry the name
/// their tensors have in a checkpoint (`{name}.weight`, `{name}.bias`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// 2-d convolution with stride 1 and no padding; weight [filters, in_channels, kernel, kernel].
    Conv {
        name: String,
        in_channels: u64,
        filters: u64,
        kernel: u64,
    },
    /// Max pooling with no padding.
    MaxPool {
        size: u64,
        stride: u64,
    },
    /// [N, C, H, W] feature maps to [N, C·H·W] features, before the first linear layer.
    Flatten,
    /// Fully connected layer; weight [outputs, inputs].
    Linear {
        name: String,
        inputs: u64,
        outputs: u64,
    },
    Relu,
}

/// One layer of the plan: an architecture's layer, or the implied classifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    /// The architecture's layer; `None` for the classifier.
    pub layer: Option<Layer>,
    /// The operations this layer adds (a flatten before the first linear layer, a ReLU after a
    /// conv or fc layer when the network has them).
    pub ops: Vec<Op>,
    /// Output shape of one example: [channels, height, width], or [features].
    pub output: Vec<u64>,
    pub params: u64,
    /// Multiply-adds for one example (a conv: weights × output positions; a linear layer: its
    /// weights; biases and pooling count none), as torchinfo counts them.
    pub mult_adds: u64,
}

impl PlannedLayer {
    /// The PyTorch module the layer is: Conv2d, MaxPool2d or Linear.
    pub fn kind(&self) -> &'static str {
        match self.layer {
            Some(Layer::Conv { .. }) => "Conv2d",
            Some(Layer::Pool { .. }) => "MaxPool2d",
            Some(Layer::Fc { .. }) | None => "Linear",
        }
    }

    /// The layer in canonical form, or "classifier".
    pub fn label(&self) -> String {
        self.layer.map_or_else(|| "classifier".to_string(), |l| l.to_string())
    }
}

/// The network for one input shape and class count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    /// (channels, height, width) of one input.
    pub input: (u64, u64, u64),
    /// The architecture's layers in order, then the classifier.
    pub layers: Vec<PlannedLayer>,
}

impl NetworkPlan {
    /// Plans `arch` for `input` (channels, height, width) and `num_classes`; `relu` puts a ReLU
    /// after every conv and fc layer (not after the classifier). The architecture's windows must
    /// fit their inputs ([`Architecture::fits`]).
    pub fn new(arch: &Architecture, input: (usize, usize, usize), num_classes: usize, relu: bool) -> NetworkPlan {
        let (mut channels, mut side) = (input.0 as u64, input.1 as u32);
        // Set once a linear layer has flattened the feature map.
        let mut features: Option<u64> = None;
        let mut layers = Vec::with_capacity(arch.layers.len() + 1);
        let mut linear = |layer: Option<Layer>, name: String, channels: u64, side: u32, outputs: u64| {
            let mut ops = Vec::new();
            let inputs = match features {
                Some(f) => f,
                None => {
                    ops.push(Op::Flatten);
                    channels * u64::from(side) * u64::from(side)
                }
            };
            features = Some(outputs);
            ops.push(Op::Linear { name, inputs, outputs });
            if relu && layer.is_some() {
                ops.push(Op::Relu);
            }
            PlannedLayer {
                layer,
                ops,
                output: vec![outputs],
                params: (inputs + 1) * outputs,
                mult_adds: inputs * outputs,
            }
        };
        for (i, &layer) in arch.layers.iter().enumerate() {
            let out_side = layer.output_side(side);
            let spatial = u64::from(out_side) * u64::from(out_side);
            let planned = match layer {
                Layer::Conv { filters, kernel } => {
                    let (k, f) = (u64::from(kernel), u64::from(filters));
                    let mut ops = vec![Op::Conv {
                        name: format!("l{i}"),
                        in_channels: channels,
                        filters: f,
                        kernel: k,
                    }];
                    if relu {
                        ops.push(Op::Relu);
                    }
                    let planned = PlannedLayer {
                        layer: Some(layer),
                        ops,
                        output: vec![f, u64::from(out_side), u64::from(out_side)],
                        params: (channels * k * k + 1) * f,
                        mult_adds: channels * k * k * f * spatial,
                    };
                    channels = f;
                    planned
                }
                Layer::Pool { size, stride } => PlannedLayer {
                    layer: Some(layer),
                    ops: vec![Op::MaxPool {
                        size: u64::from(size),
                        stride: u64::from(stride),
                    }],
                    output: vec![channels, u64::from(out_side), u64::from(out_side)],
                    params: 0,
                    mult_adds: 0,
                },
                Layer::Fc { units } => linear(Some(layer), format!("l{i}"), channels, side, u64::from(units)),
            };
            layers.push(planned);
            side = out_side;
        }
        layers.push(linear(None, "classifier".into(), channels, side, num_classes as u64));
        NetworkPlan {
            input: (input.0 as u64, input.1 as u64, input.2 as u64),
            layers,
        }
    }

    /// Every operation of the forward pass, in order.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.layers.iter().flat_map(|l| &l.ops)
    }

    pub fn total_params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    pub fn total_mult_adds(&self) -> u64 {
        self.layers.iter().map(|l| l.mult_adds).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_by_hand() {
        // MNIST: 1x28x28 -> conv 5x5 (10) -> 10x24x24 -> pool 2/2 -> 10x12x12 -> fc 64 -> fc 32 -> 3.
        let arch: Architecture = "conv(10,5) pool(2,2) fc(64) fc(32)".parse().unwrap();
        let plan = NetworkPlan::new(&arch, (1, 28, 28), 3, true);
        let ops: Vec<Op> = plan.ops().cloned().collect();
        assert_eq!(
            ops,
            vec![
                Op::Conv {
                    name: "l0".into(),
                    in_channels: 1,
                    filters: 10,
                    kernel: 5
                },
                Op::Relu,
                Op::MaxPool { size: 2, stride: 2 },
                Op::Flatten,
                Op::Linear {
                    name: "l2".into(),
                    inputs: 1440,
                    outputs: 64
                },
                Op::Relu,
                Op::Linear {
                    name: "l3".into(),
                    inputs: 64,
                    outputs: 32
                },
                Op::Relu,
                Op::Linear {
                    name: "classifier".into(),
                    inputs: 32,
                    outputs: 3
                },
            ]
        );
        let outputs: Vec<&[u64]> = plan.layers.iter().map(|l| l.output.as_slice()).collect();
        assert_eq!(outputs, [&[10, 24, 24][..], &[10, 12, 12], &[64], &[32], &[3]]);
        assert_eq!(plan.total_params(), 260 + 1441 * 64 + 65 * 32 + 33 * 3);
        assert_eq!(
            plan.layers.iter().map(PlannedLayer::kind).collect::<Vec<_>>(),
            ["Conv2d", "MaxPool2d", "Linear", "Linear", "Linear"]
        );
        assert_eq!(plan.layers[4].label(), "classifier");
    }

    #[test]
    fn without_fc_layers_the_classifier_flattens_and_nothing_gets_relu_without_the_activation() {
        let arch: Architecture = "conv(32,3) pool(5,3)".parse().unwrap();
        let plan = NetworkPlan::new(&arch, (3, 32, 32), 5, false);
        assert!(!plan.ops().any(|op| *op == Op::Relu));
        assert_eq!(plan.layers[2].ops[0], Op::Flatten);
        // The classifier reads 32×9×9 features.
        assert_eq!(plan.layers[2].params, (32 * 81 + 1) * 5);
    }
}
