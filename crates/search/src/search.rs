//! The search loop: per episode, the agent designs a network under the exact mask, the evaluator
//! scores it (or the architecture cache already knows it), the reward plugin shapes the reward, and
//! the agent learns from it. Every finished episode is committed to the store with an agent
//! checkpoint, so a run can be resumed from its last committed episode.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use nas_core::checksum::sha256_hex;

use crate::options::SearchOptions;
use crate::schedule::{run_async, run_sync};
use crate::session::{PluginPaths, Session};
use crate::sink::{EpisodeSink, Silent};
use nas_config::{RunConfig, Schedule};
use nas_core::record::EpisodeRecord;
use nas_plugin_runtime as plugin;
use nas_store::{PluginRecord, RunRecord, Store, TableRecord};

/// Where a search starts.
pub enum Start {
    New(Box<RunConfig>),
    Resume {
        run: i64,
        /// Resume even though a plugin file changed since the run started.
        force: bool,
        /// A new episode target (to extend a finished run).
        episodes: Option<usize>,
    },
}

/// What a finished (or stopped) search reports.
#[derive(Debug, Clone)]
pub struct SearchSummary {
    pub run: i64,
    /// Every committed episode of the run, in order.
    pub episodes: Vec<EpisodeRecord>,
}

/// Refuses to resume with a plugin whose file changed, unless forced.
fn check_unchanged(kind: &str, recorded: &PluginRecord, force: bool) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(&recorded.path);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "the run's {kind} plugin {} is gone; restore it to resume",
            path.display()
        )
    })?;
    let sha = sha256_hex(&bytes);
    if sha != recorded.sha256 {
        if force {
            tracing::warn!(
                "{kind} plugin {} changed since the run started; resuming anyway (--force)",
                path.display()
            );
        } else {
            anyhow::bail!(
                "the {kind} plugin {} changed since the run started (sha256 {} then, {} now); its checkpoint may not fit the new code. Restore the old file, or pass --force to resume anyway",
                path.display(),
                &recorded.sha256[..12],
                &sha[..12]
            );
        }
    }
    Ok(path)
}

/// A resumed run must train as it started: another device kind changes results (refused unless
/// forced); turning the cache off (or on) changes which episodes are trained (a warning). Returns
/// whether the resumed run bypasses the cache: `--no-cache` now, or the run's own setting.
fn check_same_environment(record: &RunRecord, device: &str, no_cache: bool, force: bool) -> anyhow::Result<bool> {
    if let Some(recorded) = record.device.as_deref() {
        if recorded != device {
            if force {
                tracing::warn!(
                    "run {} trained on {recorded}, resuming on {device} (--force)",
                    record.id
                );
            } else {
                anyhow::bail!(
                    "run {} trained its children on {recorded}, but this resume would train on {device}, which gives other results; resume with --device {recorded}, or pass --force to continue on {device}",
                    record.id
                );
            }
        }
    }
    if no_cache && !record.no_cache {
        tracing::warn!(
            "run {} used the architecture cache; the resumed episodes will train every architecture (--no-cache)",
            record.id
        );
    }
    Ok(no_cache || record.no_cache)
}

/// A resumed table run must answer from the table it started with: another table's answers
/// (or its surrogate's predictions) would mix two benchmarks in one run. Refused unless forced.
/// Returns the table to record when the run's record changes: forced onto another table, or a run
/// stored before tables were recorded.
fn check_same_table(
    record: &RunRecord,
    file: Option<&std::path::Path>,
    now: Option<&TableRecord>,
    force: bool,
) -> anyhow::Result<Option<TableRecord>> {
    let (Some(recorded), Some(now)) = (record.table.as_ref(), now) else {
        return Ok(now.cloned());
    };
    if recorded.sha256 == now.sha256 {
        return Ok(None);
    }
    let file = file.map_or("(none)".into(), |f| f.display().to_string());
    if !force {
        anyhow::bail!(
            "the benchmark table {file} changed since run {} started (sha256 {} then, {} now), so its answers would mix two tables; restore the table the run started with, or pass --force to continue on this one (the run then records it, and the episodes so far keep their answers)",
            record.id,
            recorded.sha256.get(..12).unwrap_or(&recorded.sha256),
            &now.sha256[..12]
        );
    }
    tracing::warn!(
        "the benchmark table {file} changed since run {} started; continuing on the new one (--force), whose {}",
        record.id,
        now.surrogate_quality
            .as_deref()
            .unwrap_or("size is too small for a surrogate")
    );
    Ok(Some(now.clone()))
}

