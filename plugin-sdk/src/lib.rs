//! # nas-plugin-sdk
//!
//! Write nas-host agents and reward shapers in plain Rust. Implement [`Agent`] or [`RewardShaper`],
//! then call [`register_agent!`] or [`register_reward!`] once; build with
//! `cargo build --release --target wasm32-wasip2`. The WIT contract (`wit/nas-plugin.wit`) and its
//! glue stay hidden, the way Zed's `zed_extension_api` hides its own.
//!
//! ```ignore
//! use nas_plugin_sdk::*;
//!
//! struct Random { rng: PluginRng }
//!
//! impl Agent for Random {
//!     const NAME: &'static str = "random";
//!     const DESCRIPTION: &'static str = "uniform over the valid actions";
//!     fn init(_space: Space, _config: &str, seed: u64) -> Result<Self, String> {
//!         Ok(Random { rng: PluginRng::new(seed) })
//!     }
//!     fn act(&mut self, _env: u32, _obs: &Observation, mask: &[bool], _explore: bool) -> Result<usize, String> {
//!         self.rng.uniform_valid(mask).ok_or_else(|| "no valid action".into())
//!     }
//!     fn observe(&mut self, _env: u32, _reward: f64, _done: bool) -> Result<(), String> { Ok(()) }
//!     fn save(&self) -> Result<Vec<u8>, String> { to_bytes(&self.rng) }
//!     fn load(&mut self, bytes: &[u8]) -> Result<(), String> { self.rng = from_bytes(bytes)?; Ok(()) }
//! }
//!
//! register_agent!(Random);
//! ```

// Lets the generated bindings name this crate by its public path from inside it too.
extern crate self as nas_plugin_sdk;

mod types;

pub use types::*;

#[doc(hidden)]
pub use wit_bindgen;

/// The contract version this SDK speaks (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A search policy. The host creates it with [`Agent::init`], then calls `act` for every step and
/// `observe` after each one.
pub trait Agent: Sized + 'static {
    /// Short name, shown in logs, errors and reports.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;

    /// Creates the agent for a search space. `config` is the plugin's section of the run
    /// configuration as JSON ("{}" when none); see [`parse_config`].
    fn init(space: Space, config: &str, seed: u64) -> Result<Self, String>;

    /// Returns an index into `space.actions` with `mask[index] == true`. When `explore` is false the
    /// host wants the policy's best guess (evaluation of a frozen policy).
    fn act(&mut self, env: u32, observation: &Observation, mask: &[bool], explore: bool) -> Result<usize, String>;

    /// The reward of the previous action in `env` and whether the episode ended with it.
    fn observe(&mut self, env: u32, reward: f64, done: bool) -> Result<(), String>;

    /// The whole learned state (see [`to_bytes`]), so a resumed run continues exactly.
    fn save(&self) -> Result<Vec<u8>, String>;

    /// Restores what [`Agent::save`] returned.
    fn load(&mut self, bytes: &[u8]) -> Result<(), String>;

    /// Values for the host's logs and plots.
    fn metrics(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Turns an evaluated child network into a reward.
pub trait RewardShaper: Sized + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;

    fn init(config: &str) -> Result<Self, String>;

    fn shape(&mut self, evaluation: &Evaluation) -> Result<f64, String>;
}

/// Parses a plugin's JSON configuration section into its hyperparameter struct. Missing fields keep
/// their defaults when the struct has `#[serde(default)]`; unknown ones are an error when it has
/// `#[serde(deny_unknown_fields)]`.
pub fn parse_config<T: serde::de::DeserializeOwned + Default>(config: &str) -> Result<T, String> {
    let text = config.trim();
    if text.is_empty() || text == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(text).map_err(|e| format!("invalid configuration: {e}"))
}

/// Serializes learned state for [`Agent::save`] (compact binary).
pub fn to_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(value).map_err(|e| format!("cannot serialize the state: {e}"))
}

/// Restores what [`to_bytes`] wrote, for [`Agent::load`].
pub fn from_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("cannot restore the state (saved by another version?): {e}"))
}

/// Writes to the host's log, tagged with the plugin's name (stderr is forwarded to tracing).
pub fn log(message: &str) {
    eprintln!("{message}");
}

#[doc(hidden)]
pub mod agent_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "agent-plugin",
        pub_export_macro: true,
        export_macro_name: "export_agent_world",
        default_bindings_module: "nas_plugin_sdk::agent_bindings",
        runtime_path: "nas_plugin_sdk::wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub mod reward_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "reward-plugin",
        pub_export_macro: true,
        export_macro_name: "export_reward_world",
        default_bindings_module: "nas_plugin_sdk::reward_bindings",
        runtime_path: "nas_plugin_sdk::wit_bindgen::rt",
    });
}

