//! What the pages show, read from the run store: the runs, a run's episodes and learning curves,
//! an architecture's evaluations, a comparison. Only the store's readers are called; nothing here
//! writes.
//!
//! The store is synchronous (rusqlite, postgres), so the server calls this from blocking tasks.
//! Open stores are kept in a small pool. A run's committed episodes never change, so they are
//! cached per run and read again only when its episode count (or status) moves: a finished run
//! with 10,000 episodes is read once, a live one whenever a new episode is committed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nas_core::arch::Architecture;
use nas_core::record::EpisodeRecord;
use nas_datasets::DatasetName;
use nas_store::{RunRecord, Store};
use serde::Serialize;
use serde_json::{json, Value};

use crate::table::Table;

/// Workers whose heartbeat is older than this are not shown as live (as `nas-host runs`).
pub const LIVE_WORKER_SECS: f64 = 60.0;

/// A run's committed episodes, as of `done` episodes and `status`.
struct CachedEpisodes {
    done: usize,
    status: String,
    episodes: Arc<Vec<EpisodeRecord>>,
}

/// A run's learning curves, as of `done` episodes.
struct CachedCurves {
    done: usize,
    curves: Arc<Value>,
}

/// The store the dashboard reads, with a pool of open connections and the per-run caches.
pub struct Data {
    db: PathBuf,
    pool: Mutex<Vec<Store>>,
    episodes: Mutex<HashMap<i64, CachedEpisodes>>,
    curves: Mutex<HashMap<i64, CachedCurves>>,
}

impl Data {
    /// The store `db` names. A SQLite file must exist: the dashboard never creates a store.
    pub fn open(db: &Path) -> anyhow::Result<Data> {
        if let Some(path) = Store::sqlite_path(db)? {
            anyhow::ensure!(
                path.exists(),
                "no run store at {} (start a search first, or name one with --db)",
                path.display()
            );
        }
        let data = Data {
            db: db.to_path_buf(),
            pool: Mutex::new(Vec::new()),
            episodes: Mutex::new(HashMap::new()),
            curves: Mutex::new(HashMap::new()),
        };
        // Fail now, not on the first page, when the store cannot be read.
        data.with_store(|s| s.schema_version().map(drop))?;
        Ok(data)
    }

    /// Runs `f` with an open store from the pool (opening one when none is idle). A store whose
    /// call failed is dropped rather than returned, in case its connection is broken.
    pub fn with_store<R>(&self, f: impl FnOnce(&Store) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let pooled = self.pool.lock().expect("pool lock").pop();
        let store = match pooled {
            Some(store) => store,
            None => Store::open(&self.db)?,
        };
        let result = f(&store);
        if result.is_ok() {
            let mut pool = self.pool.lock().expect("pool lock");
            if pool.len() < 8 {
                pool.push(store);
            }
        }
        result
    }

    /// The committed episodes of `run` (whose record is `record`), by episode index.
    fn episodes_of(&self, store: &Store, record: &RunRecord) -> anyhow::Result<Arc<Vec<EpisodeRecord>>> {
        if let Some(cached) = self.episodes.lock().expect("cache lock").get(&record.id) {
            if cached.done == record.episodes_done && cached.status == record.status {
                return Ok(cached.episodes.clone());
            }
        }
        let episodes = Arc::new(store.episodes(record.id)?);
        self.episodes.lock().expect("cache lock").insert(
            record.id,
            CachedEpisodes {
                // The count read with the episodes (one may have been committed since `record`).
                done: episodes.len(),
                status: record.status.clone(),
                episodes: episodes.clone(),
            },
        );
        Ok(episodes)
    }

    /// Every run with its progress and best accuracy (the runs page).
    pub fn runs(&self) -> anyhow::Result<Table> {
        self.with_store(|store| {
            let runs = store.runs()?;
            let mut table = Table::new(RUN_COLUMNS);
            for run in &runs {
                let episodes = self.episodes_of(store, run)?;
                table.push(run_row(run, &episodes));
            }
            Ok(table)
        })
    }

    /// One run: its record, configuration and summary (the run page's header).
    pub fn run(&self, id: i64) -> anyhow::Result<Option<Value>> {
        self.with_store(|store| {
            let Some(run) = find_run(store, id)? else {
                return Ok(None);
            };
            let episodes = self.episodes_of(store, &run)?;
            let row = Table {
                columns: RUN_COLUMNS.to_vec(),
                rows: vec![run_row(&run, &episodes)],
            };
            let mut summary = row.to_json()[0].clone();
            summary["config_toml"] = json!(run.config_toml);
            summary["error"] = json!(run.error);
            summary["seed"] = json!(run.seed);
            summary["device"] = json!(run.device);
            summary["agent_version"] = json!(run.agent.version);
            summary["reward_version"] = json!(run.reward.version);
            Ok(Some(summary))
        })
    }

