//! An architecture's layer table in the manner of torchinfo's `summary` (`nas-host show-arch`),
//! read off its [`NetworkPlan`].

use std::fmt;

use serde::Serialize;

use crate::arch::Architecture;
use crate::netplan::NetworkPlan;

impl Architecture {
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
    fn param_count_by_hand() {
        // conv(32,3) on 3x32x32: 32*(27+1)=896; -> 30x30, pool(5,3) -> 9x9; classifier 32*81*5+5 = 12965.
        let arch: Architecture = "conv(32,3) pool(5,3)".parse().unwrap();
        assert_eq!(arch.param_count((3, 32, 32), 5), 896 + 12965);
    }
}
