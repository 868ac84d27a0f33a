//! # nas-plugin-sdk
//!
//! Write nas-host agents, reward shapers and assessors in plain Rust. Implement [`Agent`],
//! [`RewardShaper`] or [`Assessor`], then call [`register_agent!`], [`register_reward!`] or
//! [`register_assessor!`] once; build with
//! `cargo build --release --target wasm32-wasip2`. The WIT contract (`wit/nas-plugin.wit`) and its
//! glue stay hidden, the way Zed's `zed_extension_api` hides its own.
//!
//! ```ignore
//! use nas_plugin_sdk::*;
//!
//! struct Random;
//!
//! impl Agent for Random {
//!     const NAME: &'static str = "random";
//!     const DESCRIPTION: &'static str = "uniform over the valid actions";
//!     type Config = NoConfig;
//!
//!     fn init(_space: Space, _config: NoConfig, _seed: u64) -> Result<Self, String> {
//!         Ok(Random)
//!     }
//!
//!     fn act(&mut self, _env: u32, _obs: &Observation, mask: &[bool], _explore: bool) -> Result<usize, String> {
//!         PluginRng::from_host().uniform_valid(mask).ok_or_else(|| "no valid action".into())
//!     }
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

/// The contract version this SDK speaks: the version of the WIT package `nas:plugin` (a test
/// checks it against `wit/nas-plugin.wit`).
pub const CONTRACT_VERSION: &str = "0.3.0";

/// A search policy. The host creates it with [`Agent::init`], then calls `act` for every step and
/// `observe` after each one. Only `init` and `act` are required: a stateless agent keeps the
/// defaults of the others.
pub trait Agent: Sized + 'static {
    /// Short name, shown in logs, errors and reports.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// The plugin's hyperparameters, parsed by the SDK from its `[plugins.NAME]` section (JSON):
    /// missing fields keep their defaults when it has `#[serde(default)]`, unknown ones are an
    /// error when it has `#[serde(deny_unknown_fields)]`. [`NoConfig`] takes none.
    type Config: serde::de::DeserializeOwned + Default;

    /// Creates the agent for a search space.
    fn init(space: Space, config: Self::Config, seed: u64) -> Result<Self, String>;

    /// Returns an index into `space.actions` with `mask[index] == true`. When `explore` is false the
    /// host wants the policy's best guess (evaluation of a frozen policy).
    fn act(&mut self, env: u32, observation: &Observation, mask: &[bool], explore: bool) -> Result<usize, String>;

    /// The reward of the previous action in `env` and whether the episode ended with it.
    fn observe(&mut self, _env: u32, _reward: f64, _done: bool) -> Result<(), String> {
        Ok(())
    }

    /// The whole learned state (see [`to_bytes`]), so a resumed run continues exactly. A stateless
    /// agent saves nothing.
    fn save(&self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }

    /// Restores what [`Agent::save`] returned.
    fn load(&mut self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// Values for the host's logs and plots.
    fn metrics(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Turns an evaluated child network into a reward.
pub trait RewardShaper: Sized + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// The shaper's hyperparameters, parsed as for [`Agent::Config`].
    type Config: serde::de::DeserializeOwned + Default;

    fn init(config: Self::Config) -> Result<Self, String>;

    fn shape(&mut self, evaluation: &Evaluation) -> Result<f64, String>;
}

/// Stops hopeless children early. After each epoch but the last of a child in training the host
/// calls [`Assessor::assess`] with the curve so far; a child that trains to the end is passed to
/// [`Assessor::completed`], so the assessor can learn what the population's curves look like.
/// A resumed run replays the completed curves of its children in order, so an assessor needs no
/// checkpoint of its own.
pub trait Assessor: Sized + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// The assessor's settings, parsed as for [`Agent::Config`].
    type Config: serde::de::DeserializeOwned + Default;

    fn init(config: Self::Config) -> Result<Self, String>;

    /// Continue or stop a child in training, from its curve so far.
    fn assess(&mut self, curve: &LearningCurve) -> Result<Verdict, String>;

    /// The whole curve of a child that trained to the end.
    fn completed(&mut self, _curve: &LearningCurve) -> Result<(), String> {
        Ok(())
    }
}

