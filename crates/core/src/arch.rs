//! Layers and architectures, with the one canonical text form used everywhere (CLI, logs, cache
//! keys): `conv(32,3) pool(5,3) fc(64)` — conv(filters,kernel), pool(size,stride), fc(units). The
//! final classifier layer is implied.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::netplan::NetworkPlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Layer {
    Conv { filters: u32, kernel: u32 },
    Pool { size: u32, stride: u32 },
    Fc { units: u32 },
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Conv { filters, kernel } => write!(f, "conv({filters},{kernel})"),
            Layer::Pool { size, stride } => write!(f, "pool({size},{stride})"),
            Layer::Fc { units } => write!(f, "fc({units})"),
        }
    }
}

impl FromStr for Layer {
    type Err = String;
    fn from_str(s: &str) -> Result<Layer, String> {
        let s = s.trim();
        let bad = || format!("cannot parse layer `{s}`: expected conv(FILTERS,KERNEL), pool(SIZE,STRIDE) or fc(UNITS)");
        let (name, rest) = s.split_once('(').ok_or_else(bad)?;
        let args = rest.strip_suffix(')').ok_or_else(bad)?;
        let numbers: Vec<u32> = args
            .split(',')
            .map(|a| a.trim().parse::<u32>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if numbers.contains(&0) {
            return Err(format!("layer `{s}` has a zero size"));
        }
        match (name.trim().to_ascii_lowercase().as_str(), numbers.as_slice()) {
            ("conv", [filters, kernel]) => Ok(Layer::Conv {
                filters: *filters,
                kernel: *kernel,
            }),
            ("pool", [size, stride]) => Ok(Layer::Pool {
                size: *size,
                stride: *stride,
            }),
            ("fc", [units]) => Ok(Layer::Fc { units: *units }),
            _ => Err(bad()),
        }
    }
}

/// Side of a square feature map after a conv or pool window: floor((n − k) / s) + 1 (no padding).
pub fn output_size(n: u32, kernel: u32, stride: u32) -> u32 {
    (n - kernel) / stride + 1
}

impl Layer {
    /// The side of the feature map after this layer for an input of side `side`: conv has stride
    /// 1, pool its own stride; fc layers have no feature map and leave it unchanged.
    pub fn output_side(&self, side: u32) -> u32 {
        match *self {
            Layer::Conv { kernel, .. } => output_size(side, kernel, 1),
            Layer::Pool { size, stride } => output_size(side, size, stride),
            Layer::Fc { .. } => side,
        }
    }
}

/// A network as its list of layers (the classifier is implied).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Architecture {
    pub layers: Vec<Layer>,
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.layers.iter().map(Layer::to_string).collect();
        f.write_str(&parts.join(" "))
    }
}

impl FromStr for Architecture {
    type Err = String;
    /// Parses the canonical form; whitespace between layers is free. Whether the architecture is
    /// *valid* for a search space is `Mdp::validate`'s job.
    fn from_str(s: &str) -> Result<Architecture, String> {
        let mut layers = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let end = rest
                .find(')')
                .ok_or_else(|| format!("cannot parse `{rest}`: missing `)`"))?;
            layers.push(rest[..=end].parse()?);
            rest = rest[end + 1..].trim_start();
        }
        if layers.is_empty() {
            return Err("empty architecture: give at least one layer, e.g. \"conv(32,3) pool(5,3)\"".into());
        }
        Ok(Architecture { layers })
    }
}

impl Architecture {
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Whether every conv and pool window fits its input of side `side`, so that the network can
    /// be built at all ([`Architecture::summary`] and `model::build` assume it). A search space's
    /// own rules (`Mdp::validate`) are stricter.
    pub fn fits(&self, mut side: u32) -> bool {
        for layer in &self.layers {
            let window = match *layer {
                Layer::Conv { kernel, .. } => kernel,
                Layer::Pool { size, .. } => size,
                Layer::Fc { .. } => 0,
            };
            if window > side {
                return false;
            }
            side = layer.output_side(side);
        }
        true
    }

    /// Trainable parameters of the network built from this architecture (with the classifier).
    pub fn param_count(&self, input: (usize, usize, usize), num_classes: usize) -> u64 {
        self.summary(input, num_classes).total_params()
    }

    /// The network layer by layer, as [`NetworkPlan`] plans it (and the model builder builds it):
    /// each layer's output shape, parameters and multiply-adds, the classifier last.
    pub fn summary(&self, input: (usize, usize, usize), num_classes: usize) -> Summary {
        let plan = NetworkPlan::new(self, input, num_classes, false);
        Summary {
            input: vec![plan.input.0, plan.input.1, plan.input.2],
            rows: plan
                .layers
                .iter()
                .map(|l| SummaryRow {
                    kind: l.kind(),
                    layer: l.label(),
                    output: l.output.clone(),
                    params: l.params,
                    mult_adds: l.mult_adds,
                })
                .collect(),
        }
    }
}

