//! `nas-host datasets`: fetch, verify and summarise datasets.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use nas_config::{DatasetOptions, DatasetSpec};
use nas_datasets::{DataRef, DataSource, DatasetName};

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

#[derive(Args, Debug)]
pub(super) struct InspectArgs {
    /// A folder of class folders (or with train/ and test/), a .npz file, or a dataset name.
    pub dataset: DataRef,
    /// Read the `[dataset]` options (channels, image_size, test_fraction…) from this run
    /// configuration.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory of the named datasets (default: $NAS_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let options = match &args.config {
        Some(path) => nas_config::RunConfig::from_file(path)?.dataset.options,
        None => DatasetOptions::default(),
    };
    let spec = DatasetSpec {
        source: args.dataset,
        options,
    };
    spec.validate()?;
    let source = DataSource::resolve(args.data_dir.as_deref());
    let report = nas_datasets::inspect_ref(&spec.source, &source, &spec.folder_options(), Some(&spec.cache_dir()))
        .map_err(|e| anyhow::anyhow!("inspecting {}: {e}", spec.source))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    anyhow::ensure!(
        report.is_usable(),
        "{} has problems that stop a search (listed above); fix them, or see `[dataset]` in the README for the options",
        spec.source
    );
    Ok(())
}
