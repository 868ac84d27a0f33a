use std::path::PathBuf;

/// Everything that can go wrong while finding, downloading or reading a dataset. Every variant names
/// the file involved and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {reason}. Delete it so it is downloaded again, or replace it with the official file")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} failed its checksum ({algorithm}: expected {expected}, got {actual}); the file was not used. Delete it and download it again")]
    Checksum {
        path: PathBuf,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("missing dataset files:\n{}\nDownload failed ({reason}). Put the official files there (sources: {sources}), or point --data-dir / NAS_DATA_DIR at a directory that has them", files.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    Missing {
        files: Vec<PathBuf>,
        sources: String,
        reason: String,
    },
    /// A folder or .npz dataset that cannot be used as it is; each problem names its path and
    /// says what to do.
    #[error("dataset {path} cannot be used:\n{}\nRun `nas-host datasets inspect {path}` for the whole picture", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, problems: Vec<String> },
    /// Files with an image extension that could not be read as images.
    #[error("{count} image file(s) in {path} cannot be read:\n{}{}\nFix or remove them, or set `[dataset] skip_bad_images = true` to skip unreadable files", first.iter().map(|(p, why)| format!("  {}: {why}", p.display())).collect::<Vec<_>>().join("\n"), if *count > first.len() { format!("\n  … and {} more", count - first.len()) } else { String::new() })]
    BadImages {
        path: PathBuf,
        count: usize,
        /// The first few, with the reason each failed.
        first: Vec<(PathBuf, String)>,
    },
    /// The decoded images would not fit in the memory available.
    #[error("dataset {path} needs {} as uint8 images ({images} images of {shape}) but only {} of memory is available; use fewer or smaller images (`[dataset] image_size = [H, W]` resizes them), or run where there is more memory", crate::report::human_bytes(*needed), crate::report::human_bytes(*available))]
    OutOfMemory {
        path: PathBuf,
        needed: u64,
        available: u64,
        images: usize,
        shape: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> DataError {
        DataError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
