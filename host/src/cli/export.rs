//! `nas-host export` and `nas-host predict`.

use std::path::PathBuf;

use clap::Args;
use nas_core::arch::Architecture;
use nas_outputs::{export, predict};
use nas_store::Store;

use super::{DataArgs, StoreArgs};

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    pub run: i64,
    /// Export the K best-rewarded distinct architectures of the run (into OUT/top-1 … OUT/top-K
    /// when K > 1).
    #[arg(long, default_value_t = 1, conflicts_with = "arch")]
    pub top: usize,
    /// Export the run's Pareto-optimal children (accuracy against latency, or multiply-adds
    /// when unmeasured) into OUT/pareto-1 …, with the set and its costs in OUT/pareto.json.
    #[arg(long, conflicts_with_all = ["arch", "top"])]
    pub pareto: bool,
    /// Export this architecture instead (trained with the run's protocol and data).
    #[arg(long)]
    pub arch: Option<String>,
    /// Epochs to train (default: the run's protocol; more than the search used is usual).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Output directory (default: runs/export-RUN).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write into an output directory that already exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Args, Debug)]
pub(super) struct PredictArgs {
    /// A directory written by `nas-host export`.
    pub model: PathBuf,
    /// PNG or JPEG files; converted to the model's channels and resized to its input if needed.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Export progress on stderr; where each model went on stdout.
pub(super) struct ExportProgress;

impl export::ExportSink for ExportProgress {
    fn training(&mut self, index: usize, total: usize, arch: &Architecture, epochs: usize) {
        eprintln!("[{}/{total}] training {arch} for {epochs} epochs", index + 1);
    }

    fn written(&mut self, model: &nas_outputs::export::Exported) {
        println!(
            "{}: {} — accuracy {:.4} ({} split), {} parameters{}",
            model.dir.display(),
            model.card.architecture,
            model.card.accuracy,
            model.card.evaluation_split,
            model.card.params,
            if model.from_search {
                " (the weights the search kept; not trained again)"
            } else {
                ""
            }
        );
    }
}

pub(super) fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let choice = match &args.arch {
        Some(text) => nas_outputs::export::Choice::Arch(text.parse().map_err(anyhow::Error::msg)?),
        None if args.pareto => nas_outputs::export::Choice::Pareto,
        None => nas_outputs::export::Choice::Top(args.top),
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("runs/export-{}", args.run)));
    let request = nas_outputs::export::ExportRequest {
        run: args.run,
        choice,
        epochs: args.epochs,
        out: out.clone(),
        force: args.force,
        data_dir: args.data.data_dir.clone(),
        device: args.data.device,
    };
    let store = Store::open(&args.store.db)?;
    let models = nas_outputs::export::export(&store, &request, &mut ExportProgress)?;
    let first = &models[0].dir;
    println!("\nIn Python (PyTorch; `pip install safetensors` for model.py):\n");
    println!("    import sys; sys.path.insert(0, {:?})", first.display().to_string());
    println!("    import model; net = model.load()");
    println!("    logits = net(model.preprocess(images))  # uint8 images, [N, C, H, W]");
    println!(
        "\nor torch.jit.load({:?}), or onnxruntime on model.onnx.",
        first.join("model.pt").display().to_string()
    );
    Ok(())
}

pub(super) fn run_predict(args: PredictArgs) -> anyhow::Result<()> {
    for p in predict::predict(&args.model, &args.images)? {
        let note = p
            .resized_from
            .map(|(w, h)| format!(" (resized from {w}×{h})"))
            .unwrap_or_default();
        println!(
            "{}: {} (class {}, p = {:.3}){note}",
            p.path.display(),
            p.name,
            p.class,
            p.probability
        );
    }
    Ok(())
}
