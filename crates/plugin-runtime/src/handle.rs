//! One handle over every plugin world: the sandbox, the world's generated bindings and the file's
//! hash. The agent, reward and assessor handles are this type with their world's calls added.

use wasmtime::component::Linker;
use wasmtime::Store;

use super::bindings::{self, wit};
use super::runtime::{HostState, LoadedPlugin, Runtime, Sandbox};
use super::{PluginInfo, PluginKind, CONTRACT_VERSION};
use nas_config::SandboxLimits;

/// A plugin world: which kind it is, how to instantiate its bindings (for the contract version the
/// plugin was built against) and how to ask for its description.
pub trait World: Sized {
    const KIND: PluginKind;
    fn instantiate(
        store: &mut Store<HostState>,
        loaded: &LoadedPlugin,
        linker: &Linker<HostState>,
    ) -> wasmtime::Result<Self>;
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo>;
}

/// An agent's bindings: the current contract's, or 0.1's (the same calls and types).
pub enum AgentBindings {
    Current(bindings::agent::AgentPlugin),
    V0_2(bindings::v0_2::agent::AgentPlugin),
    V0_1(bindings::v0_1::agent::AgentPlugin),
}

/// Runs `$call` with `$guest` bound to the agent interface of either contract: the agent's calls
/// and types did not change, so one expression serves both.
macro_rules! on_agent {
    ($bindings:expr, |$guest:ident| $call:expr) => {
        match $bindings {
            $crate::handle::AgentBindings::Current(b) => {
                let $guest = b.nas_plugin_agent();
                $call
            }
            $crate::handle::AgentBindings::V0_2(b) => {
                let $guest = b.nas_plugin_agent();
                $call
            }
            $crate::handle::AgentBindings::V0_1(b) => {
                let $guest = b.nas_plugin_agent();
                $call
            }
        }
    };
}
pub(crate) use on_agent;

impl World for AgentBindings {
    const KIND: PluginKind = PluginKind::Agent;
    fn instantiate(
        store: &mut Store<HostState>,
        loaded: &LoadedPlugin,
        linker: &Linker<HostState>,
    ) -> wasmtime::Result<Self> {
        if loaded.contract_version == CONTRACT_VERSION {
            bindings::agent::AgentPlugin::instantiate(store, &loaded.component, linker).map(AgentBindings::Current)
        } else if loaded.contract_version == "0.2.0" {
            bindings::v0_2::agent::AgentPlugin::instantiate(store, &loaded.component, linker).map(AgentBindings::V0_2)
        } else {
            bindings::v0_1::agent::AgentPlugin::instantiate(store, &loaded.component, linker).map(AgentBindings::V0_1)
        }
    }
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo> {
        on_agent!(self, |agent| agent.call_describe(store))
    }
}

/// A reward shaper's bindings: the current contract's, or 0.1's (whose evaluation lacks what
/// assessors added).
pub enum RewardBindings {
    Current(bindings::reward::RewardPlugin),
    V0_2(bindings::v0_2::reward::RewardPlugin),
    V0_1(bindings::v0_1::reward::RewardPlugin),
}

impl World for RewardBindings {
    const KIND: PluginKind = PluginKind::Reward;
    fn instantiate(
        store: &mut Store<HostState>,
        loaded: &LoadedPlugin,
        linker: &Linker<HostState>,
    ) -> wasmtime::Result<Self> {
        if loaded.contract_version == CONTRACT_VERSION {
            bindings::reward::RewardPlugin::instantiate(store, &loaded.component, linker).map(RewardBindings::Current)
        } else if loaded.contract_version == "0.2.0" {
            bindings::v0_2::reward::RewardPlugin::instantiate(store, &loaded.component, linker)
                .map(RewardBindings::V0_2)
        } else {
            bindings::v0_1::reward::RewardPlugin::instantiate(store, &loaded.component, linker)
                .map(RewardBindings::V0_1)
        }
    }
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo> {
        match self {
            RewardBindings::Current(b) => b.nas_plugin_reward().call_describe(store),
            RewardBindings::V0_2(b) => b.nas_plugin_reward().call_describe(store).map(Into::into),
            RewardBindings::V0_1(b) => b.nas_plugin_reward().call_describe(store).map(Into::into),
        }
    }
}

/// An assessor's bindings: the current contract's, or 0.2's (the same calls and types).
pub enum AssessorBindings {
    Current(bindings::assessor::AssessorPlugin),
    V0_2(bindings::v0_2::assessor::AssessorPlugin),
}

/// Runs `$call` with `$guest` bound to the assessor interface of either contract.
macro_rules! on_assessor {
    ($bindings:expr, |$guest:ident| $call:expr) => {
        match $bindings {
            $crate::handle::AssessorBindings::Current(b) => {
                let $guest = b.nas_plugin_assessor();
                $call
            }
            $crate::handle::AssessorBindings::V0_2(b) => {
                let $guest = b.nas_plugin_assessor();
                $call
            }
        }
    };
}
pub(crate) use on_assessor;

impl World for AssessorBindings {
    const KIND: PluginKind = PluginKind::Assessor;
    fn instantiate(
        store: &mut Store<HostState>,
        loaded: &LoadedPlugin,
        linker: &Linker<HostState>,
    ) -> wasmtime::Result<Self> {
        if loaded.contract_version == CONTRACT_VERSION {
            bindings::assessor::AssessorPlugin::instantiate(store, &loaded.component, linker)
                .map(AssessorBindings::Current)
        } else {
            bindings::v0_2::assessor::AssessorPlugin::instantiate(store, &loaded.component, linker)
                .map(AssessorBindings::V0_2)
        }
    }
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo> {
        on_assessor!(self, |assessor| assessor.call_describe(store))
    }
}

/// A running plugin of world `W`. Every call goes through the sandbox.
pub struct PluginHandle<W> {
    pub(crate) sandbox: Sandbox,
    pub(crate) bindings: W,
    /// sha256 of the `.wasm` file.
    pub sha256: String,
    /// The contract version the plugin was built against (this host's or an older one it loads).
    pub contract_version: String,
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
            contract_version: loaded.contract_version.clone(),
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
            .field("contract_version", &self.contract_version)
            .finish()
    }
}