/// Runs (or resumes) a search and stores every episode, silently.
pub fn search(start: Start, options: &SearchOptions) -> anyhow::Result<SearchSummary> {
    search_with(start, options, &mut Silent)
}

/// Runs (or resumes) a search, stores every episode and hands each to `sink`.
pub fn search_with(start: Start, options: &SearchOptions, sink: &mut dyn EpisodeSink) -> anyhow::Result<SearchSummary> {
    let mut store = Store::open(&options.db)?;
    let (run_id, mut session, first_episode, no_cache) = match start {
        Start::New(mut config) => {
            options.parallel.apply(&mut config.parallel, true);
            config.validate()?;
            // The number of environments shapes the results: fixed now, whatever workers a
            // resume brings.
            config.parallel.envs = config.parallel.env_count();
            let session = Session::open(&config, &PluginPaths::of(&config)?, options, None)?;
            let run = session.create_run(&store, options.no_cache)?;
            (run, session, 0, options.no_cache)
        }
        Start::Resume { run, force, episodes } => {
            let record: RunRecord = store.run(run)?;
            crate::external::ensure_host_agent(&record, "resumed")?;
            let mut config = RunConfig::from_toml(&record.config_toml)?;
            // The stored target wins over the configuration's: it holds every extension so far.
            config.episodes = episodes.unwrap_or(record.episodes_target);
            // Runs from before parallel search designed in one environment.
            config.parallel.envs = config.parallel.envs.max(1);
            let designed_with = (config.parallel.envs, config.parallel.schedule);
            options.parallel.apply(&mut config.parallel, false);
            config.validate()?;
            if options.parallel.envs.is_some_and(|k| k != designed_with.0)
                || options.parallel.schedule.is_some_and(|s| s != designed_with.1)
            {
                tracing::warn!(
                    "run {run} designs in {} environments with the {:?} schedule, as it started; --envs and --schedule apply to new runs only",
                    designed_with.0,
                    designed_with.1
                );
            }
            let agent = check_unchanged("agent", &record.agent, force)?;
            let reward = check_unchanged("reward", &record.reward, force)?;
            let assessor = match (&record.assessor, config.assessor_spec()) {
                (Some(recorded), _) => Some(check_unchanged("assessor", recorded, force)?),
                // A run stored before its assessor was recorded: resolve it as it started.
                (None, Some(spec)) => Some(plugin::resolve(spec)?),
                (None, None) => None,
            };
            let plugins = PluginPaths {
                agent,
                reward,
                assessor,
            };
            let mut session = Session::open(&config, &plugins, options, None)?;
            session.replay_completed(&store, run)?;
            let no_cache = check_same_environment(&record, session.trainer.device_kind(), options.no_cache, force)?;
            let table = check_same_table(&record, config.table.file.as_deref(), session.table(), force)?;
            let designed = match store.checkpoint(run)? {
                Some((designed, state)) => {
                    session.agent()?.load(&state)?;
                    designed
                }
                None => 0,
            };
            // Only now that the run can really continue does its record change.
            store.set_episodes_target(run, config.episodes)?;
            store.set_run_environment(run, session.trainer.device_kind(), no_cache)?;
            if let Some(table) = &table {
                store.set_run_table(run, table)?;
            }
            store.set_status(run, "running", None)?;
            tracing::info!(
                "resuming run {run} after episode {} of {}",
                record.episodes_done,
                config.episodes
            );
            (run, session, designed, no_cache)
        }
    };

    let started = Instant::now();
    sink.started(run_id, &store.episodes(run_id)?, session.config.episodes);
    let result = match session.config.parallel.schedule {
        Schedule::Sync => run_sync(&mut store, &mut session, run_id, first_episode, no_cache, sink),
        Schedule::Async => run_async(&mut store, &mut session, run_id, first_episode, no_cache, sink),
    };
    if result.is_ok() {
        sink.finished();
    }
    store.add_wall_seconds(run_id, started.elapsed().as_secs_f64())?;
    match &result {
        Ok(_) => store.set_status(run_id, "finished", None)?,
        Err(e) => store.set_status(run_id, "failed", Some(&format!("{e:#}")))?,
    }
    let episodes = store.episodes(run_id)?;
    result.map_err(|e| {
        e.context(format!(
            "run {run_id} stopped after {} committed episodes (all kept); fix the cause and continue with `nas-host search --resume {run_id}`",
            episodes.len()
        ))
    })?;
    Ok(SearchSummary { run: run_id, episodes })
}
