//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong reading a table, encoding an architecture, fitting a surrogate or answering.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be opened, read or written.
    #[error("benchmark table {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A row (or the header) that cannot be read; `line` is the 1-based line of the file.
    #[error("benchmark table {}, line {line}: {message}", path.display())]
    Row { path: PathBuf, line: u64, message: String },
    /// The file has a header but no rows.
    #[error("benchmark table {} has no rows", path.display())]
    Empty { path: PathBuf },
    /// An architecture the encoding cannot represent (too deep, or a window larger than its input).
    #[error("cannot encode `{architecture}`: {reason}")]
    Encode { architecture: String, reason: String },
    /// Fitting or running the random forest failed, or there are too few rows to fit one.
    #[error("surrogate: {0}")]
    Surrogate(String),
    /// The table has no row for the architecture and the evaluator has no surrogate.
    #[error("the benchmark table does not cover `{architecture}` (no row for it, and no surrogate to predict it)")]
    NotCovered { architecture: String },
}
