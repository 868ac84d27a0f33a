//! nas-bench-table: a benchmark table of nas-host's search space (issue #24).
//!
//! A table is a CSV of trained architectures — `architecture,accuracy,params,mult_adds,seconds,
//! dataset,protocol` — read by [`BenchTable::load`] and written by [`BenchTable::write`] (the
//! script that builds the table trains architectures under one protocol and writes its rows).
//! [`TableEvaluator`] answers an architecture from the table: a recorded one exactly, bit for bit
//! as recorded; any other with a [`Surrogate`]'s prediction (a random forest over the fixed
//! [`Encoder`] encoding of the layers), marked `predicted` and carrying the surrogate's held-out
//! [`Quality`] (Kendall τ-b, mean absolute error) so that every result that uses it can print it.
//!
//! No libtorch, SQL or wasmtime: the crate depends on nas-core only.

mod encode;
mod error;
mod evaluator;
mod surrogate;
mod table;

pub use encode::Encoder;
pub use error::TableError;
pub use evaluator::{TableAnswer, TableEvaluator, MIN_ROWS_FOR_SURROGATE, QUALITY_FOLDS};
pub use surrogate::{kendall_tau_b, mean_abs_error, Quality, Surrogate};
pub use table::{BenchRow, BenchTable, TableEntry};

/// Result with this crate's error.
pub type Result<T, E = TableError> = std::result::Result<T, E>;
