//! What `inspect` finds in a dataset: classes and their counts, the image sizes and colour types
//! found, the memory the images need, problems and notes. `Display` prints it as a table
//! (`nas-host datasets inspect PATH`); serde gives it as JSON.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the dataset's files are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `PATH/train/<class>/…` and `PATH/test/<class>/…` (and perhaps `PATH/val/<class>/…`).
    SplitFolders,
    /// `PATH/<class>/…`, split into train and test by a stratified, seeded draw.
    ClassFolders,
    /// A NumPy .npz file with `x_train`, `y_train`, `x_test`, `y_test`.
    Npz,
    /// One of the named datasets (mnist3, cifar5, …).
    Named,
}

impl Layout {
    fn describe(self) -> &'static str {
        match self {
            Layout::SplitFolders => "folders train/<class>/ and test/<class>/",
            Layout::ClassFolders => "class folders, split into train/test by a seeded stratified draw",
            Layout::Npz => "NumPy .npz (x_train, y_train, x_test, y_test)",
            Layout::Named => "named dataset",
        }
    }
}

/// One class: its label is its index in [`DatasetReport::classes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    pub name: String,
    pub train: usize,
    pub test: usize,
    /// Images in `val/` (split-folder layout only; loaded but not used for the search).
    pub val: usize,
}

/// How many images had one size (before resizing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeCount {
    pub height: u32,
    pub width: u32,
    pub count: usize,
}

/// How many images had one colour type as stored ("grey", "grey+alpha", "rgb", "rgba").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColourCount {
    pub colour: String,
    pub count: usize,
}

/// Everything `inspect` (and a load) found in a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetReport {
    /// The folder or file (or the named dataset's name).
    pub source: String,
    pub layout: Layout,
    /// By label.
    pub classes: Vec<ClassCount>,
    /// The shape every image has once loaded.
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Image sizes found in the files, most common first.
    pub sizes_found: Vec<SizeCount>,
    /// Colour types found in the files, most common first.
    pub colours_found: Vec<ColourCount>,
    /// Images resized to `height`×`width`, and the filter used.
    pub resized: usize,
    pub resize_filter: String,
    /// Bytes the images take as uint8 NCHW (train, test and val), and as float32 tensors (×4).
    pub memory_needed: u64,
    /// Memory available when checked (MemAvailable and the cgroup limit), if known.
    pub memory_available: Option<u64>,
    /// Files ignored because their extension is not an image's (notes.txt, .DS_Store, …).
    pub ignored_files: usize,
    /// The first few ignored files.
    pub ignored_examples: Vec<String>,
    /// Unreadable images skipped (`skip_bad_images`), or found by `inspect`.
    pub bad_images: usize,
    /// The first few bad images with the reason each could not be read.
    pub bad_examples: Vec<(String, String)>,
    /// What stops the dataset from being used; each names its path and what to do.
    pub problems: Vec<String>,
    /// Worth knowing but not in the way (resizing, ignored files, val/ unused, …).
    pub notes: Vec<String>,
    /// The content fingerprint ([`crate::Dataset::fingerprint`]) when the images were decoded.
    pub fingerprint: Option<String>,
    /// True when the images came from the decode cache instead of the image files.
    pub from_cache: bool,
    pub cache_file: Option<PathBuf>,
    /// Seconds the load (or the inspection) took.
    pub seconds: f64,
}

impl DatasetReport {
    /// True when nothing stops the dataset from being used.
    pub fn is_usable(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn train_total(&self) -> usize {
        self.classes.iter().map(|c| c.train).sum()
    }

    pub fn test_total(&self) -> usize {
        self.classes.iter().map(|c| c.test).sum()
    }

    pub fn val_total(&self) -> usize {
        self.classes.iter().map(|c| c.val).sum()
    }

    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }
}

/// Bytes in binary units: "512 B", "1.5 KiB", "36.9 MiB", "2.10 GiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value >= 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

