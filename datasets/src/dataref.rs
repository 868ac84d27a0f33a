//! Naming a dataset: one of the named ones, or the path of a folder or .npz file; and the entry
//! points that load, inspect or describe either.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::decoded::{Mode, Outcome};
use crate::folder::{self, FolderOptions};
use crate::report::{ClassCount, ColourCount, DatasetReport, Layout, SizeCount};
use crate::{npz, DataError, DataSource, Dataset, DatasetName, Split};

/// A dataset as the user names it: `mnist3`, `cifar5`, … or a path (`./flowers`, `data.npz`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataRef {
    Named(DatasetName),
    /// A folder in ImageFolder layout, or a .npz file.
    Path(PathBuf),
}

impl From<DatasetName> for DataRef {
    fn from(name: DatasetName) -> Self {
        DataRef::Named(name)
    }
}

impl DataRef {
    /// The named dataset, if this is one.
    pub fn named(&self) -> Option<DatasetName> {
        match self {
            DataRef::Named(n) => Some(*n),
            DataRef::Path(_) => None,
        }
    }

    /// The name as shown and stored: "mnist3", or the path as given.
    pub fn label(&self) -> String {
        self.to_string()
    }

    fn is_npz(path: &Path) -> bool {
        path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"))
    }

    /// Shape and class names, cheaply: known for a named dataset; for a folder, read from the
    /// decode cache when it is current, else from the image headers (nothing is decoded); for
    /// an .npz, from its array headers and labels. Fails only when the path cannot be read as a
    /// dataset at all (problems such as a too-small class show up at load).
    pub fn describe(&self, options: &FolderOptions, cache_dir: Option<&Path>) -> Result<DataInfo, DataError> {
        match self {
            DataRef::Named(n) => {
                let (channels, height, width) = n.image_shape();
                Ok(DataInfo {
                    channels,
                    height,
                    width,
                    class_names: n.class_names(),
                })
            }
            DataRef::Path(path) => {
                let report = run(path, options, cache_dir, Mode::Describe)?.report;
                Ok(DataInfo {
                    channels: report.channels,
                    height: report.height,
                    width: report.width,
                    class_names: report.class_names(),
                })
            }
        }
    }
}

impl fmt::Display for DataRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataRef::Named(n) => f.write_str(n.as_str()),
            DataRef::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl FromStr for DataRef {
    type Err = String;

    /// A named dataset's name (any case), else a path: anything with a '/', ending in .npz,
    /// starting with '.' or '~' (`~/` is expanded), or that exists. A folder named like a named
    /// dataset is given as `./mnist3`.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(name) = s.parse::<DatasetName>() {
            return Ok(DataRef::Named(name));
        }
        let expanded = match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(s),
        };
        let path_like = s.contains('/')
            || s.contains(std::path::MAIN_SEPARATOR)
            || s.starts_with('.')
            || s.starts_with('~')
            || DataRef::is_npz(&expanded)
            || expanded.exists();
        if path_like && !s.is_empty() {
            Ok(DataRef::Path(expanded))
        } else {
            Err(format!(
                "unknown dataset '{s}'; expected one of: {}, or the path of a folder of class folders or of a .npz file (./{s} if it is a folder here)",
                DatasetName::ALL.map(|d| d.as_str()).join(", ")
            ))
        }
    }
}

impl serde::Serialize for DataRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for DataRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What the host needs before training: the input shape and the classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataInfo {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub class_names: Vec<String>,
}

impl DataInfo {
    /// (channels, height, width), as [`DatasetName::image_shape`].
    pub fn image_shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
}

/// A folder or .npz dataset as loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub dataset: Dataset,
    /// The folder's `val/` split, when it has one (not used by the search).
    pub val: Option<Split>,
    /// What the load found (`from_cache`, resized and skipped images, notes).
    pub report: DatasetReport,
}

/// `$NAS_CACHE_DIR/datasets`, else `~/.cache/nas-host/datasets`, else `.nas-cache/datasets`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("NAS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/nas-host")))
        .unwrap_or_else(|| PathBuf::from(".nas-cache"))
        .join("datasets")
}

