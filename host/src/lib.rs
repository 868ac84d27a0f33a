//! nas-host: neural architecture search by reinforcement learning. The host owns the MDP, the masks
//! and child-network training (libtorch); agents, reward shapers and assessors are sandboxed
//! WebAssembly plugins.
//!
//! Data flows one way: CLI → search loop → (agent plugin, env, evaluator) → store → report and
//! export.

pub mod arch;
pub mod assess;
pub mod cli;
pub mod config;
pub mod device;
pub mod evaluator;
pub mod export;
pub mod frozen_policy;
pub mod mdp;
pub mod model;
pub mod plan;
pub mod plugin;
pub mod pool;
pub mod report;
pub mod search;
pub mod slurm;
pub mod stats;
pub mod store;
pub mod train;
pub mod worker;
