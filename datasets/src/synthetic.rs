//! A small synthetic image dataset: three classes of noisy shapes on a 28×28 grey canvas
//! (0 = horizontal bar, 1 = vertical bar, 2 = hollow square), at random positions and sizes.
//! Seeded, generated in milliseconds, and learnable by a small CNN in one epoch; tests and offline
//! demos use it. Its images have MNIST's shape, so every MNIST architecture is valid on it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Dataset, DatasetName, Split};

pub(crate) const IMAGE_SHAPE: (usize, usize, usize) = (1, 28, 28);
pub(crate) const NUM_CLASSES: usize = 3;

#[derive(Debug, Clone)]
pub struct SyntheticOptions {
    pub train: usize,
    pub test: usize,
    pub seed: u64,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions {
            train: 3000,
            test: 600,
            seed: 7,
        }
    }
}

fn draw(rng: &mut ChaCha8Rng, class: u8, canvas: &mut [u8]) {
    let (_, h, w) = IMAGE_SHAPE;
    for px in canvas.iter_mut() {
        *px = rng.random_range(0..60);
    }
    let size = rng.random_range(8..16usize);
    let thick = rng.random_range(2..4usize);
    let top = rng.random_range(0..h - size);
    let left = rng.random_range(0..w - size);
    let mut set = |y: usize, x: usize| canvas[y * w + x] = rng.random_range(180..=255);
    match class {
        0 => (top..top + thick).for_each(|y| (left..left + size).for_each(|x| set(y, x))),
        1 => (top..top + size).for_each(|y| (left..left + thick).for_each(|x| set(y, x))),
        _ => {
            for y in top..top + size {
                for x in left..left + size {
                    let edge = y < top + 2 || y >= top + size - 2 || x < left + 2 || x >= left + size - 2;
                    if edge {
                        set(y, x);
                    }
                }
            }
        }
    }
}

fn split(rng: &mut ChaCha8Rng, n: usize) -> Split {
    let (c, h, w) = IMAGE_SHAPE;
    let mut images = vec![0u8; n * c * h * w];
    let mut labels = Vec::with_capacity(n);
    for (i, canvas) in images.chunks_exact_mut(c * h * w).enumerate() {
        let class = (i % NUM_CLASSES) as u8;
        draw(rng, class, canvas);
        labels.push(class);
    }
    Split { images, labels }
}

/// Generates the synthetic dataset; the same options give the same bytes.
pub fn generate(options: &SyntheticOptions) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let (channels, height, width) = IMAGE_SHAPE;
    Dataset {
        name: crate::DataRef::Named(DatasetName::Synthetic),
        class_names: DatasetName::Synthetic.class_names(),
        channels,
        height,
        width,
        num_classes: NUM_CLASSES,
        train: split(&mut rng, options.train),
        test: split(&mut rng, options.test),
    }
}