/// One layer of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// The PyTorch module it becomes: Conv2d, MaxPool2d, Linear.
    pub kind: &'static str,
    /// The layer in canonical form, or "classifier".
    pub layer: String,
    /// Output shape of one example: [channels, height, width], or [features].
    pub output: Vec<u64>,
    pub params: u64,
    /// Multiply-adds for one example (a conv: weights × output positions; a linear layer: its
    /// weights; biases and pooling count none), as torchinfo counts them.
    pub mult_adds: u64,
}

/// A network's layer table in the manner of torchinfo's `summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub input: Vec<u64>,
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    pub fn total_params(&self) -> u64 {
        self.rows.iter().map(|r| r.params).sum()
    }

    pub fn total_mult_adds(&self) -> u64 {
        self.rows.iter().map(|r| r.mult_adds).sum()
    }
}

fn shape(dims: &[u64]) -> String {
    format!("[{}]", dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
}

/// `1234567` as `1,234,567`, as torchinfo prints counts.
pub fn with_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = "=".repeat(72);
        let thin = "-".repeat(72);
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:<30}{:>16}{:>12}{:>14}",
            "Layer (type)", "Output Shape", "Param #", "Mult-Adds"
        )?;
        writeln!(f, "{rule}")?;
        writeln!(f, "{:<30}{:>16}{:>12}{:>14}", "input", shape(&self.input), "--", "--")?;
        for row in &self.rows {
            let count = |n: u64| if n == 0 { "--".to_string() } else { with_thousands(n) };
            writeln!(
                f,
                "{:<30}{:>16}{:>12}{:>14}",
                format!("{} ({})", row.layer, row.kind),
                shape(&row.output),
                count(row.params),
                count(row.mult_adds)
            )?;
        }
        writeln!(f, "{rule}")?;
        writeln!(f, "Total params: {}", with_thousands(self.total_params()))?;
        writeln!(f, "Trainable params: {}", with_thousands(self.total_params()))?;
        writeln!(
            f,
            "Total mult-adds (per example): {}",
            with_thousands(self.total_mult_adds())
        )?;
        writeln!(f, "{thin}")?;
        // float32 parameters, as libtorch trains them.
        writeln!(f, "Params size (MB): {:.2}", self.total_params() as f64 * 4.0 / 1e6)?;
        write!(f, "{rule}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_round_trips() {
        let text = "conv(32,3) pool(5,3) fc(64)";
        let arch: Architecture = text.parse().unwrap();
        assert_eq!(arch.to_string(), text);
        let loose: Architecture = " CONV( 32 , 3 )pool(5,3)   fc(64) ".parse().unwrap();
        assert_eq!(loose, arch);
    }

    #[test]
    fn parse_errors_are_clear() {
        assert!("".parse::<Architecture>().unwrap_err().contains("empty"));
        assert!("conv(32)"
            .parse::<Architecture>()
            .unwrap_err()
            .contains("conv(FILTERS,KERNEL)"));
        assert!("dense(3)".parse::<Architecture>().is_err());
        assert!("conv(0,3)".parse::<Architecture>().unwrap_err().contains("zero"));
        assert!("conv(32,3".parse::<Architecture>().unwrap_err().contains("missing"));
    }

    #[test]
    fn summary_by_hand() {
        // CIFAR: 3x32x32 -> conv 3x3 (32) -> 32x30x30 -> pool 5/3 -> 32x9x9 -> fc 64 -> 5 classes.
        let arch: Architecture = "conv(32,3) pool(5,3) fc(64)".parse().unwrap();
        let s = arch.summary((3, 32, 32), 5);
        let rows: Vec<(&str, Vec<u64>, u64, u64)> = s
            .rows
            .iter()
            .map(|r| (r.kind, r.output.clone(), r.params, r.mult_adds))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("Conv2d", vec![32, 30, 30], 896, 27 * 32 * 900),
                ("MaxPool2d", vec![32, 9, 9], 0, 0),
                ("Linear", vec![64], (2592 + 1) * 64, 2592 * 64),
                ("Linear", vec![5], 65 * 5, 64 * 5),
            ]
        );
        let text = s.to_string();
        assert!(text.contains("Total params: 167,173"), "{text}");
        assert!(
            text.contains("conv(32,3) (Conv2d)") && text.contains("[32, 30, 30]"),
            "{text}"
        );
        assert_eq!(with_thousands(1_234_567), "1,234,567");
        assert_eq!(with_thousands(999), "999");
    }

    #[test]
    fn windows_must_fit_their_input() {
        assert!("conv(32,5) pool(5,3) conv(10,3)"
            .parse::<Architecture>()
            .unwrap()
            .fits(28));
        // 28 → 8 → 2: a third 5×5 pool has nothing to slide over.
        assert!(!"pool(5,3) pool(5,3) pool(5,3)"
            .parse::<Architecture>()
            .unwrap()
            .fits(28));
        assert!(!"conv(10,5)".parse::<Architecture>().unwrap().fits(4));
    }

    #[test]
    fn param_count_by_hand() {
        // conv(32,3) on 3x32x32: 32*(27+1)=896; -> 30x30, pool(5,3) -> 9x9; classifier 32*81*5+5 = 12965.
        let arch: Architecture = "conv(32,3) pool(5,3)".parse().unwrap();
        assert_eq!(arch.param_count((3, 32, 32), 5), 896 + 12965);
    }
}