/// Exports an [`Agent`] implementation as the plugin's agent.
#[macro_export]
macro_rules! register_agent {
    ($agent:ty) => {
        mod __nas_agent_export {
            use super::*;
            use $crate::agent_bindings::exports::nas::plugin::agent as wit;
            use $crate::agent_bindings::nas::plugin::types as wit_types;

            ::std::thread_local! {
                static AGENT: ::std::cell::RefCell<Option<$agent>> = const { ::std::cell::RefCell::new(None) };
            }

            fn with_agent<R>(call: &str, f: impl FnOnce(&mut $agent) -> Result<R, String>) -> Result<R, String> {
                AGENT.with(|cell| match cell.borrow_mut().as_mut() {
                    Some(agent) => f(agent),
                    None => Err(format!("`{call}` called before `init`")),
                })
            }

            pub struct Export;

            impl wit::Guest for Export {
                fn describe() -> wit_types::PluginInfo {
                    $crate::__private::info(
                        <$agent as $crate::Agent>::NAME,
                        env!("CARGO_PKG_VERSION"),
                        <$agent as $crate::Agent>::DESCRIPTION,
                    )
                }
                fn init(space: wit_types::Space, config: String, seed: u64) -> Result<(), String> {
                    let agent = <$agent as $crate::Agent>::init(space.into(), &config, seed)?;
                    AGENT.with(|cell| *cell.borrow_mut() = Some(agent));
                    Ok(())
                }
                fn act(
                    env: u32,
                    observation: wit_types::Observation,
                    mask: Vec<bool>,
                    explore: bool,
                ) -> Result<u32, String> {
                    let observation = observation.into();
                    with_agent("act", |a| {
                        $crate::Agent::act(a, env, &observation, &mask, explore)
                    })
                    .map(|i| i as u32)
                }
                fn observe(env: u32, reward: f64, done: bool) -> Result<(), String> {
                    with_agent("observe", |a| $crate::Agent::observe(a, env, reward, done))
                }
                fn save() -> Result<Vec<u8>, String> {
                    with_agent("save", |a| $crate::Agent::save(a))
                }
                fn load(state: Vec<u8>) -> Result<(), String> {
                    with_agent("load", |a| $crate::Agent::load(a, &state))
                }
                fn metrics() -> Vec<wit_types::Metric> {
                    with_agent("metrics", |a| Ok($crate::Agent::metrics(a)))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, value)| wit_types::Metric { name, value })
                        .collect()
                }
            }

            $crate::agent_bindings::export_agent_world!(Export);
        }
    };
}

/// Exports a [`RewardShaper`] implementation as the plugin's reward shaper.
#[macro_export]
macro_rules! register_reward {
    ($shaper:ty) => {
        mod __nas_reward_export {
            use super::*;
            use $crate::reward_bindings::exports::nas::plugin::reward as wit;
            use $crate::reward_bindings::nas::plugin::types as wit_types;

            ::std::thread_local! {
                static SHAPER: ::std::cell::RefCell<Option<$shaper>> = const { ::std::cell::RefCell::new(None) };
            }

            pub struct Export;

            impl wit::Guest for Export {
                fn describe() -> wit_types::PluginInfo {
                    $crate::__private::reward_info(
                        <$shaper as $crate::RewardShaper>::NAME,
                        env!("CARGO_PKG_VERSION"),
                        <$shaper as $crate::RewardShaper>::DESCRIPTION,
                    )
                }
                fn init(config: String) -> Result<(), String> {
                    let shaper = <$shaper as $crate::RewardShaper>::init(&config)?;
                    SHAPER.with(|cell| *cell.borrow_mut() = Some(shaper));
                    Ok(())
                }
                fn shape(evaluation: wit_types::Evaluation) -> Result<f64, String> {
                    let evaluation = evaluation.into();
                    SHAPER.with(|cell| match cell.borrow_mut().as_mut() {
                        Some(shaper) => $crate::RewardShaper::shape(shaper, &evaluation),
                        None => Err("`shape` called before `init`".into()),
                    })
                }
            }

            $crate::reward_bindings::export_reward_world!(Export);
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub fn info(name: &str, version: &str, description: &str) -> crate::agent_bindings::nas::plugin::types::PluginInfo {
        crate::agent_bindings::nas::plugin::types::PluginInfo {
            name: name.into(),
            version: version.into(),
            description: description.into(),
        }
    }

    pub fn reward_info(
        name: &str,
        version: &str,
        description: &str,
    ) -> crate::reward_bindings::nas::plugin::types::PluginInfo {
        crate::reward_bindings::nas::plugin::types::PluginInfo {
            name: name.into(),
            version: version.into(),
            description: description.into(),
        }
    }
}

/// The configuration of a plugin that takes none: `{}` parses, anything else is an error.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}
