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

    /// Whether every conv and pool window fits its input of side `side`, so that the network can
    /// be built at all (the network plan and the model builder assume it). A search space's
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
}
