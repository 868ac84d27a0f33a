//! One handle over every plugin world: the sandbox, the world's generated bindings and the file's
//! hash. The agent and reward handles are this type with their world's calls added.

use wasmtime::component::{Component, Linker};
use wasmtime::Store;

use super::bindings::{self, wit};
use super::limits::SandboxLimits;
use super::runtime::{HostState, LoadedPlugin, Runtime, Sandbox};
use super::{PluginInfo, PluginKind};

/// A plugin world: which kind it is, how to instantiate its bindings and how to ask for its
/// description.
pub trait World: Sized {
    const KIND: PluginKind;
    fn instantiate(
        store: &mut Store<HostState>,
        component: &Component,
        linker: &Linker<HostState>,
    ) -> wasmtime::Result<Self>;
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo>;
}

impl World for bindings::agent::AgentPlugin {
    const KIND: PluginKind = PluginKind::Agent;
    fn instantiate(
        store: &mut Store<HostState>,
        component: &Component,
        linker: &Linker<HostState>,
    ) -> wasmtime::Result<Self> {
        bindings::agent::AgentPlugin::instantiate(store, component, linker)
    }
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo> {
        self.nas_plugin_agent().call_describe(store)
    }
}

impl World for bindings::reward::RewardPlugin {
    const KIND: PluginKind = PluginKind::Reward;
    fn instantiate(
        store: &mut Store<HostState>,
        component: &Component,
        linker: &Linker<HostState>,
    ) -> wasmtime::Result<Self> {
        bindings::reward::RewardPlugin::instantiate(store, component, linker)
    }
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo> {
        self.nas_plugin_reward().call_describe(store)
    }
}

/// A running plugin of world `W`. Every call goes through the sandbox.
pub struct PluginHandle<W> {
    pub(crate) sandbox: Sandbox,
    pub(crate) bindings: W,
    /// sha256 of the `.wasm` file.
    pub sha256: String,
}

impl<W: World> PluginHandle<W> {
    /// Instantiates a loaded plugin (refusing one of another kind) and asks it to describe itself.
    pub fn instantiate(
        runtime: &Runtime,
        loaded: &LoadedPlugin,
        limits: SandboxLimits,
        seed: u64,
    ) -> anyhow::Result<PluginHandle<W>> {
        let (sandbox, bindings) = runtime.sandboxed(loaded, W::KIND, limits, seed, W::instantiate, W::describe)?;
        Ok(PluginHandle {
            sandbox,
            bindings,
            sha256: loaded.sha256.clone(),
        })
    }

    pub fn info(&self) -> &PluginInfo {
        &self.sandbox.info
    }

    /// Restarts the plugin's WASI random stream (the host does this at every episode).
    pub fn reseed(&mut self, seed: u64) {
        self.sandbox.reseed(seed);
    }
}

impl<W: World> std::fmt::Debug for PluginHandle<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandle")
            .field("kind", &W::KIND)
            .field("info", &self.sandbox.info)
            .field("sha256", &self.sha256)
            .finish()
    }
}
