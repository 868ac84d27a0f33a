//! The fixed-length encoding of an architecture that the surrogate reads.

use nas_core::arch::{Architecture, Layer};

use crate::{Result, TableError};

/// Features of each layer slot: kind one-hot (conv, pool, fc, none), conv filters, conv kernel,
/// pool size, pool stride, fc units, and the feature-map side after the slot.
const SLOT_FEATURES: usize = 10;
/// Features of the whole: depth, log parameter count, log multiply-adds.
const GLOBAL_FEATURES: usize = 3;

/// Encodes architectures of one search space and input as fixed-length vectors: `max_depth`
/// slots of ten features each — kind one-hot (conv, pool, fc, none), filters, kernel, pool size,
/// pool stride, fc units, and the feature-map side after the slot; a slot past the last layer is
/// `none` with zeros — then depth and the log of the parameter and multiply-add counts for
/// `input` and `num_classes`.
///
/// Every value is scaled by a fixed constant to about [0, 1] — sizes on a log₂ scale (filters and
/// units ÷ 10, so 1024 → 1), windows ÷ 10, sides ÷ the input side, counts as ln ÷ ln 10⁹ — not by
/// statistics of a table, so one architecture encodes the same whatever table is loaded. (Trees
/// are indifferent to scale; a fixed one keeps encodings comparable.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    /// Layer slots: the search space's `max_depth`.
    pub max_depth: usize,
    /// (channels, height, width) of one example; height is the feature-map side.
    pub input: (usize, usize, usize),
    pub num_classes: usize,
}

impl Encoder {
    pub fn new(max_depth: usize, input: (usize, usize, usize), num_classes: usize) -> Encoder {
        Encoder {
            max_depth,
            input,
            num_classes,
        }
    }

    /// Length of every encoding.
    pub fn len(&self) -> usize {
        self.max_depth * SLOT_FEATURES + GLOBAL_FEATURES
    }

    /// Whether encodings are empty (never: the global features are always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The encoding of `arch`, of length [`Encoder::len`]. Fails for an architecture deeper than
    /// `max_depth` or whose windows do not fit the input (it could not have been trained).
    pub fn encode(&self, arch: &Architecture) -> Result<Vec<f64>> {
        let error = |reason: String| TableError::Encode {
            architecture: arch.to_string(),
            reason,
        };
        if arch.depth() > self.max_depth {
            return Err(error(format!(
                "{} layers, more than the encoding's {} slots",
                arch.depth(),
                self.max_depth
            )));
        }
        let input_side = self.input.1 as u32;
        if !arch.fits(input_side) {
            return Err(error(format!(
                "a window is larger than its input (input side {input_side})"
            )));
        }
        let log2 = |v: u32| f64::from(v).log2() / 10.0;
        let mut features = Vec::with_capacity(self.len());
        let mut side = input_side;
        for slot in 0..self.max_depth {
            let mut f = [0.0; SLOT_FEATURES];
            match arch.layers.get(slot) {
                None => f[3] = 1.0,
                Some(layer) => {
                    match *layer {
                        Layer::Conv { filters, kernel } => {
                            f[0] = 1.0;
                            f[4] = log2(filters);
                            f[5] = f64::from(kernel) / 10.0;
                        }
                        Layer::Pool { size, stride } => {
                            f[1] = 1.0;
                            f[6] = f64::from(size) / 10.0;
                            f[7] = f64::from(stride) / 10.0;
                        }
                        Layer::Fc { units } => {
                            f[2] = 1.0;
                            f[8] = log2(units);
                        }
                    }
                    side = layer.output_side(side);
                }
            }
            f[9] = f64::from(side) / f64::from(input_side.max(1));
            features.extend_from_slice(&f);
        }
        let summary = arch.summary(self.input, self.num_classes);
        let log_count = |n: u64| (n as f64).ln_1p() / 1e9f64.ln();
        features.push(arch.depth() as f64 / self.max_depth.max(1) as f64);
        features.push(log_count(summary.total_params()));
        features.push(log_count(summary.total_mult_adds()));
        debug_assert_eq!(features.len(), self.len());
        Ok(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(s: &str) -> Architecture {
        s.parse().unwrap()
    }

    #[test]
    fn encoding_has_fixed_length_and_tells_layers_apart() {
        let e = Encoder::new(8, (3, 32, 32), 10);
        let a = e.encode(&arch("conv(10,3)")).unwrap();
        let b = e.encode(&arch("conv(20,3)")).unwrap();
        let c = e
            .encode(&arch("conv(32,5) pool(5,3) conv(64,3) pool(2,2) fc(512) fc(64)"))
            .unwrap();
        assert_eq!(a.len(), e.len());
        assert_eq!(b.len(), e.len());
        assert_eq!(c.len(), e.len());
        assert_ne!(a, b);
        assert_ne!(
            e.encode(&arch("pool(5,3)")).unwrap(),
            e.encode(&arch("pool(3,2)")).unwrap()
        );
        assert_ne!(e.encode(&arch("fc(64)")).unwrap(), e.encode(&arch("fc(128)")).unwrap());
        // Same architecture, same encoding.
        assert_eq!(a, e.encode(&arch("conv( 10 , 3 )")).unwrap());
        assert!(c.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{c:?}");
    }

    #[test]
    fn unencodable_architectures_are_errors() {
        let e = Encoder::new(2, (3, 32, 32), 10);
        let message = e
            .encode(&arch("conv(10,3) conv(10,3) conv(10,3)"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("conv(10,3) conv(10,3) conv(10,3)") && message.contains("2 slots"),
            "{message}"
        );
        let small = Encoder::new(8, (1, 4, 4), 10);
        assert!(small
            .encode(&arch("conv(10,5)"))
            .unwrap_err()
            .to_string()
            .contains("larger"));
    }
}
