//! The per-run Markdown report with its plots (`nas-host report`).

use std::path::{Path, PathBuf};

use anyhow::Context;

use nas_core::arch::Architecture;
use nas_core::record::sample_stats;
use nas_core::record::top_distinct;
use nas_core::record::Outcome;
use nas_core::stats::mean_std;
use nas_store::Store;

use crate::plots::{
    capitalised, draw_architecture, figure, plot_accuracy_vs_params, plot_curves, plot_metric, plot_rewards, PlotLabels,
};

/// What an assessor did to the children a run trained (cache hits are not counted: the run
/// trained nothing for them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssessorSummary {
    /// Children trained by the run, and how many of them the assessor stopped.
    pub trained: usize,
    pub stopped: usize,
    /// Epochs trained, and the epochs training every child to the end would have taken.
    pub epochs_trained: usize,
    pub epochs_full: usize,
    /// Wall time of the children's training (the curve's measurements included).
    pub train_seconds: f64,
    /// Seconds spent measuring accuracy after epochs other than each child's last.
    pub measure_seconds: f64,
    /// The training time the stopped children's remaining epochs would have taken, at each
    /// child's own seconds per epoch (measurements excluded).
    pub saved_seconds: f64,
}

impl AssessorSummary {
    /// Sums over the outcomes of the children a run trained, under a protocol of `epochs` epochs.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>, epochs: usize) -> AssessorSummary {
        let mut s = AssessorSummary::default();
        for outcome in outcomes {
            let trained = outcome.epochs_trained(epochs);
            s.trained += 1;
            s.epochs_trained += trained;
            s.epochs_full += epochs;
            s.train_seconds += outcome.seconds;
            s.measure_seconds += outcome.curve.measure_seconds;
            if outcome.curve.stopped {
                s.stopped += 1;
                let per_epoch = (outcome.seconds - outcome.curve.measure_seconds).max(0.0) / trained.max(1) as f64;
                s.saved_seconds += per_epoch * epochs.saturating_sub(trained) as f64;
            }
        }
        s
    }

    /// The report's paragraph.
    pub fn to_markdown(&self) -> String {
        let share = |part: f64, whole: f64| if whole > 0.0 { 100.0 * part / whole } else { 0.0 };
        format!(
            "The assessor stopped {} of the {} children this run trained ({:.0}%). They trained {} of the {} epochs that training each to the end would have taken ({:.0}% saved). Training took {:.1} s, of which {:.1} s measured the per-epoch accuracy the assessor reads; the remaining epochs of the stopped children would have taken about {:.1} s more (estimated from each child's own time per epoch), so the assessor saved about {:.0}% of the training time.\n\n",
            self.stopped,
            self.trained,
            share(self.stopped as f64, self.trained as f64),
            self.epochs_trained,
            self.epochs_full,
            share((self.epochs_full - self.epochs_trained) as f64, self.epochs_full as f64),
            self.train_seconds,
            self.measure_seconds,
            self.saved_seconds,
            share(self.saved_seconds, self.train_seconds + self.saved_seconds),
        )
    }
}

/// What an evaluator's number is: a trained child's accuracy, or the synthetic evaluator's score.
pub fn score_name(evaluator: &str) -> &'static str {
    if evaluator == "synthetic" {
        "score"
    } else {
        "accuracy"
    }
}

/// What a table run's report says of its table: the file, its recorded checksum (and whether
/// the file has changed since), and the surrogate's held-out quality as the run measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableSource {
    file: String,
    /// ", sha256 0123456789ab" (and a warning when the file now differs); empty for runs
    /// stored before tables were recorded.
    checksum: String,
    quality: String,
}

