//! The `nas-host` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use nas_datasets::{DataSource, DatasetName};

use crate::arch::Architecture;
use crate::device::{self, DeviceChoice};
use crate::mdp::{Mdp, MdpConfig};
use crate::model::Activation;
use crate::train::{self, TensorData, TrainConfig, Validation};

#[derive(Parser, Debug)]
#[command(name = "nas-host", version, about = "Neural architecture search by reinforcement learning with sandboxed WebAssembly agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train one architecture and print its accuracy, parameter count and time per epoch.
    TrainArch(TrainArchArgs),
}

/// Where data comes from and where training runs.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset: mnist3, mnist, cifar5, cifar10 or synthetic.
    #[arg(long, default_value = "mnist3")]
    pub dataset: DatasetName,
    /// Directory with `mnist/` and `cifar-10-batches-bin/` (default: $NAS_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

#[derive(Args, Debug)]
struct TrainArchArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The architecture in canonical form, e.g. "conv(32,3) pool(5,3) fc(64)".
    #[arg(long)]
    arch: String,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    #[arg(long, value_enum, default_value_t = Activation::Relu)]
    activation: Activation,
    /// `test` (the seed's protocol) or `holdout:N`.
    #[arg(long, default_value = "test")]
    validation: Validation,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::TrainArch(args) => train_arch(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NAS_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Loads a dataset into tensors on the chosen device.
pub fn load_tensor_data(data: &DataArgs, validation: Validation, seed: u64) -> anyhow::Result<TensorData> {
    let dev = device::select(data.device)?;
    let source = DataSource::resolve(data.data_dir.as_deref());
    let dataset = nas_datasets::load(data.dataset, &source).with_context(|| format!("loading dataset {}", data.dataset))?;
    TensorData::new(&dataset, validation, seed, dev)
}

fn train_arch(args: TrainArchArgs) -> anyhow::Result<()> {
    let arch: Architecture = args.arch.parse().map_err(anyhow::Error::msg)?;
    let (_, side, _) = args.data.dataset.image_shape();
    Mdp::new(MdpConfig::default(), side as u32)
        .validate(&arch)
        .map_err(|e| anyhow::anyhow!("invalid architecture `{arch}` for {}: {e}", args.data.dataset))?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        activation: args.activation,
        validation: args.validation,
        seed: args.seed,
    };
    let data = load_tensor_data(&args.data, config.validation, config.seed)?;
    let outcome = train::train(&arch, &data, &config);
    if args.json {
        let json = serde_json::json!({
            "arch": arch.to_string(),
            "dataset": args.data.dataset.as_str(),
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
        println!("dataset        {} ({:?})", args.data.dataset, data.device);
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
