//! nas-core: the foundation of nas-host. Architectures and their one canonical text form, the
//! MetaQNN design MDP with its action masks, the plan of the network an architecture becomes,
//! statistics (with the comparisons of a search against a baseline and the anytime curves
//! across seeds), and the records every layer shares. No libtorch, SQL or wasmtime: every other
//! crate builds on this one.

pub mod anytime;
pub mod arch;
pub mod checksum;
pub mod cost;
pub mod mdp;
pub mod netplan;
pub mod record;
pub mod stats;
pub mod summary;

pub use anytime::{anytime_curve, mean_band, AnytimeCurve, Band, TOP_K};
pub use stats::{bootstrap_mean_difference_ci, mann_whitney_u, mean_std, Interval, MannWhitney};
