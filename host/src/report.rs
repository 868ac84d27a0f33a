//! Reports: the cross-run comparison table (Markdown and CSV) and a per-run Markdown report with
//! PNG and SVG plots drawn by plotters.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::arch::{Architecture, Layer};
use crate::evaluator::Outcome;
use crate::frozen_policy::sample_stats;
use crate::stats::mean_std;
use crate::store::{EpisodeRecord, Store};

/// One table across runs. The best value of each comparable column is marked in Markdown.
pub struct CompareTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// (row, column) of each column's best value.
    pub best: Vec<(usize, usize)>,
}

impl CompareTable {
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| {} |\n|{}\n",
            self.header.join(" | "),
            "---|".repeat(self.header.len())
        );
        for (r, row) in self.rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    if self.best.contains(&(r, c)) {
                        format!("**{cell}**")
                    } else {
                        cell.clone()
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        if !self.best.is_empty() {
            out.push_str("\nBold: the best run in each column (highest score, fewest parameters, shortest time).\n");
        }
        out
    }

    pub fn to_csv(&self) -> String {
        let escape = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = self.header.iter().map(|h| escape(h)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            out.push_str(&(row.iter().map(|c| escape(c)).collect::<Vec<_>>().join(",") + "\n"));
        }
        out
    }
}

/// The `count` best-rewarded episodes with distinct architectures, best first (an
/// architecture's best episode represents it; ties keep episode order).
pub fn top_distinct(episodes: &[EpisodeRecord], count: usize) -> Vec<&EpisodeRecord> {
    let mut sorted: Vec<&EpisodeRecord> = episodes.iter().collect();
    sorted.sort_by(|a, b| b.reward.total_cmp(&a.reward));
    let mut top: Vec<&EpisodeRecord> = Vec::new();
    for e in sorted {
        if top.len() == count {
            break;
        }
        if !top.iter().any(|t| t.architecture == e.architecture) {
            top.push(e);
        }
    }
    top
}

/// Which way is better in a compared column.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

pub fn compare_table(store: &Store, runs: &[i64]) -> anyhow::Result<CompareTable> {
    let records = runs
        .iter()
        .map(|&run| store.run(run))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let synthetic = records.iter().filter(|r| r.evaluator == "synthetic").count();
    let score = match synthetic {
        0 => "accuracy",
        n if n == records.len() => "score",
        _ => "accuracy (score for synthetic runs)",
    };
    let header = vec![
        "run".to_string(),
        "agent".into(),
        "reward".into(),
        "dataset".into(),
        "episodes".into(),
        format!("best {score}"),
        format!("eval {score} (mean ± std)"),
        "eval mean params".into(),
        "eval mean depth".into(),
        "wall time (s)".into(),
        "cache hits".into(),
    ];
    // The columns with a better direction, and each row's value in them.
    let compared = [
        (5, Better::Higher),
        (6, Better::Higher),
        (7, Better::Lower),
        (9, Better::Lower),
    ];
    let mut values: Vec<[Option<f64>; 4]> = Vec::new();
    let mut rows = Vec::new();
    for (&run, r) in runs.iter().zip(&records) {
        let episodes = store.episodes(run)?;
        let best = episodes.iter().map(|e| e.accuracy).fold(f64::NAN, f64::max);
        let hits = episodes.iter().filter(|e| e.cache_hit).count();
        let samples = store.eval_samples(run)?;
        let stats = (!samples.is_empty()).then(|| sample_stats(&samples));
        let (eval_score, eval_params, eval_depth) = match stats {
            None => ("— (run `nas-host eval`)".to_string(), "—".to_string(), "—".to_string()),
            Some((m, s, p, d)) => (
                format!("{m:.4} ± {s:.4} (n={})", samples.len()),
                format!("{p:.0}"),
                format!("{d:.2}"),
            ),
        };
        values.push([
            (!best.is_nan()).then_some(best),
            stats.map(|s| s.0),
            stats.map(|s| s.2),
            Some(r.wall_seconds),
        ]);
        rows.push(vec![
            run.to_string(),
            format!("{} {}", r.agent.name, r.agent.version),
            r.reward.name.clone(),
            r.dataset.clone(),
            format!("{}/{}", episodes.len(), r.episodes_target),
            if best.is_nan() {
                "—".into()
            } else {
                format!("{best:.4}")
            },
            eval_score,
            eval_params,
            eval_depth,
            format!("{:.1}", r.wall_seconds),
            format!("{hits}/{}", episodes.len()),
        ]);
    }
    let mut marks = Vec::new();
    if rows.len() > 1 {
        for (k, &(column, better)) in compared.iter().enumerate() {
            let best = values
                .iter()
                .enumerate()
                .filter_map(|(row, v)| v[k].map(|x| (row, x)))
                .reduce(|a, b| match better {
                    Better::Higher if b.1 > a.1 => b,
                    Better::Lower if b.1 < a.1 => b,
                    _ => a,
                });
            if let Some((row, _)) = best {
                marks.push((row, column));
            }
        }
    }
    Ok(CompareTable {
        header,
        rows,
        best: marks,
    })
}

fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let mut sum = 0.0;
    for (i, v) in values.iter().enumerate() {
        sum += v;
        if i >= window {
            sum -= values[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The Okabe–Ito palette: distinguishable with every common form of colour blindness.
mod palette {
    use plotters::style::RGBColor;
    pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
    pub const BLUE: RGBColor = RGBColor(0, 114, 178);
    pub const BLUISH_GREEN: RGBColor = RGBColor(0, 158, 115);
    pub const SKY_BLUE: RGBColor = RGBColor(86, 180, 233);
    pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
    pub const GREY: RGBColor = RGBColor(90, 90, 90);
}

/// What every plot of a run says about it.
struct PlotLabels {
    /// "run 3 · agent ppo 0.1.0 · reward accuracy 0.1.0 · dataset cifar5 · evaluator train".
    subtitle: String,
    /// What the evaluator measures: "accuracy", or "score" for the synthetic evaluator.
    score: &'static str,
}

/// Fills the area, writes the title and subtitle at the top and returns the area below them.
fn titled<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    labels: &PlotLabels,
) -> Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error + 'a>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let below_title = root.titled(title, ("sans-serif", 22))?;
    Ok(below_title.titled(&labels.subtitle, ("sans-serif", 14).into_font().color(&palette::GREY))?)
}

/// The value axis: up to 1 (or the largest value), down to just below the smallest value, in steps
/// of 0.1, so that a search whose children all score 0.98–0.99 is not drawn as one flat line at
/// the top of a 0–1 axis.
fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let floor = ((lo - 0.02) * 10.0).floor() / 10.0;
    (floor.min(0.9), hi.max(1.0))
}

/// A count as tick labels read it: 950, 1k, 20k, 1.5M.
fn human_count(value: f64) -> String {
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let text = format!("{scaled:.1}");
    format!("{}{suffix}", text.trim_end_matches(".0"))
}

