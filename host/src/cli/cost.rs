//! `nas-host cost`: latency tables for hardware-aware search on another machine than the target.
//! `measure-layers` runs on the deployment target and writes every layer's latency; `check-table`
//! says how close a table's sums come to timing whole networks on the machine it runs on.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use nas_config::{CostConfig, DatasetSpec, RunConfig};
use nas_core::cost::LatencyTable;
use nas_core::mdp::Mdp;
use nas_datasets::DataRef;

use super::DataArgs;

#[derive(Subcommand, Debug)]
pub(super) enum CostCommand {
    /// Time every layer the search space can contain, alone, on this machine (run it on the
    /// deployment target), into a latency table for `[cost] latency_table`.
    MeasureLayers(MeasureLayersArgs),
    /// Time whole networks sampled from the search space and compare each with the sum of its
    /// layers in a latency table measured on this machine.
    CheckTable(CheckTableArgs),
}

#[derive(Args, Debug)]
pub(super) struct SpaceArgs {
    /// Take the search space, dataset and `[cost]` (batch, runs, warm-up) from a run configuration.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset (default: the configuration's, else mnist3): its input shape and classes.
    #[arg(long)]
    pub dataset: Option<DataRef>,
    /// libtorch threads while timing (default: `[cost] threads`, 1; 0 keeps libtorch's own).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Args, Debug)]
pub(super) struct MeasureLayersArgs {
    #[command(flatten)]
    pub space: SpaceArgs,
    /// Where to write the table (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub(super) struct CheckTableArgs {
    #[command(flatten)]
    pub space: SpaceArgs,
    /// The latency table to check (measured on this machine).
    #[arg(long)]
    pub table: PathBuf,
    /// Architectures sampled from the search space.
    #[arg(long, default_value_t = 30)]
    pub archs: usize,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What the arguments name: the search space, the dataset's input and classes, `[cost]`, and the
/// children's activation.
struct Space {
    mdp: Mdp,
    input: (usize, usize, usize),
    classes: usize,
    cost: CostConfig,
    activation: nas_config::Activation,
}

fn space(args: &SpaceArgs) -> anyhow::Result<Space> {
    let mut config = match &args.config {
        Some(path) => RunConfig::from_file(path)?,
        None => RunConfig::default(),
    };
    if let Some(dataset) = &args.dataset {
        config.dataset = DatasetSpec::from(dataset.clone());
    }
    config.cost.validate()?;
    if let Some(threads) = args.threads {
        config.cost.threads = threads;
    }
    let info = config.dataset.describe()?;
    let mdp = Mdp::new(config.mdp.clone(), info.height as u32);
    Ok(Space {
        mdp,
        input: info.image_shape(),
        classes: info.num_classes(),
        cost: config.cost,
        activation: config.train.activation,
    })
}

pub(super) fn run_cost(command: CostCommand) -> anyhow::Result<()> {
    match command {
        CostCommand::MeasureLayers(args) => measure_layers(args),
        CostCommand::CheckTable(args) => check_table(args),
    }
}

fn measure_layers(args: MeasureLayersArgs) -> anyhow::Result<()> {
    let Space {
        mdp,
        input,
        classes,
        cost,
        activation,
    } = space(&args.space)?;
    let device = nas_train::device::select(args.space.data.device)?;
    let started = std::time::Instant::now();
    let table = nas_train::cost::measure_layers(&mdp, input, classes, activation, device, &cost, &mut |i, n, key| {
        if i % 50 == 0 {
            eprintln!("[{i}/{n}] {key}");
        }
    });
    let text = serde_json::to_string_pretty(&table)?;
    std::fs::write(&args.out, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", args.out.display()))?;
    println!(
        "{}: {} layers timed on {} in {:.1} s (batch {}, median of {} runs each)",
        args.out.display(),
        table.layers.len(),
        table.device,
        started.elapsed().as_secs_f64(),
        table.batch,
        table.runs
    );
    Ok(())
}

fn check_table(args: CheckTableArgs) -> anyhow::Result<()> {
    let Space {
        mdp,
        input,
        classes,
        mut cost,
        activation,
    } = space(&args.space)?;
    let table = LatencyTable::load(&args.table)?;
    cost.batch = table.batch;
    let device = nas_train::device::select(args.space.data.device)?;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(args.seed);
    let name = args.table.display().to_string();
    println!("| architecture | measured ms | sum of layers ms | error |\n|---|---|---|---|");
    let mut errors = Vec::new();
    let mut pairs = Vec::new();
    for _ in 0..args.archs {
        let arch = mdp.sample_architecture(&mut rng);
        let summed = table.latency(&arch, &name)?.median_ms;
        let measured = nas_train::cost::measure_latency(&arch, input, classes, activation, device, &cost).median_ms;
        let error = (summed - measured) / measured;
        errors.push(error.abs());
        pairs.push((measured, summed));
        println!("| `{arch}` | {measured:.4} | {summed:.4} | {:+.1}% |", 100.0 * error);
    }
    let (mean, _) = nas_core::stats::mean_std(&errors);
    let mut sorted = errors.clone();
    sorted.sort_by(f64::total_cmp);
    let (measured, summed): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
    println!(
        "\n{} architectures: mean absolute error {:.1}%, median {:.1}%, worst {:.1}%; Spearman ρ(sum, measured) = {:.3}",
        errors.len(),
        100.0 * mean,
        100.0 * nas_core::stats::quantile_sorted(&sorted, 0.5),
        100.0 * sorted.last().copied().unwrap_or(f64::NAN),
        nas_core::stats::spearman(&summed, &measured)
    );
    Ok(())
}
