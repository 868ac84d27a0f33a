//! `nas-host eval`, the evaluation of a frozen policy (not to be confused with `evaluator`, which
//! scores one architecture): the seed's protocol after a search — sample architectures from the frozen final
//! policy (no learning updates), train each, and report mean ± std of accuracy, mean parameters and
//! mean depth (the seed's tables 4, 6, 9, 10).

use serde::Serialize;

use crate::options::SearchOptions;
use crate::session::{Lookup, PluginPaths, Session};
use nas_config::plugin_section_name;
use nas_config::RunConfig;
use nas_core::record::Outcome;
use nas_core::record::{sample_stats, EvalSampleRow};
use nas_store::Store;

/// Episode indices used to seed evaluation samples, far past any search episode.
const EVAL_EPISODE_OFFSET: usize = 1 << 40;

#[derive(Debug, Clone, Serialize)]
pub struct EvalSummary {
    pub run: i64,
    pub agent: String,
    pub dataset: String,
    pub samples: Vec<EvalSampleRow>,
    pub mean_accuracy: f64,
    /// Population standard deviation (numpy's default, as in the seed's tables).
    pub std_accuracy: f64,
    pub mean_params: f64,
    pub mean_depth: f64,
    /// Children trained (or scored) by this evaluation.
    pub trained: usize,
    /// Samples served from the architecture cache (only with `--reuse-cache`).
    pub reused: usize,
}

impl EvalSummary {
    pub fn from_samples(run: i64, agent: &str, dataset: &str, samples: Vec<EvalSampleRow>) -> EvalSummary {
        let (mean_accuracy, std_accuracy, mean_params, mean_depth) = sample_stats(&samples);
        let reused = samples.iter().filter(|s| s.cache_hit).count();
        EvalSummary {
            trained: samples.len() - reused,
            reused,
            run,
            agent: agent.into(),
            dataset: dataset.into(),
            samples,
            mean_accuracy,
            std_accuracy,
            mean_params,
            mean_depth,
        }
    }

    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| run | agent | dataset | samples | accuracy (mean ± std) | mean params | mean depth |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {:.4} ± {:.4} | {:.0} | {:.2} |\n",
            self.run, self.agent, self.dataset, self.samples.len(), self.mean_accuracy, self.std_accuracy, self.mean_params, self.mean_depth
        );
        out.push_str(&format!(
            "\n{} trained for this evaluation, {} reused from the architecture cache{}.\n",
            self.trained,
            self.reused,
            if self.reused > 0 {
                " (--reuse-cache: repeated architectures share one training, so the std leaves out training noise)"
            } else {
                ""
            }
        ));
        let mut distinct: Vec<&EvalSampleRow> = Vec::new();
        for s in &self.samples {
            if !distinct.iter().any(|d| d.architecture == s.architecture) {
                distinct.push(s);
            }
        }
        let noun = if distinct.len() == 1 {
            "architecture"
        } else {
            "architectures"
        };
        out.push_str(&format!("\n{} distinct {noun} sampled:\n", distinct.len()));
        for s in distinct.iter().take(10) {
            let count = self.samples.iter().filter(|x| x.architecture == s.architecture).count();
            out.push_str(&format!(
                "  {count:>3}×  {:.4}  {:>9}  {}\n",
                s.accuracy, s.params, s.architecture
            ));
        }
        if let Some(text) = self.most_sampled_summary() {
            out.push_str(&format!(
                "\nThe most sampled architecture, layer by layer:\n\n```\n{text}\n```\n"
            ));
        }
        out
    }

    /// The layer table of the architecture the policy samples most often (the first such on ties).
    fn most_sampled_summary(&self) -> Option<String> {
        // Shape and classes from the dataset's name or path (a folder's options are not part of
        // the summary's record; a folder that moved gives no table).
        let source: nas_datasets::DataRef = self.dataset.parse().ok()?;
        let info = nas_config::DatasetSpec::from(source).describe().ok()?;
        let count = |a: &str| self.samples.iter().filter(|s| s.architecture == a).count();
        let mode = self.samples.iter().fold(None::<&EvalSampleRow>, |best, s| match best {
            Some(b) if count(&b.architecture) >= count(&s.architecture) => Some(b),
            _ => Some(s),
        })?;
        let arch: nas_core::arch::Architecture = mode.architecture.parse().ok()?;
        let summary = arch.summary(info.image_shape(), info.num_classes());
        Some(format!("{arch}\n{summary}"))
    }
}

