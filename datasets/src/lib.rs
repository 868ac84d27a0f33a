//! Datasets for nas-host: readers for the official MNIST (IDX) and CIFAR-10 (binary) files, downloads
//! verified by checksum, a small synthetic image dataset generated in code, and the user's own
//! images: folders in torchvision's ImageFolder layout (decoded once, in parallel, into a cache)
//! and NumPy .npz files as Keras ships them.
//!
//! This crate has no libtorch dependency: it hands the host plain `u8` images in NCHW order.
//!
//! # The user's own images
//!
//! - [`DataRef`] names a dataset: `"mnist3".parse()` gives [`DataRef::Named`], a path (anything
//!   with a `/`, ending in `.npz`, or that exists) gives [`DataRef::Path`].
//! - [`load_ref`] / [`load_path`] load it; folders are decoded once (in parallel) into a cache
//!   file under the cache dir given ([`default_cache_dir`]: `$NAS_CACHE_DIR/datasets`, else
//!   `~/.cache/nas-host/datasets`), keyed by the file list, sizes, mtimes and options, and read
//!   back from there while nothing changes ([`DatasetReport::from_cache`]).
//! - [`FolderOptions`] holds the `[dataset]` settings: `channels`, `image_size`,
//!   `test_fraction`, `split_seed`, `skip_bad_images`, `min_images_per_class`.
//! - [`inspect`] / [`inspect_ref`] return a [`DatasetReport`] (classes and counts, sizes and
//!   colours found, memory, problems, checksum) whose `Display` is a table; it never fails on
//!   the dataset's problems, it lists them.
//! - [`DataRef::describe`] gives the input shape and class names cheaply (cache header, else
//!   image headers), for building networks before loading.
//! - [`Split::stratified_subset`] draws a seeded, class-balanced subset (`[train] train_subset`).

mod cache;
mod cifar;
mod dataref;
mod decoded;
mod download;
mod error;
mod folder;
mod memory;
mod mnist;
mod npz;
mod report;
mod subset;
mod synthetic;

use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use dataref::{default_cache_dir, inspect, inspect_ref, load_path, load_ref, DataInfo, DataRef, Loaded};
pub use download::{download_verified, Checksum, RemoteFile};
pub use error::DataError;
pub use folder::{FolderOptions, IMAGE_EXTENSIONS};
pub use memory::available_memory;
pub use report::{human_bytes, ClassCount, ColourCount, DatasetReport, Layout, SizeCount};
pub use synthetic::SyntheticOptions;

/// Images of one split, stored as bytes in NCHW order (one byte per pixel and channel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps only the images whose label is below `num_classes`.
    fn keep_classes_below(self, num_classes: u8, image_len: usize) -> Split {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for (i, &label) in self.labels.iter().enumerate() {
            if label < num_classes {
                labels.push(label);
                images.extend_from_slice(&self.images[i * image_len..(i + 1) * image_len]);
            }
        }
        Split { images, labels }
    }
}

/// A loaded dataset: train and test splits of same-shaped images.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A named dataset, or the folder / .npz file it was read from.
    pub name: DataRef,
    /// The name of each class, by label (`num_classes` of them).
    pub class_names: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub num_classes: usize,
    pub train: Split,
    pub test: Split,
}

impl Dataset {
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The sha256 of the dataset's content (shape, then each split's images and labels), so
    /// that two machines can tell whether they train on the same data whatever their files.
    /// A custom dataset's fingerprint covers its class names but not its path, so the same
    /// images in different folders (or machines) have the same fingerprint.
    pub fn fingerprint(&self) -> String {
        let shape = (self.channels, self.height, self.width);
        fingerprint_of(
            &self.name,
            &self.class_names,
            self.num_classes,
            shape,
            &self.train,
            &self.test,
        )
    }

    /// A dataset with its class names taken from `name` (for the named datasets, and tests
    /// that build one by hand).
    pub fn named(name: DatasetName, train: Split, test: Split) -> Dataset {
        let (channels, height, width) = name.image_shape();
        Dataset {
            name: DataRef::Named(name),
            class_names: name.class_names(),
            channels,
            height,
            width,
            num_classes: name.num_classes(),
            train,
            test,
        }
    }
}

