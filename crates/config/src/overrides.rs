//! Command-line flags that override a run configuration; the one place where flags are merged
//! into it (`search`, comparison plans, `train-arch`).

use nas_datasets::DataRef;

use crate::Activation;

use crate::EvaluatorChoice;

use crate::Launcher;

use crate::Normalize;

use crate::ParallelConfig;

use crate::RunConfig;

use crate::Schedule;

use crate::TrainConfig;
use crate::TrainSubset;

use crate::Validation;

/// Command-line flags that override a run configuration; the one place where flags are merged
/// into it (`search`, comparison plans).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunOverrides {
    /// Agent plugin: a name on the plugin path (ppo, qlearning, random) or a .wasm file.
    #[arg(long)]
    pub agent: Option<String>,
    /// Reward plugin: a name (accuracy, size_penalty) or a .wasm file.
    #[arg(long)]
    pub reward: Option<String>,
    /// Assessor plugin that stops hopeless children early: a name (median_stop) or a .wasm file;
    /// `none` (the default) trains every child to the end.
    #[arg(long)]
    pub assessor: Option<String>,
    /// Dataset: mnist3, mnist, cifar5, cifar10, synthetic, or the path of a folder of class
    /// folders (ImageFolder layout) or of a .npz file.
    #[arg(long)]
    pub dataset: Option<DataRef>,
    /// Episodes to run (with --resume: the run's new target).
    #[arg(long)]
    pub episodes: Option<usize>,
    /// How children are evaluated: train (the default), synthetic (a fixed score, no training),
    /// or table:FILE (a benchmark table, with a surrogate for what it lacks).
    #[arg(long, value_name = "train|synthetic|table:FILE")]
    pub evaluator: Option<EvaluatorChoice>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Child training epochs (overrides [train] epochs).
    #[arg(long)]
    pub epochs: Option<usize>,
}

impl RunOverrides {
    /// Writes every given flag over `config`.
    pub fn apply(&self, config: &mut RunConfig) {
        let RunOverrides {
            agent,
            reward,
            assessor,
            dataset,
            episodes,
            evaluator,
            seed,
            epochs,
        } = self.clone();
        config.agent = agent.unwrap_or(std::mem::take(&mut config.agent));
        config.reward = reward.unwrap_or(std::mem::take(&mut config.reward));
        config.assessor = assessor.unwrap_or(std::mem::take(&mut config.assessor));
        if let Some(source) = dataset {
            config.dataset.source = source;
        }
        config.episodes = episodes.unwrap_or(config.episodes);
        if let Some(choice) = evaluator {
            config.evaluator = choice.kind;
            if choice.table.is_some() {
                config.table.file = choice.table;
            }
        }
        config.seed = seed.unwrap_or(config.seed);
        config.train.epochs = epochs.unwrap_or(config.train.epochs);
    }
}

/// Flags over `[parallel]`. On a resumed run only how it is executed changes (workers, devices,
/// launcher); its environments and schedule stay those it started with.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ParallelOverrides {
    /// Worker processes training children in parallel (0: train in this process).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Environments the agent designs in, i.e. children in flight (default: one per worker).
    #[arg(long)]
    pub envs: Option<usize>,
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    /// `local` starts the workers here; `slurm` submits them as a Slurm job array (with a
    /// PostgreSQL store); `none` only queues children for workers started by hand
    /// (`nas-host worker --db …`).
    #[arg(long, value_enum)]
    pub launcher: Option<Launcher>,
    /// GPUs to pin workers to, e.g. 0,1,2,3 (default: every visible GPU).
    #[arg(long, value_delimiter = ',')]
    pub gpus: Option<Vec<u32>>,
    /// Workers sharing each GPU (with --gpus and no --workers).
    #[arg(long)]
    pub workers_per_gpu: Option<usize>,
    /// libtorch threads per CPU worker (default: the cores shared out evenly).
    #[arg(long)]
    pub threads_per_worker: Option<usize>,
}

impl ParallelOverrides {
    /// Writes the execution flags over `parallel`; with `design`, also the ones that shape
    /// results (environments, schedule), which only a new run may set.
    pub fn apply(&self, parallel: &mut ParallelConfig, design: bool) {
        parallel.workers = self.workers.unwrap_or(parallel.workers);
        parallel.launcher = self.launcher.unwrap_or(parallel.launcher);
        parallel.gpus = self.gpus.clone().unwrap_or(std::mem::take(&mut parallel.gpus));
        parallel.workers_per_gpu = self.workers_per_gpu.unwrap_or(parallel.workers_per_gpu);
        parallel.threads_per_worker = self.threads_per_worker.unwrap_or(parallel.threads_per_worker);
        if design {
            parallel.envs = self.envs.unwrap_or(parallel.envs);
            parallel.schedule = self.schedule.unwrap_or(parallel.schedule);
        }
    }
}

/// `train-arch`'s flags over a training protocol (the run configuration's `[train]`, or the
/// defaults).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TrainOverrides {
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, value_enum)]
    pub activation: Option<Activation>,
    /// Input normalisation: per-channel (standardised) or none ([0, 1] pixels, the seed's).
    #[arg(long, value_enum)]
    pub normalize: Option<Normalize>,
    /// `test` (the seed's protocol) or `holdout:N`.
    #[arg(long)]
    pub validation: Option<Validation>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Train on a stratified subset of the training split: images (2500) or a fraction (0.1).
    #[arg(long)]
    pub train_subset: Option<TrainSubset>,
}

impl TrainOverrides {
    /// Writes every given flag over `train`.
    pub fn apply(&self, train: &mut TrainConfig) {
        train.epochs = self.epochs.unwrap_or(train.epochs);
        train.batch_size = self.batch_size.unwrap_or(train.batch_size);
        train.learning_rate = self.lr.unwrap_or(train.learning_rate);
        train.activation = self.activation.unwrap_or(train.activation);
        train.normalize = self.normalize.unwrap_or(train.normalize);
        train.validation = self.validation.unwrap_or(train.validation);
        train.seed = self.seed.unwrap_or(train.seed);
        train.train_subset = self.train_subset.or(train.train_subset);
    }
}
