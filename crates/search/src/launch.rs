//! Chooses how a run's children are trained: in the search process, or through the store's queue
//! by workers started here, on Slurm, or by hand.

use std::sync::Arc;

use nas_config::DeviceChoice;
use nas_config::{EvaluatorKind, Launcher, RunConfig};
use nas_core::mdp::Mdp;
use nas_train::cost::CostMeter;
use nas_train::evaluator::Evaluator;

use crate::local::{LocalWorkers, WorkerSpec};
use crate::options::SearchOptions;
use crate::pool::{InProcess, Queued, SharedWorkers, Trainer};

/// The device kind children of `evaluator` are trained on when `device` is asked for: `none`
/// for the synthetic evaluator (any worker scores it).
pub fn device_kind_for(evaluator: EvaluatorKind, device: DeviceChoice) -> anyhow::Result<&'static str> {
    Ok(match evaluator {
        EvaluatorKind::Synthetic | EvaluatorKind::Table => "none",
        EvaluatorKind::Train => match nas_train::device::select(device)? {
            tch::Device::Cpu => "cpu",
            _ => "cuda",
        },
    })
}

/// The trainer a run's `[parallel]` asks for, and the workers it started (if any): in-process
/// training without workers; else the store's queue, served by local workers started here (or a
/// comparison's `shared` pool), or by workers started by hand (`launcher = "none"`). In-process
/// training times children with the session's `cost_meter`.
pub fn trainer_for(
    config: &RunConfig,
    mdp: &Mdp,
    options: &SearchOptions,
    cost_meter: &CostMeter,
) -> anyhow::Result<(Box<dyn Trainer>, Option<SharedWorkers>)> {
    let parallel = &config.parallel;
    // A table answers in microseconds: sending its lookups through the queue to workers would
    // only add round trips.
    let in_process = config.evaluator == EvaluatorKind::Table;
    if in_process && parallel.uses_workers() {
        tracing::info!("the table evaluator answers in the search process; no workers are started");
    }
    if in_process || (!parallel.uses_workers() && options.shared_workers.is_none()) {
        let evaluator = Evaluator::for_run(config, mdp, options.data_dir.as_deref(), options.device)?;
        return Ok((
            Box::new(InProcess::new(
                evaluator,
                cost_meter.clone(),
                &config.dataset.to_job_string(),
            )),
            None,
        ));
    }
    // The search checks the synthetic target itself; workers only train.
    if config.evaluator == EvaluatorKind::Synthetic {
        Evaluator::for_run(config, mdp, None, DeviceChoice::Cpu)?;
    }
    let device_kind = match (config.evaluator, parallel.launcher) {
        // Workers run on other machines: what this one has says nothing about theirs.
        (EvaluatorKind::Train, Launcher::Slurm) => crate::slurm::device_kind(&config.slurm, options.device),
        // Workers started by hand may run elsewhere: an explicit device is what their children
        // need, and this machine (a CPU login node, say) need not have it.
        (EvaluatorKind::Train, Launcher::None) if options.device == DeviceChoice::Cuda => "cuda",
        (EvaluatorKind::Train, Launcher::None) if options.device == DeviceChoice::Cpu => "cpu",
        (evaluator, _) => device_kind_for(evaluator, options.device)?,
    };
    let workers: Option<SharedWorkers> = match (&options.shared_workers, parallel.launcher) {
        (Some(shared), _) => Some(Arc::clone(shared)),
        (None, Launcher::Local) => {
            let mut spec = WorkerSpec::for_config(parallel, &options.db, options.data_dir.as_deref(), device_kind)?;
            spec.exe = options.worker_exe()?;
            Some(LocalWorkers::start(spec)?)
        }
        (None, Launcher::Slurm) => Some(crate::slurm::SlurmWorkers::submit(
            &crate::slurm::SlurmSpec::for_config(config, options, device_kind)?,
        )?),
        (None, Launcher::None) => None,
    };
    // Workers load their own copy of the data; the search's fingerprint lets them check it.
    let data_sha256 = match config.evaluator {
        EvaluatorKind::Synthetic | EvaluatorKind::Table => String::new(),
        EvaluatorKind::Train => {
            nas_train::train::load_dataset(&config.dataset, options.data_dir.as_deref())?.fingerprint()
        }
    };
    let trainer = Queued::new(
        device_kind,
        &config.dataset.to_job_string(),
        config.evaluator.as_str(),
        workers.clone(),
        &options.db,
        parallel.lease_secs,
        data_sha256,
    );
    Ok((Box::new(trainer), workers))
}
