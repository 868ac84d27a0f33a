//! nas-train: child networks with libtorch. Picks the device, builds the network an architecture
//! plans ([`nas_core::netplan`]), trains it with the run's protocol and turns the result into an
//! [`nas_core::record::Outcome`]; the synthetic evaluator stands in for training in tests.

pub mod cost;
pub mod device;
pub mod evaluator;
pub mod model;
pub mod train;
pub mod weights;