/// Parses a plugin's JSON configuration section into its hyperparameter struct ("{}", empty or
/// `null` give the defaults). The SDK does this for [`Agent::Config`]; it is public for plugins
/// with configuration of their own.
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
    // The reward world shares the agent world's `nas:plugin/types` (the key names the contract
    // version; a stale one fails to compile as an unused remapping), so each type and its
    // conversions exist once.
    wit_bindgen::generate!({
        path: "wit",
        world: "reward-plugin",
        with: { "nas:plugin/types@0.3.0": crate::agent_bindings::nas::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_reward_world",
        default_bindings_module: "nas_plugin_sdk::reward_bindings",
        runtime_path: "nas_plugin_sdk::wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub mod assessor_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "assessor-plugin",
        with: { "nas:plugin/types@0.3.0": crate::agent_bindings::nas::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_assessor_world",
        default_bindings_module: "nas_plugin_sdk::assessor_bindings",
        runtime_path: "nas_plugin_sdk::wit_bindgen::rt",
    });
}

/// Exports an [`Agent`] implementation as the plugin's agent.
#[macro_export]
macro_rules! register_agent {
    ($agent:ty) => {
        #[doc(hidden)]
        pub struct __NasVersion;
        impl $crate::__private::Version for __NasVersion {
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }
        #[doc(hidden)]
        type __NasAgentExport = $crate::__private::AgentExport<$agent, __NasVersion>;
        $crate::agent_bindings::export_agent_world!(__NasAgentExport with_types_in $crate::agent_bindings);
    };
}

/// Exports a [`RewardShaper`] implementation as the plugin's reward shaper.
#[macro_export]
macro_rules! register_reward {
    ($shaper:ty) => {
        #[doc(hidden)]
        pub struct __NasVersion;
        impl $crate::__private::Version for __NasVersion {
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }
        #[doc(hidden)]
        type __NasRewardExport = $crate::__private::RewardExport<$shaper, __NasVersion>;
        $crate::reward_bindings::export_reward_world!(__NasRewardExport with_types_in $crate::reward_bindings);
    };
}

/// Exports an [`Assessor`] implementation as the plugin's assessor.
#[macro_export]
macro_rules! register_assessor {
    ($assessor:ty) => {
        #[doc(hidden)]
        pub struct __NasVersion;
        impl $crate::__private::Version for __NasVersion {
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }
        #[doc(hidden)]
        type __NasAssessorExport = $crate::__private::AssessorExport<$assessor, __NasVersion>;
        $crate::assessor_bindings::export_assessor_world!(__NasAssessorExport with_types_in $crate::assessor_bindings);
    };
}

/// The WIT glue: ordinary generic code, so the register macros stay a few lines.
#[doc(hidden)]
pub mod __private {
    use std::any::Any;
    use std::cell::RefCell;
    use std::marker::PhantomData;

    use crate::agent_bindings::exports::nas::plugin::agent::Guest as AgentGuest;
    use crate::agent_bindings::nas::plugin::types as wit;
    use crate::assessor_bindings::exports::nas::plugin::assessor::Guest as AssessorGuest;
    use crate::reward_bindings::exports::nas::plugin::reward::Guest as RewardGuest;
    use crate::{Agent, Assessor, RewardShaper};

    thread_local! {
        /// The plugin's one instance (a component exports one agent, shaper or assessor).
        static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    fn with<T: 'static, R>(call: &str, f: impl FnOnce(&mut T) -> Result<R, String>) -> Result<R, String> {
        INSTANCE.with(
            |cell| match cell.borrow_mut().as_mut().and_then(|b| b.downcast_mut::<T>()) {
                Some(instance) => f(instance),
                None => Err(format!("`{call}` called before `init`")),
            },
        )
    }

    fn install<T: 'static>(instance: T) {
        INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(instance)));
    }

    /// The plugin crate's version, which only the register macro's expansion can name.
    pub trait Version {
        const VERSION: &'static str;
    }

    fn info(name: &str, version: &str, description: &str) -> wit::PluginInfo {
        wit::PluginInfo {
            name: name.into(),
            version: version.into(),
            description: description.into(),
        }
    }

    pub struct AgentExport<A, V>(PhantomData<(A, V)>);

    impl<A: Agent, V: Version> AgentGuest for AgentExport<A, V> {
        fn describe() -> wit::PluginInfo {
            info(A::NAME, V::VERSION, A::DESCRIPTION)
        }
        fn init(space: wit::Space, config: String, seed: u64) -> Result<(), String> {
            install(A::init(space.into(), crate::parse_config(&config)?, seed)?);
            Ok(())
        }
        fn act(env: u32, observation: wit::Observation, mask: Vec<bool>, explore: bool) -> Result<u32, String> {
            let observation = observation.into();
            with("act", |a: &mut A| a.act(env, &observation, &mask, explore)).map(|i| i as u32)
        }
        fn observe(env: u32, reward: f64, done: bool) -> Result<(), String> {
            with("observe", |a: &mut A| a.observe(env, reward, done))
        }
        fn save() -> Result<Vec<u8>, String> {
            with("save", |a: &mut A| a.save())
        }
        fn load(state: Vec<u8>) -> Result<(), String> {
            with("load", |a: &mut A| a.load(&state))
        }
        fn metrics() -> Vec<wit::Metric> {
            with("metrics", |a: &mut A| Ok(a.metrics()))
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| wit::Metric { name, value })
                .collect()
        }
    }

    pub struct RewardExport<S, V>(PhantomData<(S, V)>);

    impl<S: RewardShaper, V: Version> RewardGuest for RewardExport<S, V> {
        fn describe() -> wit::PluginInfo {
            info(S::NAME, V::VERSION, S::DESCRIPTION)
        }
        fn init(config: String) -> Result<(), String> {
            install(S::init(crate::parse_config(&config)?)?);
            Ok(())
        }
        fn shape(evaluation: wit::Evaluation) -> Result<f64, String> {
            let evaluation = evaluation.into();
            with("shape", |s: &mut S| s.shape(&evaluation))
        }
    }

    pub struct AssessorExport<A, V>(PhantomData<(A, V)>);

    impl<A: Assessor, V: Version> AssessorGuest for AssessorExport<A, V> {
        fn describe() -> wit::PluginInfo {
            info(A::NAME, V::VERSION, A::DESCRIPTION)
        }
        fn init(config: String) -> Result<(), String> {
            install(A::init(crate::parse_config(&config)?)?);
            Ok(())
        }
        fn assess(curve: wit::LearningCurve) -> Result<wit::Verdict, String> {
            let curve = curve.into();
            with("assess", |a: &mut A| a.assess(&curve)).map(Into::into)
        }
        fn completed(curve: wit::LearningCurve) -> Result<(), String> {
            let curve = curve.into();
            with("completed", |a: &mut A| a.completed(&curve))
        }
    }
}

/// The configuration of a plugin that takes none: `{}` parses, anything else is an error.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

#[cfg(test)]
mod contract_tests {
    /// The one contract version constant matches the WIT package line.
    #[test]
    fn contract_version_matches_the_wit_package() {
        let wit = include_str!("../wit/nas-plugin.wit");
        let package = wit
            .lines()
            .find_map(|l| l.trim().strip_prefix("package nas:plugin@"))
            .expect("a package line");
        assert_eq!(package.trim_end_matches(';'), super::CONTRACT_VERSION);
    }

    /// The README's complete assessor is the source `plugins/threshold_stop` builds, verbatim.
    #[test]
    fn the_readme_shows_the_example_assessor_as_built() {
        let readme = include_str!("../README.md");
        let source = include_str!("../../plugins/threshold_stop/src/lib.rs");
        assert!(
            readme.contains(&format!("```rust\n{source}```")),
            "plugin-sdk/README.md's assessor differs from plugins/threshold_stop/src/lib.rs"
        );
    }
}
