//! `nas-host datasets`: fetch, verify and summarise datasets.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use nas_config::{ParallelOverrides, RunConfig, RunOverrides, TrainOverrides};
use nas_core::arch::Architecture;
use nas_core::mdp::Mdp;
use nas_core::record::{EpisodeRecord, EvalSampleRow};
use nas_datasets::{DataSource, DatasetName};
use nas_outputs::{compare, export, predict, report};
use nas_plugin_runtime::{self as plugin, Runtime};
use nas_search::frozen_policy::{self, SampleSink};
use nas_search::options::SearchOptions;
use nas_search::search::{self, EpisodeSink, Start};
use nas_store::Store;
use nas_train::device::DeviceChoice;
use nas_train::train::{self, TensorData};

use super::{DataArgs, StoreArgs};

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