    /// The episodes of run `id` reported from position `since` on (all with 0): the rewards
    /// reach the agent, and episodes are committed, in `reported` order, so a page that holds
    /// the episodes up to `reported` N asks for `since = N + 1`. `None` for an unknown run.
    pub fn episodes(&self, id: i64, since: usize) -> anyhow::Result<Option<Table>> {
        self.with_store(|store| {
            let Some(run) = find_run(store, id)? else {
                return Ok(None);
            };
            let episodes = self.episodes_of(store, &run)?;
            Ok(Some(episode_table(episodes.iter().filter(|e| e.reported >= since))))
        })
    }

    /// The learning curve of every episode of run `id` whose child an assessor watched:
    /// `[{episode, accuracy: [...], stopped}]`. `None` for an unknown run.
    pub fn curves(&self, id: i64) -> anyhow::Result<Option<Arc<Value>>> {
        self.with_store(|store| {
            let Some(run) = find_run(store, id)? else {
                return Ok(None);
            };
            if let Some(cached) = self.curves.lock().expect("cache lock").get(&id) {
                if cached.done == run.episodes_done {
                    return Ok(Some(cached.curves.clone()));
                }
            }
            let links = store.episode_evaluations(id)?;
            let mut curves = Vec::new();
            if run.assessor.is_some() {
                for (&episode, &evaluation) in &links {
                    let outcome = store.evaluation(evaluation)?.outcome;
                    if outcome.curve.is_measured() {
                        curves.push(json!({
                            "episode": episode,
                            "accuracy": outcome.curve.accuracy,
                            "stopped": outcome.curve.stopped,
                        }));
                    }
                }
            }
            let curves = Arc::new(Value::Array(curves));
            self.curves.lock().expect("cache lock").insert(
                id,
                CachedCurves {
                    done: links.len(),
                    curves: curves.clone(),
                },
            );
            Ok(Some(curves))
        })
    }

    /// The workers seen lately and the queue (a live search's children).
    pub fn live(&self) -> anyhow::Result<Value> {
        self.with_store(|store| {
            let workers = store.workers_seen_within(LIVE_WORKER_SECS)?;
            let now = store.now()?;
            let queue = store.queue_counts()?;
            let workers: Vec<Value> = workers
                .iter()
                .map(|w| {
                    json!({
                        "name": w.name,
                        "device": w.device,
                        "threads": w.threads,
                        "trained": w.trained,
                        "seen_seconds_ago": (now - w.seen_at).max(0.0),
                        "training": w.job.as_ref().map(|(_, arch)| arch),
                    })
                })
                .collect();
            Ok(json!({"workers": workers, "queue": {"pending": queue.pending, "running": queue.running}}))
        })
    }

    /// Best-so-far accuracy of each of `ids` by episode, and the comparison table.
    pub fn compare(&self, ids: &[i64]) -> anyhow::Result<(Table, Value)> {
        self.with_store(|store| {
            let mut table = Table::new(COMPARE_COLUMNS);
            let mut curves = Vec::new();
            for &id in ids {
                let Some(run) = find_run(store, id)? else {
                    anyhow::bail!("no run {id} in the store");
                };
                let episodes = self.episodes_of(store, &run)?;
                table.push(compare_row(&run, &episodes));
                curves.push(json!({
                    "run": id,
                    "label": format!("run {id} ({})", run.agent.name),
                    "best_so_far": best_so_far(&episodes),
                }));
            }
            Ok((table, Value::Array(curves)))
        })
    }

    /// Every evaluation of architecture `text` the runs recorded (their episodes and `eval`
    /// samples): run, seed, dataset, accuracy, seconds.
    pub fn arch_evaluations(&self, text: &str) -> anyhow::Result<Table> {
        self.with_store(|store| {
            let mut table = Table::new(ARCH_EVAL_COLUMNS);
            for run in store.runs()? {
                let episodes = self.episodes_of(store, &run)?;
                let matching: Vec<&EpisodeRecord> = episodes.iter().filter(|e| e.architecture == text).collect();
                if !matching.is_empty() {
                    let links = store.episode_evaluations(run.id)?;
                    for e in matching {
                        let evaluation = links.get(&e.index).copied();
                        let outcome = evaluation.map(|id| store.evaluation(id)).transpose()?;
                        table.push(vec![
                            json!(run.id),
                            json!("episode"),
                            json!(e.index),
                            json!(run.dataset),
                            json!(run.seed),
                            Value::Null,
                            json!(e.accuracy),
                            json!(e.params),
                            outcome.as_ref().map_or(Value::Null, |o| json!(o.outcome.seconds)),
                            json!(e.cache_hit),
                            json!(e.stopped),
                            json!(e.failure),
                            json!(evaluation),
                        ]);
                    }
                }
                for (i, s) in store.eval_samples(run.id)?.iter().enumerate() {
                    if s.architecture == text {
                        let outcome = store.evaluation(s.evaluation_id).ok();
                        table.push(vec![
                            json!(run.id),
                            json!("eval sample"),
                            json!(i),
                            json!(run.dataset),
                            json!(run.seed),
                            json!(s.train_seed),
                            json!(s.accuracy),
                            json!(s.params),
                            outcome.as_ref().map_or(Value::Null, |o| json!(o.outcome.seconds)),
                            json!(s.cache_hit),
                            json!(false),
                            json!(s.failure),
                            json!(s.evaluation_id),
                        ]);
                    }
                }
            }
            Ok(table)
        })
    }
}

