//! The `[dataset]` options of a folder (or .npz) dataset, the file extensions read as images, the
//! resize filter, and the checks on the options themselves.

use image::imageops::FilterType;

/// Extensions read as images (compared lower-case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "webp"];

/// Image extensions this crate cannot decode: such files are bad images (an error unless
/// `skip_bad_images`), not silently ignored ones, since the user meant them as data.
pub(crate) const UNSUPPORTED_IMAGE_EXTENSIONS: [&str; 14] = [
    "tif", "tiff", "ppm", "pgm", "pbm", "pnm", "heic", "heif", "avif", "ico", "jxl", "svg", "jp2", "dng",
];

/// The filter used to resize images that are not the dataset's size.
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;
pub(crate) const RESIZE_FILTER_NAME: &str = "bilinear (image::imageops::FilterType::Triangle)";

/// A file name's extension, lower-case (none for a dot file such as `.png`).
pub(crate) fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// How a folder (or .npz) dataset is read. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// 1 (grey) or 3 (RGB). Default: 1 when every image is stored grey, else 3.
    pub channels: Option<u8>,
    /// (height, width) every image is resized to. Default: the most common size; images of
    /// other sizes are resized (bilinear) and counted in the report.
    pub image_size: Option<(u32, u32)>,
    /// Fraction of each class drawn into the test split when the folder has no train/ and test/
    /// (default 0.2; at least one image per class goes to each split).
    pub test_fraction: f64,
    /// Seed of that draw: the same seed and files give the same split.
    pub split_seed: u64,
    /// Skip unreadable image files (and report them) instead of failing.
    pub skip_bad_images: bool,
    /// Fewest images a class may have (train and test together; default 5).
    pub min_images_per_class: usize,
    /// Bytes the images may take; `None` reads MemAvailable (and the cgroup limit).
    pub memory_limit: Option<u64>,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            channels: None,
            image_size: None,
            test_fraction: 0.2,
            split_seed: 0,
            skip_bad_images: false,
            min_images_per_class: 5,
            memory_limit: None,
        }
    }
}

impl FolderOptions {
    /// The options that change the decoded bytes, as they enter the cache key.
    pub(crate) fn key_text(&self) -> String {
        format!(
            "channels={:?}|size={:?}|test_fraction={}|seed={}|skip_bad={}",
            self.channels,
            self.image_size,
            self.test_fraction.to_bits(),
            self.split_seed,
            self.skip_bad_images
        )
    }

    /// Problems with the options themselves.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = self.channels {
            if c != 1 && c != 3 {
                problems.push(format!("`[dataset] channels = {c}`: use 1 (grey) or 3 (RGB)"));
            }
        }
        if let Some((h, w)) = self.image_size {
            if h == 0 || w == 0 {
                problems.push(format!(
                    "`[dataset] image_size = [{h}, {w}]`: both sides must be at least 1"
                ));
            }
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            problems.push(format!(
                "`[dataset] test_fraction = {}`: use a fraction between 0 and 1 (e.g. 0.2)",
                self.test_fraction
            ));
        }
        problems
    }
}