fn table_source(record: &nas_store::RunRecord, config: &nas_config::RunConfig) -> TableSource {
    let path = config.table.file.as_deref();
    let file = path.map_or("(no file)".into(), |f| f.display().to_string());
    let Some(table) = &record.table else {
        // A run stored before schema version 16: refit from the file as it is now (deterministic
        // for the run's seed, if the file has not changed).
        return TableSource {
            file,
            checksum: String::new(),
            quality: refitted_quality(config),
        };
    };
    let now = path
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| nas_core::checksum::sha256_hex(&b));
    // A stored checksum is 64 hex digits; a hand-edited store may hold anything.
    let then = table.sha256.get(..12).unwrap_or(&table.sha256);
    let checksum = match now {
        Some(now) if now == table.sha256 => format!(", sha256 {then}"),
        Some(now) => format!(
            ", sha256 {then} — the file has changed since (sha256 {} now)",
            &now[..12]
        ),
        // A relative path is read from the current directory: the file may live elsewhere.
        None => format!(", sha256 {then} — the file cannot be read from here to compare"),
    };
    TableSource {
        file,
        checksum,
        quality: table
            .surrogate_quality
            .clone()
            .unwrap_or_else(|| "the table was too small for a surrogate".into()),
    }
}

/// The surrogate's quality refitted from the table file as it is now.
fn refitted_quality(config: &nas_config::RunConfig) -> String {
    match config.dataset.describe() {
        Ok(info) => {
            let mdp = nas_core::mdp::Mdp::new(config.mdp.clone(), info.height as u32);
            match nas_train::evaluator::load_table(config, &mdp) {
                Ok(table) => table
                    .quality
                    .map_or("the table is too small for a surrogate".into(), |q| {
                        format!("{q}, refitted from the file as it is now: the run predates recorded tables")
                    }),
                Err(e) => format!("the surrogate's quality is unknown here: {e:#}"),
            }
        }
        Err(e) => format!("the surrogate's quality is unknown here: {e:#}"),
    }
}

/// How many of a run's rewards the table's surrogate predicted.
fn predicted_rewards(store: &Store, run: i64) -> anyhow::Result<usize> {
    let mut predicted = 0;
    for id in store.episode_evaluations(run)?.into_values() {
        predicted += usize::from(store.evaluation(id)?.outcome.predicted);
    }
    Ok(predicted)
}

/// For a run answered from a benchmark table: how many rewards the surrogate predicted, and its
/// held-out quality as recorded when the run loaded the table, so a reader weighs those rewards
/// accordingly.
fn table_note(
    store: &Store,
    record: &nas_store::RunRecord,
    config: &nas_config::RunConfig,
    episodes: usize,
) -> anyhow::Result<String> {
    let predicted = predicted_rewards(store, record.id)?;
    let TableSource {
        file,
        checksum,
        quality,
    } = table_source(record, config);
    Ok(format!(
        "**{predicted} of {episodes} rewards were predicted** by the benchmark table's surrogate (a random forest; {quality}); the others are accuracies recorded in `{file}`{checksum}.\n\n"
    ))
}

