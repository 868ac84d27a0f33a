//! `nas-host eval`: the seed's protocol after a search — sample architectures from the frozen final
//! policy (no learning updates), train each, and report mean ± std of accuracy, mean parameters and
//! mean depth (the seed's tables 4, 6, 9, 10).

use serde::Serialize;

use crate::config::RunConfig;
use crate::search::{plugin_section_name, SearchOptions, Session};
use crate::store::{EvalSampleRow, Store};

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
}

pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// (mean accuracy, std accuracy, mean params, mean depth) of `eval` samples.
pub fn sample_stats(samples: &[EvalSampleRow]) -> (f64, f64, f64, f64) {
    let (accuracy, std) = mean_std(&samples.iter().map(|x| x.accuracy).collect::<Vec<_>>());
    let (params, _) = mean_std(&samples.iter().map(|x| x.params as f64).collect::<Vec<_>>());
    let (depth, _) = mean_std(&samples.iter().map(|x| x.depth as f64).collect::<Vec<_>>());
    (accuracy, std, params, depth)
}

impl EvalSummary {
    pub fn from_samples(run: i64, agent: &str, dataset: &str, samples: Vec<EvalSampleRow>) -> EvalSummary {
        let (mean_accuracy, std_accuracy, mean_params, mean_depth) = sample_stats(&samples);
        EvalSummary {
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
        let mut distinct: Vec<&EvalSampleRow> = Vec::new();
        for s in &self.samples {
            if !distinct.iter().any(|d| d.architecture == s.architecture) {
                distinct.push(s);
            }
        }
        out.push_str(&format!("\n{} distinct architectures sampled:\n", distinct.len()));
        for s in distinct.iter().take(10) {
            let count = self.samples.iter().filter(|x| x.architecture == s.architecture).count();
            out.push_str(&format!(
                "  {count:>3}×  {:.4}  {:>9}  {}\n",
                s.accuracy, s.params, s.architecture
            ));
        }
        out
    }
}

/// Samples from the frozen policy of `run` and trains (or looks up) each sample.
pub fn eval(run: i64, samples: Option<usize>, options: &SearchOptions) -> anyhow::Result<EvalSummary> {
    let mut store = Store::open(&options.db)?;
    let record = store.run(run)?;
    let config = RunConfig::from_toml(&record.config_toml)?;
    let (_, state) = store
        .checkpoint(run)?
        .ok_or_else(|| anyhow::anyhow!("run {run} has no finished episode yet, so there is no policy to evaluate"))?;
    let agent_path = std::path::PathBuf::from(&record.agent.path);
    let reward_path = std::path::PathBuf::from(&record.reward.path);
    let agent_config = config.eval_plugin_json(&plugin_section_name(&agent_path));
    let mut session = Session::open(&config, &agent_path, &reward_path, options, Some(agent_config))?;
    session.agent.load(&state)?;
    let count = samples.unwrap_or(config.eval.samples);
    let bar = if options.progress && !options.json {
        indicatif::ProgressBar::new(count as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut rows = Vec::with_capacity(count);
    for i in 0..count {
        session.reseed(EVAL_EPISODE_OFFSET + i);
        let arch = session.design(config.eval.explore, false)?;
        let (evaluation_id, outcome, cache_hit) = session.evaluate(&store, &arch, true)?;
        rows.push(EvalSampleRow {
            architecture: arch.to_string(),
            accuracy: outcome.accuracy,
            params: outcome.params,
            depth: arch.depth(),
            evaluation_id,
            cache_hit,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    store.replace_eval_samples(run, &rows)?;
    Ok(EvalSummary::from_samples(
        run,
        &record.agent.name,
        &record.dataset,
        rows,
    ))
}
