//! nas-outputs: what nas-host makes of a run once the store holds it — Markdown reports with
//! plots, comparison tables across runs, exported models (TorchScript, ONNX, safetensors +
//! `model.py`) and predictions with an exported model. Reads the store; never searches.

pub mod anytime;
pub mod compare;
pub mod export;
pub mod pareto;
mod plots;
pub mod predict;
pub mod report;