/// For `compare`: one paragraph per benchmark table among `runs` (most comparisons use one),
/// naming its runs, how many of each run's rewards the surrogate predicted, and its quality.
pub fn table_notes(store: &Store, runs: &[i64]) -> anyhow::Result<Vec<String>> {
    let mut groups: Vec<(TableSource, Vec<String>)> = Vec::new();
    for &run in runs {
        let record = store.run(run)?;
        if record.evaluator != nas_config::EvaluatorKind::Table.as_str() {
            continue;
        }
        let config = nas_config::RunConfig::from_toml(&record.config_toml)?;
        let source = table_source(&record, &config);
        let count = format!(
            "run {run} {} of {}",
            predicted_rewards(store, run)?,
            store.episodes(run)?.len()
        );
        match groups.iter_mut().find(|(s, _)| *s == source) {
            Some((_, counts)) => counts.push(count),
            None => groups.push((source, vec![count])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(TableSource { file, checksum, quality }, counts)| {
            format!(
                "Answered from the benchmark table `{file}`{checksum}. **Rewards predicted** by its surrogate (a random forest; {quality}): {}; the others are accuracies recorded in the table.",
                counts.join(", ")
            )
        })
        .collect())
}

/// Writes `report.md` and its plots into `out`; returns the report's path.
pub fn write_report(store: &Store, run: i64, out: &Path) -> anyhow::Result<PathBuf> {
    let record = store.run(run)?;
    let episodes = store.episodes(run)?;
    anyhow::ensure!(!episodes.is_empty(), "run {run} has no finished episodes to report on");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let config = nas_config::RunConfig::from_toml(&record.config_toml)?;
    let mut labels = PlotLabels {
        subtitle: format!(
            "run {run} · agent {} {} · reward {} {} · dataset {} · evaluator {}",
            record.agent.name,
            record.agent.version,
            record.reward.name,
            record.reward.version,
            record.dataset,
            record.evaluator
        ),
        score: score_name(&record.evaluator),
    };
    if let Some(assessor) = &record.assessor {
        labels.subtitle.push_str(&format!(" · assessor {}", assessor.name));
    }
    let score = labels.score;

    figure(
        out,
        "reward",
        (1000, 560),
        |a| plot_rewards(a, &episodes, &labels),
        |a| plot_rewards(a, &episodes, &labels),
    )?;
    figure(
        out,
        "accuracy_vs_params",
        (1000, 560),
        |a| plot_accuracy_vs_params(a, &episodes, &labels),
        |a| plot_accuracy_vs_params(a, &episodes, &labels),
    )?;
    let metric = ["epsilon", "entropy"]
        .into_iter()
        .find(|m| episodes.iter().any(|e| e.metrics.contains_key(*m)));
    if let Some(metric) = metric {
        let points: Vec<(i64, f64)> = episodes
            .iter()
            .filter_map(|e| {
                e.metrics
                    .get(metric)
                    .and_then(|v| v.as_f64())
                    .map(|v| (e.index as i64, v))
            })
            .collect();
        figure(
            out,
            "exploration",
            (1000, 480),
            |a| plot_metric(a, metric, &points, &labels),
            |a| plot_metric(a, metric, &points, &labels),
        )?;
    }
    let best = episodes
        .iter()
        .max_by(|a, b| a.reward.total_cmp(&b.reward))
        .expect("non-empty");
    let best_arch: Architecture = best.architecture.parse().map_err(anyhow::Error::msg)?;
    let info = config.dataset.describe()?;
    let summary = best_arch.summary(info.image_shape(), info.num_classes());
    let caption = format!(
        "Best architecture (episode {}, reward {:.4}, {score} {:.4}, {} params)",
        best.index,
        best.reward,
        best.accuracy,
        nas_core::summary::with_thousands(best.params)
    );
    figure(
        out,
        "best_architecture",
        (1100, 200),
        |a| draw_architecture(a, &best_arch, &summary, &caption, &labels),
        |a| draw_architecture(a, &best_arch, &summary, &caption, &labels),
    )?;

    // Learning curves and what the assessor saved, when the run's children have curves.
    let evaluation_ids = store.episode_evaluations(run)?;
    let mut seen = std::collections::HashSet::new();
    let mut curves = Vec::new();
    let mut trained_here = Vec::new();
    for episode in &episodes {
        let id = evaluation_ids[&episode.index];
        if !seen.insert(id) {
            continue;
        }
        let outcome = store.evaluation(id)?.outcome;
        if outcome.curve.is_measured() {
            curves.push((outcome.curve.accuracy.clone(), outcome.curve.stopped));
        }
        if !episode.cache_hit {
            trained_here.push(outcome);
        }
    }
    let assessed = record.assessor.is_some() || !curves.is_empty();
    if !curves.is_empty() {
        figure(
            out,
            "learning_curves",
            (1000, 560),
            |a| plot_curves(a, &curves, config.train.epochs, &labels),
            |a| plot_curves(a, &curves, config.train.epochs, &labels),
        )?;
    }

    let top = top_distinct(&episodes, 10);
    let hits = episodes.iter().filter(|e| e.cache_hit).count();
    let tail = episodes.len().min(100);
    let (tail_mean, _) = mean_std(
        &episodes[episodes.len() - tail..]
            .iter()
            .map(|e| e.reward)
            .collect::<Vec<_>>(),
    );
    let mut md = format!(
        "# nas-host run {run}\n\n| | |\n|---|---|\n| agent | {} {} |\n| reward | {} {} |\n| dataset | {} |\n| evaluator | {} |\n| seed | {} |\n| status | {} |\n| episodes | {} of {} |\n| mean reward, last {tail} episodes | {tail_mean:.4} |\n| cache hits | {hits} |\n| wall time | {:.1} s |\n\n",
        record.agent.name, record.agent.version, record.reward.name, record.reward.version, record.dataset, record.evaluator,
        record.seed, record.status, episodes.len(), record.episodes_target, record.wall_seconds
    );
    if let Some(assessor) = &record.assessor {
        md = md.replacen(
            "| dataset |",
            &format!("| assessor | {} {} |\n| dataset |", assessor.name, assessor.version),
            1,
        );
    }
    if record.evaluator == nas_config::EvaluatorKind::Table.as_str() {
        md.push_str(&table_note(store, &record, &config, episodes.len())?);
    }
    md.push_str("## Best architecture\n\n![best architecture](best_architecture.png)\n\n");
    md.push_str(&format!(
        "`{}` — reward {:.4}, {score} {:.4}, {} parameters, found in episode {}.{}\n\n```\n{summary}\n```\n\n",
        best.architecture,
        best.reward,
        best.accuracy,
        best.params,
        best.index,
        if best.stopped {
            format!(
                " The assessor stopped it early: its {score} is the last one measured, not the protocol's; `nas-host export {run} --arch \"{}\"` trains it fully.",
                best.architecture
            )
        } else {
            String::new()
        }
    ));
    md.push_str(&format!(
        "## Reward and {score}\n\n![reward per episode](reward.png)\n\n## {} vs size\n\n![{score} vs parameters](accuracy_vs_params.png)\n\n",
        capitalised(score)
    ));
    let pareto = crate::pareto::write_pareto(store, &[run], out, &labels.subtitle, score)?;
    if !pareto.points.is_empty() {
        md.push_str(&pareto.to_markdown(score));
    }
    if assessed {
        md.push_str("## Learning curves and early stopping\n\n");
        if !curves.is_empty() {
            md.push_str("![learning curves](learning_curves.png)\n\n");
        }
        md.push_str(&AssessorSummary::of(&trained_here, config.train.epochs).to_markdown());
    }
    match metric {
        Some(m) => md.push_str(&format!("## Exploration\n\n![{m} over episodes](exploration.png)\n\n")),
        None => md.push_str("## Exploration\n\nThis agent reports neither ε nor policy entropy.\n\n"),
    }
    md.push_str(&format!(
        "## Top architectures\n\n| reward | {score} | params | depth | architecture |\n|---|---|---|---|---|\n"
    ));
    for e in &top {
        md.push_str(&format!(
            "| {:.4} | {:.4}{} | {} | {} | `{}` |\n",
            e.reward,
            e.accuracy,
            if e.stopped { " (stopped early)" } else { "" },
            e.params,
            e.depth,
            e.architecture
        ));
    }
    let samples = store.eval_samples(run)?;
    if !samples.is_empty() {
        let (m, s, p, d) = sample_stats(&samples);
        md.push_str(&format!(
            "\n## Frozen-policy evaluation\n\n{} samples: {score} {m:.4} ± {s:.4}, mean parameters {p:.0}, mean depth {d:.2}.\n",
            samples.len()
        ));
    }
    let path = out.join("report.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {}
