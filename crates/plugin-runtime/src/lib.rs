//! Plugins: agents, reward shapers and assessors as sandboxed WebAssembly components.
//!
//! `runtime` owns the wasmtime engine, the on-disk compile cache and the sandbox (WASI with nothing
//! granted, a memory cap, a time limit per call); `agent`, `reward` and `assessor` are typed
//! handles over it.
//! Plugins are found by name on the plugin path or loaded from a file.

mod agent;
mod assessor;
mod bindings;
mod cache;
mod handle;
mod limits;
mod reward;
mod runtime;

use std::path::{Path, PathBuf};

pub use agent::AgentPlugin;
pub use assessor::{AssessorPlugin, CurveInput, Verdict};
pub use handle::PluginHandle;
pub use reward::{EvaluationInput, RewardPlugin};
pub use runtime::{LoadedPlugin, PluginInfo, Runtime};

/// The contract version this host speaks: the version of the WIT package `nas:plugin`.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// Older contracts the host still loads (their WIT is kept in crates/plugin-runtime/wit/), with the plugin kinds
/// each one had: agents and reward shapers from before assessors existed, and every kind from
/// before evaluations carried their cost.
pub const OLDER_CONTRACTS: &[(&str, &[PluginKind])] = &[
    ("0.1.0", &[PluginKind::Agent, PluginKind::Reward]),
    ("0.2.0", &[PluginKind::Agent, PluginKind::Reward, PluginKind::Assessor]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Agent,
    Reward,
    Assessor,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Agent => "agent",
            PluginKind::Reward => "reward",
            PluginKind::Assessor => "assessor",
        }
    }

    /// The command-line option that takes a plugin of this kind.
    pub fn flag(self) -> &'static str {
        match self {
            PluginKind::Agent => "--agent",
            PluginKind::Reward => "--reward",
            PluginKind::Assessor => "--assessor",
        }
    }

    fn article(self) -> &'static str {
        match self {
            PluginKind::Agent => "an agent",
            PluginKind::Reward => "a reward shaper",
            PluginKind::Assessor => "an assessor",
        }
    }
}

/// A plugin failure, always naming the plugin, its version and the call.
#[derive(Debug, thiserror::Error)]
#[error("plugin {name} {version}, call {call}: {message}")]
pub struct PluginError {
    pub name: String,
    pub version: String,
    pub call: String,
    pub message: String,
    /// True when the sandbox trapped (crash, timeout, memory cap): the instance is unusable.
    pub fatal: bool,
}

/// Directories searched for `NAME.wasm`: `./plugins`, then each entry of `NAS_PLUGIN_PATH`, then the
/// `plugins/` directory of the checkout the binary was built in (so `target/release/nas-host` finds
/// the built plugins from anywhere).
pub fn plugin_path() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("plugins")];
    if let Some(extra) = std::env::var_os("NAS_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins"));
    dirs
}

/// Resolves `--agent ppo` / `--reward some/dir/x.wasm` to a file.
pub fn resolve(spec: &str) -> anyhow::Result<PathBuf> {
    let as_path = Path::new(spec);
    if spec.ends_with(".wasm") || spec.contains(std::path::MAIN_SEPARATOR) {
        anyhow::ensure!(
            !as_path.is_dir(),
            "plugin {} is a directory; give the .wasm file built from it (`cargo build --release --target wasm32-wasip2` writes it under target/wasm32-wasip2/release/)",
            as_path.display()
        );
        anyhow::ensure!(as_path.is_file(), "plugin file {} does not exist", as_path.display());
        return Ok(as_path.to_path_buf());
    }
    let dirs = plugin_path();
    dirs.iter()
        .map(|d| d.join(format!("{spec}.wasm")))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no plugin named `{spec}`: looked for {spec}.wasm in {}. Build the bundled plugins with `make build`, or give a path to a .wasm file",
                dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        })
}

/// Every `.wasm` file on the plugin path (first occurrence of each name wins).
pub fn discover() -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for dir in plugin_path() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        for file in files {
            if seen.insert(file.file_name().map(|n| n.to_owned())) {
                found.push(file);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    /// The host's contract version is the WIT package's (the SDK checks its own the same way).
    #[test]
    fn contract_version_matches_the_wit_package() {
        let wit = include_str!("../../../plugin-sdk/wit/nas-plugin.wit");
        let package = wit
            .lines()
            .find_map(|l| l.trim().strip_prefix("package nas:plugin@"))
            .expect("a package line");
        assert_eq!(package.trim_end_matches(';'), super::CONTRACT_VERSION);
    }

    /// Each older contract the host loads has its frozen WIT under wit/, named by version.
    #[test]
    fn older_contracts_are_kept() {
        for (version, _) in super::OLDER_CONTRACTS {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("wit/nas-plugin@{version}.wit"));
            let wit = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                wit.contains(&format!("package nas:plugin@{version};")),
                "{}",
                path.display()
            );
        }
    }
}