fn plot_rewards<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    episodes: &[EpisodeRecord],
    labels: &PlotLabels,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let n = episodes.len().max(1) as i64;
    let rewards: Vec<f64> = episodes.iter().map(|e| e.reward).collect();
    let scores: Vec<f64> = episodes.iter().map(|e| e.accuracy).collect();
    let (lo, hi) = value_range(rewards.iter().chain(&scores).copied());
    let window = (episodes.len() / 20).clamp(1, 100);
    let title = format!("Reward and {} per episode (moving average over {window})", labels.score);
    let area = titled(&root, &title, labels).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0..n, lo..hi)?;
    chart.configure_mesh().x_desc("episode").y_desc("value").draw()?;
    let faint = |c: RGBColor| c.mix(0.35).filled();
    let index = |i: usize| i as i64;
    chart.draw_series(
        rewards
            .iter()
            .enumerate()
            .map(|(i, &r)| Circle::new((index(i), r), 2, faint(palette::VERMILLION))),
    )?;
    chart.draw_series(
        scores
            .iter()
            .enumerate()
            .map(|(i, &a)| Circle::new((index(i), a), 2, faint(palette::BLUE))),
    )?;
    for (values, colour, name) in [
        (&rewards, palette::VERMILLION, "reward"),
        (&scores, palette::BLUE, labels.score),
    ] {
        chart
            .draw_series(LineSeries::new(
                moving_average(values, window)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (index(i), v)),
                colour.stroke_width(2),
            ))?
            .label(format!("{name} (moving average)"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

fn plot_accuracy_vs_params<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    episodes: &[EpisodeRecord],
    labels: &PlotLabels,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    let params: Vec<f64> = episodes.iter().map(|e| (e.params.max(1)) as f64).collect();
    let (pmin, pmax) = params
        .iter()
        .fold((f64::INFINITY, 1.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    let pmin = if pmin.is_finite() { pmin / 1.5 } else { 1.0 };
    let n = episodes.len().max(1) as f32;
    let title = format!(
        "{} vs parameters (colour: episode, early = purple, late = yellow)",
        capitalised(labels.score)
    );
    let area = titled(&root, &title, labels).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(
            (pmin..pmax * 1.5).log_scale(),
            value_range(episodes.iter().map(|e| e.accuracy)).0..1.0,
        )?;
    chart
        .configure_mesh()
        .x_desc("trainable parameters (log scale)")
        .y_desc(labels.score)
        .x_label_formatter(&|v| human_count(*v))
        .draw()?;
    chart.draw_series(episodes.iter().zip(&params).map(|(e, &p)| {
        let colour: RGBColor = ViridisRGB.get_color(e.index as f32 / n);
        Circle::new((p, e.accuracy), 3, colour.filled())
    }))?;
    root.present()?;
    Ok(())
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

fn plot_metric<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    name: &str,
    points: &[(i64, f64)],
    labels: &PlotLabels,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let xmax = points.last().map_or(1, |p| p.0 + 1);
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).min(0.0);
    let hi = points
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo + 1e-6)
        * 1.05;
    let area = titled(&root, &format!("Agent {name} over episodes"), labels).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0..xmax, lo..hi)?;
    chart.configure_mesh().x_desc("episode").y_desc(name).draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        palette::BLUISH_GREEN.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

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

/// Learning curves: completed children in blue, stopped ones in vermillion ending in a cross.
fn plot_curves<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    curves: &[(Vec<f64>, bool)],
    epochs: usize,
    labels: &PlotLabels,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let epochs = epochs.max(curves.iter().map(|c| c.0.len()).max().unwrap_or(1)).max(2) as i64;
    let (lo, hi) = value_range(curves.iter().flat_map(|c| c.0.iter().copied()));
    let title = format!(
        "Learning curves ({} per epoch; stopped children in vermillion, ending in ×)",
        labels.score
    );
    let area = titled(&root, &title, labels).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(1..epochs, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(labels.score)
        .x_labels(epochs as usize)
        .draw()?;
    let points = |c: &[f64]| {
        c.iter()
            .enumerate()
            .map(|(i, &a)| (i as i64 + 1, a))
            .collect::<Vec<_>>()
    };
    // Completed curves first, so the stopped ones stay visible on top.
    for stopped in [false, true] {
        let colour = if stopped { palette::VERMILLION } else { palette::BLUE };
        for (curve, _) in curves.iter().filter(|c| c.1 == stopped) {
            let line = points(curve);
            chart.draw_series(LineSeries::new(line.clone(), colour.mix(0.45).stroke_width(1)))?;
            if stopped {
                if let Some(&end) = line.last() {
                    chart.draw_series(std::iter::once(Cross::new(end, 4, colour.stroke_width(2))))?;
                }
            }
        }
    }
    root.present()?;
    Ok(())
}

/// A layer box's text: the layer in the seed's notation (CONV(filters,kernel,stride),
/// POOL(size,stride), FC(units); `None` is the classifier), then its output shape and parameters.
fn box_lines(layer: Option<&Layer>, row: &crate::arch::SummaryRow) -> [String; 3] {
    let name = match layer {
        Some(Layer::Conv { filters, kernel }) => format!("CONV({filters},{kernel},1)"),
        Some(Layer::Pool { size, stride }) => format!("POOL({size},{stride})"),
        Some(Layer::Fc { units }) => format!("FC({units})"),
        None => format!("FC({})", row.output[0]),
    };
    let shape = row.output.iter().map(u64::to_string).collect::<Vec<_>>().join("×");
    let params = if row.params == 0 {
        "no params".to_string()
    } else {
        format!("{} params", human_count(row.params as f64))
    };
    [name, shape, params]
}

fn draw_architecture<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    arch: &Architecture,
    summary: &crate::arch::Summary,
    caption: &str,
    labels: &PlotLabels,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let area = titled(&root, caption, labels).map_err(|e| e.to_string())?;
    let (width, height) = area.dim_in_pixel();
    let n = summary.rows.len() as i32;
    let gap = 30;
    let box_w = ((width as i32 - 40 - gap * (n - 1)) / n).clamp(70, 150);
    let box_h = 66;
    let top = (height as i32 - box_h) / 2;
    for (i, row) in summary.rows.iter().enumerate() {
        let x = 20 + i as i32 * (box_w + gap);
        let classifier = i + 1 == summary.rows.len();
        let fill = if classifier {
            palette::ORANGE.mix(0.35)
        } else {
            palette::SKY_BLUE.mix(0.35)
        };
        area.draw(&Rectangle::new([(x, top), (x + box_w, top + box_h)], fill.filled()))?;
        area.draw(&Rectangle::new(
            [(x, top), (x + box_w, top + box_h)],
            BLACK.stroke_width(1),
        ))?;
        for (line, (text, size)) in box_lines(arch.layers.get(i), row)
            .into_iter()
            .zip([15, 13, 13])
            .enumerate()
        {
            area.draw(&Text::new(
                text,
                (x + 6, top + 5 + 20 * line as i32),
                ("sans-serif", size).into_font(),
            ))?;
        }
        if !classifier {
            let (ax, ay) = (x + box_w + 4, top + box_h / 2);
            area.draw(&PathElement::new([(ax, ay), (ax + gap - 8, ay)], BLACK.stroke_width(2)))?;
            area.draw(&Polygon::new(
                vec![(ax + gap - 8, ay - 5), (ax + gap - 2, ay), (ax + gap - 8, ay + 5)],
                BLACK.filled(),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Draws one figure as `NAME.png` and `NAME.svg` in `dir`.
fn figure(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    draw_png: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
    draw_svg: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> anyhow::Result<()> {
    let png = dir.join(format!("{name}.png"));
    let svg = dir.join(format!("{name}.svg"));
    draw_png(BitMapBackend::new(&png, size).into_drawing_area())
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
    draw_svg(SVGBackend::new(&svg, size).into_drawing_area())
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
    Ok(())
}

/// What an evaluator's number is: a trained child's accuracy, or the synthetic evaluator's score.
pub fn score_name(evaluator: &str) -> &'static str {
    if evaluator == "synthetic" {
        "score"
    } else {
        "accuracy"
    }
}

/// Writes `report.md` and its plots into `out`; returns the report's path.
pub fn write_report(store: &Store, run: i64, out: &Path) -> anyhow::Result<PathBuf> {
    let record = store.run(run)?;
    let episodes = store.episodes(run)?;
    anyhow::ensure!(!episodes.is_empty(), "run {run} has no finished episodes to report on");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let config = crate::config::RunConfig::from_toml(&record.config_toml)?;
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
    let summary = best_arch.summary(config.dataset.image_shape(), config.dataset.num_classes());
    let caption = format!(
        "Best architecture (episode {}, reward {:.4}, {score} {:.4}, {} params)",
        best.index,
        best.reward,
        best.accuracy,
        crate::arch::with_thousands(best.params)
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
        let id = evaluation_ids[episode.index];
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
mod tests {
    use super::*;

    #[test]
    fn value_axes_zoom_to_the_data() {
        assert_eq!(value_range([0.985, 0.99, 0.88].into_iter()), (0.8, 1.0));
        assert_eq!(value_range([0.2, 0.5].into_iter()).0, 0.1);
        assert_eq!(value_range([-0.3, 0.5].into_iter()).0, -0.4);
        assert_eq!(value_range(std::iter::empty()), (0.0, 1.0));
        assert_eq!(value_range([0.995].into_iter()).0, 0.9);
    }

    #[test]
    fn tick_labels_read_as_counts() {
        let labels: Vec<String> = [950.0, 1e3, 2e4, 1e5, 1.5e6, 1e6]
            .into_iter()
            .map(human_count)
            .collect();
        assert_eq!(labels, ["950", "1k", "20k", "100k", "1.5M", "1M"]);
    }

    #[test]
    fn the_assessor_summary_counts_what_was_stopped_and_saved() {
        use crate::train::Curve;
        let outcome = |seconds: f64, accuracy: &[f64], stopped: bool, measure_seconds: f64| Outcome {
            accuracy: accuracy.last().copied().unwrap_or(0.0),
            params: 1,
            seconds,
            failure: None,
            transient: false,
            curve: Curve {
                accuracy: accuracy.to_vec(),
                stopped,
                measure_seconds,
            },
        };
        // 5 epochs: one child trained to the end in 10 s (1 s of it measuring); one stopped after
        // 1 epoch in 3 s (no measuring cost: its only measurement is its reward's), so its 4
        // remaining epochs would have taken 4 × 3 s; one stopped after 2 epochs in 5 s, 1 s
        // measuring, so (5 − 1) / 2 = 2 s per epoch and 3 × 2 s saved.
        let outcomes = [
            outcome(10.0, &[0.5, 0.6, 0.7, 0.8, 0.9], false, 1.0),
            outcome(3.0, &[0.2], true, 0.0),
            outcome(5.0, &[0.3, 0.35], true, 1.0),
        ];
        let s = AssessorSummary::of(&outcomes, 5);
        assert_eq!((s.trained, s.stopped, s.epochs_trained, s.epochs_full), (3, 2, 8, 15));
        assert_eq!((s.train_seconds, s.measure_seconds), (18.0, 2.0));
        assert!((s.saved_seconds - 18.0).abs() < 1e-12, "{}", s.saved_seconds);
        let md = s.to_markdown();
        assert!(md.contains("stopped 2 of the 3 children"), "{md}");
        assert!(md.contains("8 of the 15 epochs"), "{md}");
        assert!(md.contains("about 18.0 s more"), "{md}");
        assert!(md.contains("saved about 50%"), "{md}");
    }

    #[test]
    fn moving_average_warms_up() {
        assert_eq!(moving_average(&[1.0, 3.0, 5.0, 7.0], 2), vec![1.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn top_distinct_lists_each_architecture_once() {
        let episode = |index: usize, architecture: &str, reward: f64| EpisodeRecord {
            index,
            env: 0,
            architecture: architecture.into(),
            reward,
            accuracy: reward,
            params: 1,
            depth: 1,
            cache_hit: false,
            failure: None,
            metrics: Default::default(),
            reported: index,
            stopped: false,
        };
        // A and B interleave in reward order: dropping only adjacent duplicates would list A twice.
        let episodes = [
            episode(0, "A", 0.9),
            episode(1, "B", 0.8),
            episode(2, "A", 0.7),
            episode(3, "C", 0.6),
        ];
        let top: Vec<(&str, f64)> = top_distinct(&episodes, 5)
            .iter()
            .map(|e| (e.architecture.as_str(), e.reward))
            .collect();
        assert_eq!(top, vec![("A", 0.9), ("B", 0.8), ("C", 0.6)]);
        assert_eq!(top_distinct(&episodes, 2).len(), 2);
    }

    #[test]
    fn csv_escapes() {
        let t = CompareTable {
            header: vec!["a".into(), "b".into()],
            rows: vec![vec!["x,y".into(), "q\"".into()]],
            best: vec![(0, 1)],
        };
        assert_eq!(t.to_csv(), "a,b\n\"x,y\",\"q\"\"\"\n");
        assert!(t.to_markdown().contains("| x,y | **q\"** |"));
    }
}