/// [`Dataset::fingerprint`] from its parts (the cache stores it without building a `Dataset`).
pub(crate) fn fingerprint_of(
    name: &DataRef,
    class_names: &[String],
    num_classes: usize,
    (channels, height, width): (usize, usize, usize),
    train: &Split,
    test: &Split,
) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    match name {
        // Unchanged since the first version, so that stored fingerprints still match.
        DataRef::Named(n) => hash.update(format!("{}|{channels}x{height}x{width}|{num_classes}", n.as_str())),
        DataRef::Path(_) => hash.update(format!(
            "custom:{}|{channels}x{height}x{width}|{num_classes}",
            class_names.join("\u{1f}")
        )),
    }
    for split in [train, test] {
        hash.update((split.images.len() as u64).to_le_bytes());
        hash.update(&split.images);
        hash.update((split.labels.len() as u64).to_le_bytes());
        hash.update(&split.labels);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The named datasets nas-host knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// MNIST digits 0–2 (18623 train / 3147 test), the seed's MNIST-3.
    Mnist3,
    /// All ten MNIST digits.
    Mnist,
    /// CIFAR-10 classes 0–4 (25000 / 5000), the seed's CIFAR-5.
    Cifar5,
    /// All of CIFAR-10 (50000 / 10000).
    Cifar10,
    /// Generated shapes in three classes; no files needed.
    Synthetic,
}

impl DatasetName {
    pub const ALL: [DatasetName; 5] = [
        DatasetName::Mnist3,
        DatasetName::Mnist,
        DatasetName::Cifar5,
        DatasetName::Cifar10,
        DatasetName::Synthetic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist3 => "mnist3",
            DatasetName::Mnist => "mnist",
            DatasetName::Cifar5 => "cifar5",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Synthetic => "synthetic",
        }
    }

    /// (channels, height, width) of the images, known without loading anything.
    pub fn image_shape(self) -> (usize, usize, usize) {
        match self {
            DatasetName::Mnist3 | DatasetName::Mnist => (1, 28, 28),
            DatasetName::Cifar5 | DatasetName::Cifar10 => (3, 32, 32),
            DatasetName::Synthetic => synthetic::IMAGE_SHAPE,
        }
    }

    /// The name of each class, by label.
    pub fn class_names(self) -> Vec<String> {
        const CIFAR10: [&str; 10] = [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ];
        match self {
            DatasetName::Mnist3 | DatasetName::Mnist => (0..self.num_classes()).map(|d| d.to_string()).collect(),
            DatasetName::Cifar5 | DatasetName::Cifar10 => {
                CIFAR10[..self.num_classes()].iter().map(|c| c.to_string()).collect()
            }
            DatasetName::Synthetic => ["horizontal bar", "vertical bar", "square outline"]
                .map(String::from)
                .to_vec(),
        }
    }

    pub fn num_classes(self) -> usize {
        match self {
            DatasetName::Mnist3 => 3,
            DatasetName::Mnist | DatasetName::Cifar10 => 10,
            DatasetName::Cifar5 => 5,
            DatasetName::Synthetic => synthetic::NUM_CLASSES,
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!(
                    "unknown dataset '{s}'; expected one of: {}",
                    DatasetName::ALL.map(|d| d.as_str()).join(", ")
                )
            })
    }
}

/// Where data files live and whether missing ones may be downloaded.
#[derive(Debug, Clone)]
pub struct DataSource {
    pub data_dir: PathBuf,
    /// Download missing files from the official sources (verified by checksum) when true.
    pub download: bool,
    /// Overrides the official base URLs (for mirrors and tests): files are fetched from `BASE/NAME`.
    pub mirror: Option<String>,
}

impl DataSource {
    /// `--data-dir`, else `NAS_DATA_DIR`, else `./data`; downloads allowed unless `NAS_OFFLINE=1`.
    pub fn resolve(data_dir: Option<&Path>) -> DataSource {
        let data_dir = data_dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("NAS_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("data"));
        DataSource {
            data_dir,
            download: std::env::var("NAS_OFFLINE").map_or(true, |v| v != "1"),
            mirror: std::env::var("NAS_DATA_MIRROR").ok(),
        }
    }
}

/// Loads a named dataset, downloading missing official files when the source allows it.
pub fn load(name: DatasetName, source: &DataSource) -> Result<Dataset, DataError> {
    let (channels, height, width) = name.image_shape();
    let image_len = channels * height * width;
    let (train, test) = match name {
        DatasetName::Mnist | DatasetName::Mnist3 => mnist::load(source)?,
        DatasetName::Cifar10 | DatasetName::Cifar5 => cifar::load(source)?,
        DatasetName::Synthetic => {
            let data = synthetic::generate(&SyntheticOptions::default());
            return Ok(data);
        }
    };
    let num_classes = name.num_classes();
    let (train, test) = if num_classes < 10 {
        (
            train.keep_classes_below(num_classes as u8, image_len),
            test.keep_classes_below(num_classes as u8, image_len),
        )
    } else {
        (train, test)
    };
    Ok(Dataset {
        name: DataRef::Named(name),
        class_names: name.class_names(),
        channels,
        height,
        width,
        num_classes,
        train,
        test,
    })
}

pub use synthetic::generate as generate_synthetic;

#[doc(hidden)]
pub use mnist::parse_split as __test_parse_mnist;
