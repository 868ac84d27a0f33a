//! nas-host: neural architecture search by reinforcement learning. The host owns the MDP, the masks
//! and child-network training (libtorch); agents, reward shapers and assessors are sandboxed
//! WebAssembly plugins.
//!
//! This crate is the command line only; the crates below it do the work, and the compiler keeps
//! their dependencies one way (README, "Layout"): nas-core ← nas-config ← nas-train, nas-store,
//! nas-plugin-runtime ← nas-search; nas-outputs reads the store; nas-host drives both.

pub mod cli;
