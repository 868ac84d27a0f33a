//! nas-search: the search itself. The loop that asks the agent plugin for designs, has children
//! evaluated (in process or by workers through the store's queue) and hands rewards back, under a
//! `sync` or `async` schedule; assessors that stop children early; the local worker pool, the
//! worker and the Slurm launcher; frozen-policy evaluation (`eval`) and comparison plans.
//!
//! Modules from the bottom up: `options` and `pool` (trainers and the worker-pool trait), `sink`, `local`
//! and `slurm` (launchers), `launch` (which trainer a run gets), `assess`, `session` (one run's
//! plugins and cache), `schedule` and `search` (the loop), then `frozen_policy` and `plan`, which
//! drive searches and sessions. `external` is a run whose agent lives outside the host (Python's
//! `NasEnv`). `worker` is the other side of the queue.

pub mod assess;
pub mod external;
pub mod frozen_policy;
pub mod launch;
pub mod local;
pub mod options;
pub mod plan;
pub mod pool;
pub mod schedule;
pub mod search;
pub mod session;
pub mod sink;
pub mod slurm;
pub mod worker;
