//! `[sandbox]`: what one plugin instance may use. The plugin runtime enforces these limits.

use std::time::Duration;

/// Resource limits of one plugin instance (`[sandbox]` in a run configuration).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxLimits {
    /// Cap on everything the plugin allocates, in MiB: all its linear memories and tables together
    /// (8 bytes per table element). It also bounds the data one call may hand to the host (a
    /// checkpoint from `save`, a returned string).
    pub memory_mib: usize,
    /// Wall-clock limit of one call into the plugin, in seconds, including any time it waits
    /// inside WASI (sleeps, clock subscriptions).
    pub call_timeout_secs: f64,
    /// How many core WebAssembly instances the plugin may create (a Rust plugin uses 3, a
    /// CPython one made by componentize-py 14: `host/tests/python_plugins.rs` measures both).
    pub instances: usize,
    /// How many linear memories the plugin may create (Rust and Python plugins use 1).
    pub memories: usize,
    /// How many tables the plugin may create (Rust and Python plugins use 2).
    pub tables: usize,
    /// Plugin output (stdout and stderr) forwarded to the log per call, in KiB; the rest is
    /// dropped and counted.
    pub output_kib: usize,
    /// Host-side handles (clock subscriptions, streams) the plugin may hold at once; WASI keeps
    /// them in host memory, outside `memory_mib`. A plugin holds a few.
    pub handles: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_mib: 512,
            call_timeout_secs: 5.0,
            instances: 16,
            memories: 8,
            tables: 16,
            output_kib: 64,
            handles: 1024,
        }
    }
}

impl SandboxLimits {
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib.saturating_mul(1 << 20)
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.call_timeout_secs).unwrap_or(Duration::MAX)
    }

    /// Refuses limits that cannot work, naming the setting.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.memory_mib >= 1,
            "[sandbox] memory_mib = {} is too small: plugins need at least 1 MiB (the default is 512)",
            self.memory_mib
        );
        anyhow::ensure!(
            self.call_timeout_secs.is_finite() && self.call_timeout_secs > 0.0,
            "[sandbox] call_timeout_secs = {} must be a positive number of seconds (the default is 5)",
            self.call_timeout_secs
        );
        for (name, value) in [
            ("instances", self.instances),
            ("memories", self.memories),
            ("tables", self.tables),
            ("handles", self.handles),
        ] {
            anyhow::ensure!(
                value >= 1,
                "[sandbox] {name} = {value} is too small: a plugin needs at least 1"
            );
        }
        Ok(())
    }
}
