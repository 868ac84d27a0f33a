//! Host bindings generated from the WIT contract (`plugin-sdk/wit`). Both worlds share one set of
//! `nas:plugin/types`, so a layer or plugin description converts the same way for either kind.

use crate::arch::Layer;

pub(crate) mod agent {
    wasmtime::component::bindgen!({ path: "../plugin-sdk/wit", world: "agent-plugin" });
}

pub(crate) mod reward {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "reward-plugin",
        with: { "nas:plugin/types": super::agent::nas::plugin::types },
    });
}

pub(crate) use agent::nas::plugin::types as wit;

pub(crate) fn wit_layer(layer: &Layer) -> wit::Layer {
    match *layer {
        Layer::Conv { filters, kernel } => wit::Layer::Conv(wit::ConvLayer { filters, kernel }),
        Layer::Pool { size, stride } => wit::Layer::Pool(wit::PoolLayer { size, stride }),
        Layer::Fc { units } => wit::Layer::Fc(units),
    }
}
