//! `nas-host datasets`: fetch, verify and summarise datasets.

use std::path::PathBuf;

use anyhow::Context;
use nas_datasets::{DataSource, DatasetName};

pub(super) fn fetch_dataset(name: DatasetName, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let source = DataSource::resolve(data_dir.as_deref());
    let d = nas_datasets::load(name, &source).with_context(|| format!("loading dataset {name}"))?;
    println!(
        "{name}: {} train / {} test images of {}x{}x{}, {} classes (from {})",
        d.train.len(),
        d.test.len(),
        d.channels,
        d.height,
        d.width,
        d.num_classes,
        source.data_dir.display()
    );
    Ok(())
}