fn find_run(store: &Store, id: i64) -> anyhow::Result<Option<RunRecord>> {
    // `run` fails for an unknown id and for a broken store alike; the list tells them apart.
    match store.run(id) {
        Ok(run) => Ok(Some(run)),
        Err(e) => {
            if store.runs()?.iter().any(|r| r.id == id) {
                Err(e)
            } else {
                Ok(None)
            }
        }
    }
}

pub const RUN_COLUMNS: &[&str] = &[
    "id",
    "status",
    "agent",
    "reward",
    "assessor",
    "dataset",
    "evaluator",
    "episodes_done",
    "episodes_target",
    "best_accuracy",
    "best_architecture",
    "wall_seconds",
    "created_at",
];

fn run_row(run: &RunRecord, episodes: &[EpisodeRecord]) -> Vec<Value> {
    let best = best_episode(episodes);
    vec![
        json!(run.id),
        json!(run.status),
        json!(run.agent.name),
        json!(run.reward.name),
        json!(run.assessor.as_ref().map(|a| &a.name)),
        json!(run.dataset),
        json!(run.evaluator),
        json!(run.episodes_done),
        json!(run.episodes_target),
        json!(best.map(|e| e.accuracy)),
        json!(best.map(|e| &e.architecture)),
        json!(run.wall_seconds),
        json!(run.created_at),
    ]
}

/// The episode with the highest accuracy among those that did not fail (the first of equals).
pub fn best_episode(episodes: &[EpisodeRecord]) -> Option<&EpisodeRecord> {
    episodes
        .iter()
        .filter(|e| e.failure.is_none())
        .fold(None, |best: Option<&EpisodeRecord>, e| match best {
            Some(b) if b.accuracy >= e.accuracy => Some(b),
            _ => Some(e),
        })
}

/// The best accuracy reached by each episode (in index order), failed episodes counting as
/// none; null before the first success.
pub fn best_so_far(episodes: &[EpisodeRecord]) -> Vec<Option<f64>> {
    let mut best: Option<f64> = None;
    episodes
        .iter()
        .map(|e| {
            if e.failure.is_none() {
                best = Some(best.map_or(e.accuracy, |b| b.max(e.accuracy)));
            }
            best
        })
        .collect()
}

pub const EPISODE_COLUMNS: &[&str] = &[
    "episode",
    "reported",
    "env",
    "architecture",
    "depth",
    "params",
    "accuracy",
    "reward",
    "cache_hit",
    "stopped",
    "failure",
    "metrics",
];

fn episode_table<'a>(episodes: impl Iterator<Item = &'a EpisodeRecord>) -> Table {
    let mut table = Table::new(EPISODE_COLUMNS);
    for e in episodes {
        table.push(vec![
            json!(e.index),
            json!(e.reported),
            json!(e.env),
            json!(e.architecture),
            json!(e.depth),
            json!(e.params),
            json!(e.accuracy),
            json!(e.reward),
            json!(e.cache_hit),
            json!(e.stopped),
            json!(e.failure),
            Value::Object(e.metrics.clone()),
        ]);
    }
    table
}

pub const COMPARE_COLUMNS: &[&str] = &[
    "run",
    "status",
    "agent",
    "reward",
    "assessor",
    "dataset",
    "evaluator",
    "seed",
    "episodes",
    "best_accuracy",
    "best_architecture",
    "best_params",
    "mean_accuracy",
    "failed",
    "wall_seconds",
];

