//! How a search talks to the outside: where the data and the store are, the device, and workers
//! shared between searches.

use std::path::PathBuf;

use nas_config::DeviceChoice;
use nas_config::ParallelOverrides;

use crate::pool::SharedWorkers;

/// How a search talks to the outside: where data and the store are, and what it prints.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub db: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: DeviceChoice,
    /// Train even architectures the cache knows.
    pub no_cache: bool,
    /// Flags over the run's `[parallel]` (on a resumed run, only how it is executed).
    pub parallel: ParallelOverrides,
    /// Workers already started for several searches at once (a comparison plan); else a search
    /// starts its own as its `[parallel]` says.
    pub shared_workers: Option<SharedWorkers>,
    /// The nas-host binary that workers run; `None`: this executable (the CLI). A search started
    /// from another program (Python's `NasEnv`) names the binary here.
    pub worker_exe: Option<PathBuf>,
}

impl SearchOptions {
    /// Options with the defaults: CPU, the architecture cache on, training in this process.
    pub fn new(db: PathBuf) -> SearchOptions {
        SearchOptions {
            db,
            data_dir: None,
            device: DeviceChoice::Cpu,
            no_cache: false,
            parallel: ParallelOverrides::default(),
            shared_workers: None,
            worker_exe: None,
        }
    }

    /// The binary workers run: [`SearchOptions::worker_exe`], else this executable.
    pub fn worker_exe(&self) -> anyhow::Result<PathBuf> {
        match &self.worker_exe {
            Some(exe) => Ok(exe.clone()),
            None => std::env::current_exe()
                .map_err(|e| anyhow::anyhow!("finding the nas-host binary to start workers with: {e}")),
        }
    }
}
