//! `nas-host show-arch` and `nas-host train-arch`: one architecture, without a search.

use std::path::PathBuf;

use clap::Args;
use nas_config::{DatasetSpec, RunConfig, TrainOverrides};
use nas_core::arch::Architecture;
use nas_core::mdp::Mdp;
use nas_datasets::DataRef;
use nas_train::train::{self, TensorData};

use super::DataArgs;

#[derive(Args, Debug)]
pub(super) struct ShowArchArgs {
    /// The architecture in canonical form, e.g. "conv(32,3) pool(5,3) fc(64)".
    pub arch: String,
    /// Dataset whose input shape and classes the network is built for: a name, or the path of
    /// a folder of class folders or of a .npz file.
    #[arg(long, default_value = "mnist3")]
    pub dataset: DataRef,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `train-arch`'s protocol: a run configuration's `[train]` and `[mdp]` (or the defaults), with
/// these flags on top.
#[derive(Args, Debug)]
pub(super) struct TrainArchArgs {
    /// Dataset (default: the configuration's, else mnist3): a name, or a folder or .npz path.
    #[arg(long)]
    pub dataset: Option<DataRef>,
    /// Take the training protocol, search space and dataset from a run configuration, e.g.
    /// configs/seed-exact.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// The architecture in canonical form, e.g. "conv(32,3) pool(5,3) fc(64)".
    #[arg(long)]
    pub arch: String,
    #[command(flatten)]
    pub protocol: TrainOverrides,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn show_arch(args: ShowArchArgs) -> anyhow::Result<()> {
    let arch: Architecture = args.arch.parse().map_err(anyhow::Error::msg)?;
    let info = DatasetSpec::from(args.dataset.clone()).describe()?;
    let side = info.height;
    // The summary is defined for any architecture the network builder accepts; say when the
    // default search space would not produce it, without refusing.
    if let Err(e) = Mdp::new(Default::default(), side as u32).validate(&arch) {
        anyhow::ensure!(
            arch.fits(side as u32),
            "`{arch}` cannot be built for {}: a layer's window is larger than its input ({e})",
            args.dataset
        );
        eprintln!("note: the default search space would not produce `{arch}`: {e}");
    }
    let summary = arch.summary(info.image_shape(), info.num_classes());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{arch} on {}\n{summary}", args.dataset);
    }
    Ok(())
}

pub(super) fn train_arch(args: TrainArchArgs) -> anyhow::Result<()> {
    let arch: Architecture = args.arch.parse().map_err(anyhow::Error::msg)?;
    let run = match &args.config {
        Some(path) => RunConfig::from_file(path)?,
        None => RunConfig::default(),
    };
    let mut dataset = run.dataset;
    if let Some(source) = args.dataset {
        dataset.source = source;
    }
    let mut config = run.train;
    args.protocol.apply(&mut config);
    let info = dataset.describe()?;
    let side = info.height;
    Mdp::new(run.mdp, side as u32)
        .validate(&arch)
        .map_err(|e| anyhow::anyhow!("invalid architecture `{arch}` for {dataset}: {e}"))?;
    let data = TensorData::load(&dataset, args.data.data_dir.as_deref(), args.data.device, &config)?;
    let outcome = train::train(&arch, &data, &config);
    if args.json {
        let json = serde_json::json!({
            "arch": arch.to_string(),
            "dataset": dataset.source.label(),
            "protocol": config,
            "device": format!("{:?}", data.device),
            "accuracy": outcome.accuracy,
            "params": outcome.params,
            "seconds": outcome.seconds,
            "seconds_per_epoch": outcome.seconds_per_epoch,
            "failure": outcome.failure,
        });
        println!("{json}");
    } else {
        println!("architecture   {arch}");
        println!("{}", arch.summary(info.image_shape(), info.num_classes()));
        println!("dataset        {dataset} ({:?})", data.device);
        println!(
            "protocol       {} epochs, batch {}, Adam lr {}, activation {:?}, inputs {:?}, seed {}",
            config.epochs, config.batch_size, config.learning_rate, config.activation, config.normalize, config.seed
        );
        match &outcome.failure {
            None => println!("accuracy       {:.4}", outcome.accuracy),
            Some(reason) => println!("failed         {reason}"),
        }
        println!("parameters     {}", outcome.params);
        println!("seconds/epoch  {:.2}", outcome.seconds_per_epoch);
    }
    if let Some(reason) = outcome.failure {
        anyhow::bail!("training failed: {reason}");
    }
    Ok(())
}