fn compare_row(run: &RunRecord, episodes: &[EpisodeRecord]) -> Vec<Value> {
    let best = best_episode(episodes);
    let ok: Vec<f64> = episodes
        .iter()
        .filter(|e| e.failure.is_none())
        .map(|e| e.accuracy)
        .collect();
    let mean = (!ok.is_empty()).then(|| ok.iter().sum::<f64>() / ok.len() as f64);
    vec![
        json!(run.id),
        json!(run.status),
        json!(run.agent.name),
        json!(run.reward.name),
        json!(run.assessor.as_ref().map(|a| &a.name)),
        json!(run.dataset),
        json!(run.evaluator),
        json!(run.seed),
        json!(episodes.len()),
        json!(best.map(|e| e.accuracy)),
        json!(best.map(|e| &e.architecture)),
        json!(best.map(|e| e.params)),
        json!(mean),
        json!(episodes.len() - ok.len()),
        json!(run.wall_seconds),
    ]
}

pub const ARCH_EVAL_COLUMNS: &[&str] = &[
    "run",
    "source",
    "index",
    "dataset",
    "run_seed",
    "train_seed",
    "accuracy",
    "params",
    "seconds",
    "cache_hit",
    "stopped",
    "failure",
    "evaluation_id",
];

/// An architecture's layer table on `dataset` (`nas-host show-arch`), when the text parses and
/// the dataset is a named one (a folder dataset's shape would need its files).
#[derive(Debug, Serialize)]
pub struct LayerTable {
    pub architecture: String,
    pub dataset: Option<String>,
    pub depth: usize,
    pub input: Vec<u64>,
    pub rows: Vec<nas_core::summary::SummaryRow>,
    pub total_params: u64,
    pub total_mult_adds: u64,
    /// Why there is no table, when there is none.
    pub note: Option<String>,
}

pub fn layer_table(text: &str, dataset: &str) -> Result<LayerTable, String> {
    let arch: Architecture = text.parse()?;
    let canonical = arch.to_string();
    let empty = |note: String| LayerTable {
        architecture: canonical.clone(),
        dataset: (!dataset.is_empty()).then(|| dataset.to_string()),
        depth: arch.depth(),
        input: Vec::new(),
        rows: Vec::new(),
        total_params: 0,
        total_mult_adds: 0,
        note: Some(note),
    };
    let Ok(name) = dataset.parse::<DatasetName>() else {
        return Ok(empty(format!(
            "no layer table: `{dataset}` is not a named dataset (mnist3, mnist, cifar5, cifar10, synthetic); \
             `nas-host show-arch` reads a folder dataset's shape from its files"
        )));
    };
    let (_, side, _) = name.image_shape();
    if !arch.fits(side as u32) {
        return Ok(empty(format!(
            "`{canonical}` cannot be built for {dataset}: a layer's window is larger than its input"
        )));
    }
    let summary = arch.summary(name.image_shape(), name.num_classes());
    Ok(LayerTable {
        architecture: canonical.clone(),
        dataset: Some(name.as_str().to_string()),
        depth: arch.depth(),
        input: summary.input.clone(),
        total_params: summary.total_params(),
        total_mult_adds: summary.total_mult_adds(),
        rows: summary.rows,
        note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(index: usize, accuracy: f64, failure: Option<&str>) -> EpisodeRecord {
        EpisodeRecord {
            index,
            env: 0,
            architecture: format!("conv({},3)", 10 + index),
            reward: accuracy,
            accuracy,
            params: 100,
            depth: 1,
            cache_hit: false,
            failure: failure.map(String::from),
            metrics: Default::default(),
            reported: index,
            stopped: false,
        }
    }

    #[test]
    fn best_so_far_skips_failures_and_best_is_the_first_of_equals() {
        let episodes = [
            episode(0, 0.0, Some("diverged")),
            episode(1, 0.5, None),
            episode(2, 0.9, Some("out of memory")),
            episode(3, 0.4, None),
            episode(4, 0.7, None),
            episode(5, 0.7, None),
        ];
        assert_eq!(
            best_so_far(&episodes),
            vec![None, Some(0.5), Some(0.5), Some(0.5), Some(0.7), Some(0.7)]
        );
        assert_eq!(best_episode(&episodes).map(|e| e.index), Some(4));
        assert!(best_episode(&episodes[..1]).is_none());
    }

    #[test]
    fn layer_table_is_show_arch_s() {
        let t = layer_table("conv(32,3) pool(5,3) fc(64)", "cifar5").unwrap();
        // The numbers of README's `show-arch` example.
        assert_eq!(t.total_params, 167_173);
        assert_eq!(t.total_mult_adds, 943_808);
        assert_eq!(t.rows.len(), 4);
        assert_eq!(t.rows[0].output, vec![32, 30, 30]);
        let folder = layer_table("conv(32,3)", "/data/my-images").unwrap();
        assert!(folder.rows.is_empty() && folder.note.is_some());
        assert!(layer_table("conv(32", "cifar5").is_err());
    }
}