impl fmt::Display for DatasetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset   {}", self.source)?;
        writeln!(f, "layout    {}", self.layout.describe())?;
        writeln!(
            f,
            "images    {} x {} x {} (channels x height x width), {} classes",
            self.channels,
            self.height,
            self.width,
            self.classes.len()
        )?;
        match (&self.cache_file, self.from_cache) {
            (Some(file), true) => writeln!(f, "cache     read from {}", file.display())?,
            (Some(file), false) => writeln!(f, "cache     written to {}", file.display())?,
            (None, _) => {}
        }
        let has_val = self.val_total() > 0;
        let name_width = self
            .classes
            .iter()
            .map(|c| c.name.chars().count())
            .chain([5])
            .max()
            .unwrap_or(5)
            .min(40);
        let rule = "-".repeat(name_width + 7 + 10 + 10 + if has_val { 10 } else { 0 });
        writeln!(f)?;
        write!(
            f,
            "{:<name_width$}  {:>5} {:>9} {:>9}",
            "class", "label", "train", "test"
        )?;
        if has_val {
            write!(f, " {:>9}", "val")?;
        }
        writeln!(f, "\n{rule}")?;
        for (label, c) in self.classes.iter().enumerate() {
            let name: String = c.name.chars().take(name_width).collect();
            write!(f, "{name:<name_width$}  {label:>5} {:>9} {:>9}", c.train, c.test)?;
            if has_val {
                write!(f, " {:>9}", c.val)?;
            }
            writeln!(f)?;
        }
        writeln!(f, "{rule}")?;
        write!(
            f,
            "{:<name_width$}  {:>5} {:>9} {:>9}",
            "total",
            "",
            self.train_total(),
            self.test_total()
        )?;
        if has_val {
            write!(f, " {:>9}", self.val_total())?;
        }
        writeln!(f, "\n")?;

        let sizes: Vec<String> = self
            .sizes_found
            .iter()
            .take(8)
            .map(|s| format!("{}x{} ({})", s.height, s.width, s.count))
            .collect();
        let more = self.sizes_found.len().saturating_sub(8);
        writeln!(
            f,
            "sizes     {}{} (height x width)",
            sizes.join(", "),
            if more > 0 {
                format!(", {more} more")
            } else {
                String::new()
            }
        )?;
        if self.resized > 0 {
            writeln!(
                f,
                "resized   {} image(s) to {}x{} ({})",
                self.resized, self.height, self.width, self.resize_filter
            )?;
        }
        let colours: Vec<String> = self
            .colours_found
            .iter()
            .map(|c| format!("{} ({})", c.colour, c.count))
            .collect();
        writeln!(f, "colour    {} -> {} channel(s)", colours.join(", "), self.channels)?;
        write!(
            f,
            "memory    {} as uint8, {} as float32 tensors",
            human_bytes(self.memory_needed),
            human_bytes(self.memory_needed.saturating_mul(4))
        )?;
        match self.memory_available {
            Some(a) => writeln!(f, "; {} available", human_bytes(a))?,
            None => writeln!(f)?,
        }
        match &self.fingerprint {
            Some(fp) => writeln!(f, "checksum  sha256 {fp}")?,
            None => writeln!(f, "checksum  (not computed: the images were not decoded)")?,
        }
        if self.ignored_files > 0 {
            writeln!(
                f,
                "ignored   {} non-image file(s): {}{}",
                self.ignored_files,
                self.ignored_examples.join(", "),
                if self.ignored_files > self.ignored_examples.len() {
                    ", …"
                } else {
                    ""
                }
            )?;
        }
        if self.bad_images > 0 {
            writeln!(f, "bad       {} unreadable image(s):", self.bad_images)?;
            for (path, why) in &self.bad_examples {
                writeln!(f, "            {path}: {why}")?;
            }
            if self.bad_images > self.bad_examples.len() {
                writeln!(
                    f,
                    "            … and {} more",
                    self.bad_images - self.bad_examples.len()
                )?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for n in &self.notes {
                writeln!(f, "  - {n}")?;
            }
        }
        if self.problems.is_empty() {
            writeln!(f, "\nno problems found")?;
        } else {
            writeln!(f, "\nproblems ({}):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(150 * 1024 * 1024), "150 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.00 GiB");
    }
}
