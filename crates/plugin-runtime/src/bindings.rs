//! Host bindings generated from the WIT contracts: the current one (`plugin-sdk/wit`), whose worlds
//! share one set of `nas:plugin/types`, and the older ones the host still loads (`wit/` beside this crate).
//! Component types are checked by structure, not by package version, so an older world reuses the
//! current Rust types wherever the record is unchanged and only `evaluation` has a 0.1 and a 0.2 form.

use nas_core::arch::Layer;

pub(crate) mod agent {
    wasmtime::component::bindgen!({ path: "../../plugin-sdk/wit", world: "agent-plugin" });
}

pub(crate) mod reward {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit",
        world: "reward-plugin",
        with: { "nas:plugin/types": super::agent::nas::plugin::types },
    });
}

pub(crate) mod assessor {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit",
        world: "assessor-plugin",
        with: { "nas:plugin/types": super::agent::nas::plugin::types },
    });
}

/// The current `layer` as an older contract's module `$wit` generates it (the same variant under
/// another type: each contract's bindings have their own).
macro_rules! older_layer {
    ($wit:ident, $layer:expr) => {
        match *$layer {
            super::wit::Layer::Conv(c) => $wit::Layer::Conv($wit::ConvLayer {
                filters: c.filters,
                kernel: c.kernel,
            }),
            super::wit::Layer::Pool(p) => $wit::Layer::Pool($wit::PoolLayer {
                size: p.size,
                stride: p.stride,
            }),
            super::wit::Layer::Fc(units) => $wit::Layer::Fc(units),
        }
    };
}

/// Contract 0.1.0 (agents and reward shapers built before assessors existed).
pub(crate) mod v0_1 {
    pub(crate) mod agent {
        // Every type the agent interface uses is unchanged since 0.1.
        wasmtime::component::bindgen!({
            path: "wit/nas-plugin@0.1.0.wit",
            world: "agent-plugin",
            with: { "nas:plugin/types": crate::bindings::agent::nas::plugin::types },
        });
    }

    pub(crate) mod reward {
        wasmtime::component::bindgen!({ path: "wit/nas-plugin@0.1.0.wit", world: "reward-plugin" });
    }

    use reward::nas::plugin::types as wit_0_1;

    /// The 0.1 evaluation: the current one without what assessors added.
    pub(crate) fn evaluation(e: &super::wit::Evaluation) -> wit_0_1::Evaluation {
        let layer = |layer: &super::wit::Layer| older_layer!(wit_0_1, layer);
        wit_0_1::Evaluation {
            accuracy: e.accuracy,
            params: e.params,
            depth: e.depth,
            architecture: e.architecture.clone(),
            layers: e.layers.iter().map(layer).collect(),
            train_seconds: e.train_seconds,
            failure: e.failure.clone(),
        }
    }
}

/// Contract 0.2.0 (before `evaluation` carried the child's cost): agents and assessors are
/// unchanged since, so they reuse the current types; the reward world has its own `evaluation`.
pub(crate) mod v0_2 {
    pub(crate) mod agent {
        wasmtime::component::bindgen!({
            path: "wit/nas-plugin@0.2.0.wit",
            world: "agent-plugin",
            with: { "nas:plugin/types": crate::bindings::agent::nas::plugin::types },
        });
    }

    pub(crate) mod assessor {
        wasmtime::component::bindgen!({
            path: "wit/nas-plugin@0.2.0.wit",
            world: "assessor-plugin",
            with: { "nas:plugin/types": crate::bindings::agent::nas::plugin::types },
        });
    }

    pub(crate) mod reward {
        wasmtime::component::bindgen!({ path: "wit/nas-plugin@0.2.0.wit", world: "reward-plugin" });
    }

    use reward::nas::plugin::types as wit_0_2;

    /// The 0.2 evaluation: the current one without its cost.
    pub(crate) fn evaluation(e: &super::wit::Evaluation) -> wit_0_2::Evaluation {
        let layer = |layer: &super::wit::Layer| older_layer!(wit_0_2, layer);
        wit_0_2::Evaluation {
            accuracy: e.accuracy,
            params: e.params,
            depth: e.depth,
            architecture: e.architecture.clone(),
            layers: e.layers.iter().map(layer).collect(),
            train_seconds: e.train_seconds,
            failure: e.failure.clone(),
            epochs_trained: e.epochs_trained,
            epochs: e.epochs,
            stopped: e.stopped,
        }
    }

    impl From<reward::nas::plugin::types::PluginInfo> for super::wit::PluginInfo {
        fn from(info: reward::nas::plugin::types::PluginInfo) -> super::wit::PluginInfo {
            super::wit::PluginInfo {
                name: info.name,
                version: info.version,
                description: info.description,
            }
        }
    }
}

pub(crate) use agent::nas::plugin::types as wit;

pub(crate) fn wit_layer(layer: &Layer) -> wit::Layer {
    match *layer {
        Layer::Conv { filters, kernel } => wit::Layer::Conv(wit::ConvLayer { filters, kernel }),
        Layer::Pool { size, stride } => wit::Layer::Pool(wit::PoolLayer { size, stride }),
        Layer::Fc { units } => wit::Layer::Fc(units),
    }
}

impl From<v0_1::reward::nas::plugin::types::PluginInfo> for wit::PluginInfo {
    fn from(info: v0_1::reward::nas::plugin::types::PluginInfo) -> wit::PluginInfo {
        wit::PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
        }
    }
}
