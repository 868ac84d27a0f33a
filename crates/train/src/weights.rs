//! Trained weights as bytes, for the store to keep and for export to restore.

use tch::nn;

/// The variables of `vs` as a safetensors file's bytes (tch writes safetensors only to paths).
pub fn safetensors_bytes(vs: &nn::VarStore) -> anyhow::Result<Vec<u8>> {
    let file = tempfile::Builder::new().suffix(".safetensors").tempfile()?;
    vs.save(file.path())?;
    Ok(std::fs::read(file.path())?)
}
