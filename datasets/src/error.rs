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