/// The training seed of `eval` sample `sample` of `run`: every sample is its own model, as the
/// seed's 50 trained models were.
pub fn sample_train_seed(run: i64, sample: usize) -> u64 {
    let mut x = (run as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (sample as u64).wrapping_add(0x5851_f42d);
    // splitmix64's finaliser, so nearby (run, sample) pairs give unrelated seeds.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) >> 1 // libtorch seeds are i64
}

fn sample_row(
    arch: &nas_core::arch::Architecture,
    train_seed: u64,
    evaluation_id: i64,
    outcome: Outcome,
    cache_hit: bool,
) -> EvalSampleRow {
    EvalSampleRow {
        architecture: arch.to_string(),
        accuracy: outcome.accuracy,
        params: outcome.params,
        depth: arch.depth(),
        evaluation_id,
        cache_hit,
        train_seed: Some(train_seed),
        failure: outcome.failure,
    }
}

/// Receives each `eval` sample as it is trained (the CLI shows progress; tests record).
pub trait SampleSink {
    fn started(&mut self, _total: usize) {}
    fn sample(&mut self, index: usize, sample: &EvalSampleRow);
    fn finished(&mut self) {}
}

impl SampleSink for crate::sink::Silent {
    fn sample(&mut self, _index: usize, _sample: &EvalSampleRow) {}
}

/// [`eval_with`], silently.
pub fn eval(
    run: i64,
    samples: Option<usize>,
    reuse_cache: Option<bool>,
    options: &SearchOptions,
) -> anyhow::Result<EvalSummary> {
    eval_with(run, samples, reuse_cache, options, &mut crate::sink::Silent)
}

/// Samples from the frozen policy of `run` and trains each sample afresh with its own training
/// seed, so the std includes training noise. With `reuse_cache`, each sample is looked up in the
/// architecture cache under the run's own training seed instead (cheap; repeated architectures
/// then share one result).
pub fn eval_with(
    run: i64,
    samples: Option<usize>,
    reuse_cache: Option<bool>,
    options: &SearchOptions,
    sink: &mut dyn SampleSink,
) -> anyhow::Result<EvalSummary> {
    let mut store = Store::open(&options.db)?;
    let record = store.run(run)?;
    crate::external::ensure_host_agent(&record, "evaluated")?;
    let mut config = RunConfig::from_toml(&record.config_toml)?;
    // Samples train in parallel with the run's workers, or the ones asked for now.
    options.parallel.apply(&mut config.parallel, false);
    let (_, state) = store
        .checkpoint(run)?
        .ok_or_else(|| anyhow::anyhow!("run {run} has no finished episode yet, so there is no policy to evaluate"))?;
    // The frozen policy's samples are trained to the end: no assessor.
    let plugins = PluginPaths {
        agent: std::path::PathBuf::from(&record.agent.path),
        reward: std::path::PathBuf::from(&record.reward.path),
        assessor: None,
    };
    let agent_config = config.eval_plugin_json(&plugin_section_name(&plugins.agent));
    let mut session = Session::open(&config, &plugins, options, Some(agent_config))?;
    // Evaluating on a grown table is allowed (more of the samples are then recorded rather than
    // predicted), but the reader is told the run searched on another one.
    if let (Some(searched), Some(now)) = (record.table.as_ref(), session.table()) {
        if searched.sha256 != now.sha256 {
            tracing::warn!(
                "run {run} searched on its benchmark table as it was then (sha256 {}); the file has changed since, and the samples are answered from it as it is now (sha256 {})",
                searched.sha256.get(..12).unwrap_or(&searched.sha256),
                &now.sha256[..12]
            );
        }
    }
    session.agent()?.load(&state)?;
    let count = samples.unwrap_or(config.eval.samples);
    let reuse_cache = reuse_cache.unwrap_or(config.eval.reuse_cache);
    sink.started(count);
    // Samples do not learn from each other: every one is designed first, then all are trained
    // together (in parallel, with workers).
    let mut rows: Vec<Option<EvalSampleRow>> = vec![None; count];
    let mut designs = Vec::with_capacity(count);
    for (i, row) in rows.iter_mut().enumerate() {
        session.reseed(EVAL_EPISODE_OFFSET + i);
        let arch = session.design(0, config.eval.explore, false)?;
        let train_seed = if reuse_cache {
            config.train.seed
        } else {
            sample_train_seed(run, i)
        };
        // A sample trained with its own seed is recorded under (run, EVAL_EPISODE_OFFSET + i), so
        // an `eval` interrupted and run again finds the samples it already trained.
        let origin = (!reuse_cache).then_some((run, EVAL_EPISODE_OFFSET + i));
        match session.lookup(&store, &arch, reuse_cache, origin, train_seed, false)? {
            Lookup::Known {
                evaluation_id,
                outcome,
                cache_hit,
            } => {
                *row = Some(sample_row(&arch, train_seed, evaluation_id, outcome, cache_hit));
                sink.sample(i, row.as_ref().expect("just set"));
            }
            Lookup::Train(child) => session.trainer.submit(&store, i, child)?,
        }
        designs.push(arch);
    }
    while rows.iter().any(Option::is_none) {
        let (i, finished) = session.trainer.wait(&store, &mut |_| {}, None)?;
        let arch = &designs[i];
        let train_seed = if reuse_cache {
            config.train.seed
        } else {
            sample_train_seed(run, i)
        };
        rows[i] = Some(sample_row(
            arch,
            train_seed,
            finished.evaluation_id,
            finished.outcome,
            finished.joined,
        ));
        sink.sample(i, rows[i].as_ref().expect("just set"));
    }
    let rows: Vec<EvalSampleRow> = rows.into_iter().flatten().collect();
    sink.finished();
    store.replace_eval_samples(run, &rows)?;
    Ok(EvalSummary::from_samples(
        run,
        &record.agent.name,
        &record.dataset,
        rows,
    ))
}
