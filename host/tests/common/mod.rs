//! Helpers shared by the integration tests.
#![allow(dead_code)]

// One throwaway-PostgreSQL helper for every crate's tests: the store's.
#[path = "../../../crates/store/tests/common/pg.rs"]
pub mod pg;
pub mod process;
pub mod wat;

use std::path::PathBuf;

use nas_config::EvaluatorKind;
use nas_config::RunConfig;
use nas_core::record::EpisodeRecord;
use nas_search::options::SearchOptions;
use nas_search::search;
use nas_search::search::Start;

/// The default search space on 28×28 inputs (MNIST's), for tests that drive plugins directly.
pub fn mdp() -> nas_core::mdp::Mdp {
    nas_core::mdp::Mdp::new(nas_core::mdp::MdpConfig::default(), 28)
}

/// Agent plugin `name` loaded in `rt` under `limits` and initialised with `config` (JSON) on
/// [`mdp`], seed 0.
pub fn init_agent(
    rt: &nas_plugin_runtime::Runtime,
    name: &str,
    config: &str,
    limits: nas_config::SandboxLimits,
) -> nas_plugin_runtime::AgentPlugin {
    let loaded = rt.load(&plugin(name)).unwrap();
    let mut agent = nas_plugin_runtime::AgentPlugin::instantiate(rt, &loaded, limits, 0).unwrap();
    agent.init(&mdp(), config, 0).unwrap();
    agent
}

/// The error an agent's first `act` must end with.
pub fn act_error(agent: &mut nas_plugin_runtime::AgentPlugin) -> nas_plugin_runtime::PluginError {
    let m = mdp();
    let state = m.start();
    agent.act(0, &m, &state, &m.mask(&state), true).unwrap_err()
}

/// A plugin built by `make build` (the real ones in plugins/, test ones in tests/plugins/).
pub fn plugin(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = [root.join("plugins"), root.join("tests/plugins")]
        .into_iter()
        .map(|d| d.join(format!("{name}.wasm")))
        .find(|p| p.is_file());
    path.unwrap_or_else(|| panic!("{name}.wasm is not built; run `make test` (it builds the plugins first)"))
}

pub fn options(db: PathBuf) -> SearchOptions {
    SearchOptions::new(db)
}

/// A synthetic-evaluator configuration for `agent`.
pub fn synthetic_config(agent: &str, episodes: usize, seed: u64) -> RunConfig {
    RunConfig {
        agent: plugin(agent).display().to_string(),
        reward: plugin("accuracy").display().to_string(),
        dataset: nas_datasets::DatasetName::Mnist3.into(),
        episodes,
        seed,
        evaluator: EvaluatorKind::Synthetic,
        ..RunConfig::default()
    }
}

/// Runs a fresh search and returns its episodes.
pub fn run(config: RunConfig, db: PathBuf) -> (i64, Vec<EpisodeRecord>) {
    let summary = search::search(Start::New(Box::new(config)), &options(db)).unwrap();
    (summary.run, summary.episodes)
}

pub fn mean_of_last(episodes: &[EpisodeRecord], n: usize) -> f64 {
    let tail = &episodes[episodes.len() - n..];
    tail.iter().map(|e| e.reward).sum::<f64>() / n as f64
}