fn run(path: &Path, options: &FolderOptions, cache_dir: Option<&Path>, mode: Mode) -> Result<Outcome, DataError> {
    if DataRef::is_npz(path) && path.is_file() {
        npz::run(path, options, mode)
    } else {
        folder::run(path, options, cache_dir, mode)
    }
}

/// Loads a folder (ImageFolder layout) or .npz dataset. Folders are decoded once into
/// `cache_dir` (no cache when `None`) and read from there while their files are unchanged.
/// Any problem is an error that names the path and says what to do.
pub fn load_path(path: &Path, options: &FolderOptions, cache_dir: Option<&Path>) -> Result<Loaded, DataError> {
    let Outcome { data, report } = run(path, options, cache_dir, Mode::Load)?;
    let data = data.expect("a load decodes");
    Ok(Loaded {
        dataset: Dataset {
            name: DataRef::Path(path.to_path_buf()),
            num_classes: data.classes.len(),
            class_names: data.classes,
            channels: data.channels,
            height: data.height,
            width: data.width,
            train: data.train,
            test: data.test,
        },
        val: data.val,
        report,
    })
}

/// Inspects a folder or .npz dataset without failing on its problems (they are in the report):
/// reads the cache header when the cache is current, else decodes every image (when they fit
/// in memory) to find unreadable ones, and writes the cache when there is no problem.
pub fn inspect(path: &Path, options: &FolderOptions, cache_dir: Option<&Path>) -> Result<DatasetReport, DataError> {
    Ok(run(path, options, cache_dir, Mode::Inspect)?.report)
}

/// Loads any dataset: a named one through `source`, a path through [`load_path`].
pub fn load_ref(
    data: &DataRef,
    source: &DataSource,
    options: &FolderOptions,
    cache_dir: Option<&Path>,
) -> Result<Dataset, DataError> {
    match data {
        DataRef::Named(name) => crate::load(*name, source),
        DataRef::Path(path) => Ok(load_path(path, options, cache_dir)?.dataset),
    }
}

/// Inspects any dataset; a named one is loaded (downloaded if allowed) and counted.
pub fn inspect_ref(
    data: &DataRef,
    source: &DataSource,
    options: &FolderOptions,
    cache_dir: Option<&Path>,
) -> Result<DatasetReport, DataError> {
    match data {
        DataRef::Named(name) => {
            let started = std::time::Instant::now();
            let d = crate::load(*name, source)?;
            Ok(report_of(&d, started.elapsed().as_secs_f64()))
        }
        DataRef::Path(path) => inspect(path, options, cache_dir),
    }
}

/// A report for a dataset already in memory.
fn report_of(d: &Dataset, seconds: f64) -> DatasetReport {
    let mut classes: Vec<ClassCount> = d
        .class_names
        .iter()
        .map(|name| ClassCount {
            name: name.clone(),
            train: 0,
            test: 0,
            val: 0,
        })
        .collect();
    for &l in &d.train.labels {
        if let Some(c) = classes.get_mut(l as usize) {
            c.train += 1;
        }
    }
    for &l in &d.test.labels {
        if let Some(c) = classes.get_mut(l as usize) {
            c.test += 1;
        }
    }
    let total = d.train.len() + d.test.len();
    DatasetReport {
        source: d.name.label(),
        layout: Layout::Named,
        classes,
        channels: d.channels,
        height: d.height,
        width: d.width,
        sizes_found: vec![SizeCount {
            height: d.height as u32,
            width: d.width as u32,
            count: total,
        }],
        colours_found: vec![ColourCount {
            colour: if d.channels == 1 { "grey" } else { "rgb" }.into(),
            count: total,
        }],
        resized: 0,
        resize_filter: folder::RESIZE_FILTER_NAME.into(),
        memory_needed: (d.train.images.len() + d.test.images.len() + total) as u64,
        memory_available: crate::memory::available_memory(),
        ignored_files: 0,
        ignored_examples: Vec::new(),
        bad_images: 0,
        bad_examples: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
        fingerprint: Some(d.fingerprint()),
        from_cache: false,
        cache_file: None,
        seconds,
    }
}
