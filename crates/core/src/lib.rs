//! nas-core: the foundation of nas-host. Architectures and their one canonical text form, the
//! MetaQNN design MDP with its action masks, the plan of the network an architecture becomes,
//! statistics, and the records every layer shares. No libtorch, SQL or wasmtime: every other crate
//! builds on this one.

pub mod arch;
pub mod mdp;
pub mod netplan;
pub mod record;
pub mod stats;
pub mod summary;
