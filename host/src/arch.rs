//! Layers and architectures, with the one canonical text form used everywhere (CLI, logs, cache
//! keys): `conv(32,3) pool(5,3) fc(64)` — conv(filters,kernel), pool(size,stride), fc(units). The
//! final classifier layer is implied.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

    /// Trainable parameters of the network built from this architecture (with the classifier).
    pub fn param_count(&self, input: (usize, usize, usize), num_classes: usize) -> u64 {
        let (mut channels, mut side) = (input.0 as u64, input.1 as u32);
        let mut features: Option<u64> = None;
        let mut total = 0u64;
        for layer in &self.layers {
            match *layer {
                Layer::Conv { filters, kernel } => {
                    let k = u64::from(kernel);
                    total += (channels * k * k + 1) * u64::from(filters);
                    channels = u64::from(filters);
                }
                Layer::Pool { .. } => {}
                Layer::Fc { units } => {
                    let inputs = features.unwrap_or(channels * u64::from(side) * u64::from(side));
                    total += (inputs + 1) * u64::from(units);
                    features = Some(u64::from(units));
                }
            }
            side = layer.output_side(side);
        }
        let inputs = features.unwrap_or(channels * u64::from(side) * u64::from(side));
        total + (inputs + 1) * num_classes as u64
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
    fn param_count_by_hand() {
        // conv(32,3) on 3x32x32: 32*(27+1)=896; -> 30x30, pool(5,3) -> 9x9; classifier 32*81*5+5 = 12965.
        let arch: Architecture = "conv(32,3) pool(5,3)".parse().unwrap();
        assert_eq!(arch.param_count((3, 32, 32), 5), 896 + 12965);
    }
}
