//! Reports: the cross-run comparison table (Markdown and CSV) and a per-run Markdown report with
//! PNG and SVG plots drawn by plotters.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::arch::{Architecture, Layer};
use crate::frozen_policy::sample_stats;
use crate::stats::mean_std;
use crate::store::{EpisodeRecord, Store};

/// One table across runs.
pub struct CompareTable {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl CompareTable {
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| {} |\n|{}\n",
            self.header.join(" | "),
            "---|".repeat(self.header.len())
        );
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
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

pub fn compare_table(store: &Store, runs: &[i64]) -> anyhow::Result<CompareTable> {
    let header = vec![
        "run",
        "agent",
        "reward",
        "dataset",
        "episodes",
        "best accuracy",
        "eval accuracy (mean ± std)",
        "eval mean params",
        "eval mean depth",
        "wall time (s)",
        "cache hits",
    ];
    let mut rows = Vec::new();
    for &run in runs {
        let r = store.run(run)?;
        let episodes = store.episodes(run)?;
        let best = episodes.iter().map(|e| e.accuracy).fold(f64::NAN, f64::max);
        let hits = episodes.iter().filter(|e| e.cache_hit).count();
        let samples = store.eval_samples(run)?;
        let (eval_acc, eval_params, eval_depth) = if samples.is_empty() {
            ("— (run `nas-host eval`)".to_string(), "—".to_string(), "—".to_string())
        } else {
            let (m, s, p, d) = sample_stats(&samples);
            (
                format!("{m:.4} ± {s:.4} (n={})", samples.len()),
                format!("{p:.0}"),
                format!("{d:.2}"),
            )
        };
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
            eval_acc,
            eval_params,
            eval_depth,
            format!("{:.1}", r.wall_seconds),
            format!("{hits}/{}", episodes.len()),
        ]);
    }
    Ok(CompareTable { header, rows })
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

fn plot_rewards<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, episodes: &[EpisodeRecord]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let n = episodes.len().max(1);
    let rewards: Vec<f64> = episodes.iter().map(|e| e.reward).collect();
    let accuracies: Vec<f64> = episodes.iter().map(|e| e.accuracy).collect();
    let lo = rewards
        .iter()
        .chain(&accuracies)
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let hi = rewards
        .iter()
        .chain(&accuracies)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1.0);
    let window = (n / 20).clamp(1, 100);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Reward and accuracy per episode (moving average over {window})"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..n as f64, lo..hi)?;
    chart.configure_mesh().x_desc("episode").y_desc("value").draw()?;
    let light_red = RGBColor(240, 160, 160);
    let light_blue = RGBColor(150, 180, 240);
    chart.draw_series(
        rewards
            .iter()
            .enumerate()
            .map(|(i, &r)| Circle::new((i as f64, r), 2, light_red.filled())),
    )?;
    chart.draw_series(
        accuracies
            .iter()
            .enumerate()
            .map(|(i, &a)| Circle::new((i as f64, a), 2, light_blue.filled())),
    )?;
    chart
        .draw_series(LineSeries::new(
            moving_average(&rewards, window)
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as f64, v)),
            RED.stroke_width(2),
        ))?
        .label("reward (moving average)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            moving_average(&accuracies, window)
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as f64, v)),
            BLUE.stroke_width(2),
        ))?
        .label("accuracy (moving average)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

fn plot_accuracy_vs_params<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, episodes: &[EpisodeRecord]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let params: Vec<f64> = episodes.iter().map(|e| (e.params.max(1)) as f64).collect();
    let (pmin, pmax) = params
        .iter()
        .fold((f64::INFINITY, 1.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    let pmin = if pmin.is_finite() { pmin / 1.5 } else { 1.0 };
    let n = episodes.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Accuracy vs parameters (colour: episode, early = blue, late = red)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d((pmin..pmax * 1.5).log_scale(), 0f64..1.0)?;
    chart
        .configure_mesh()
        .x_desc("trainable parameters (log)")
        .y_desc("accuracy")
        .draw()?;
    chart.draw_series(episodes.iter().zip(&params).map(|(e, &p)| {
        let t = e.index as f64 / n;
        let colour = RGBColor((255.0 * t) as u8, 60, (255.0 * (1.0 - t)) as u8);
        Circle::new((p, e.accuracy), 3, colour.filled())
    }))?;
    root.present()?;
    Ok(())
}

fn plot_metric<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, name: &str, points: &[(f64, f64)]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let xmax = points.last().map_or(1.0, |p| p.0 + 1.0);
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).min(0.0);
    let hi = points
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo + 1e-6)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Agent {name} over episodes"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..xmax, lo..hi)?;
    chart.configure_mesh().x_desc("episode").y_desc(name).draw()?;
    chart.draw_series(LineSeries::new(points.iter().copied(), GREEN.stroke_width(2)))?;
    root.present()?;
    Ok(())
}

/// Box label of a layer in the seed's notation: CONV(filters,kernel,stride), POOL(size,stride), FC(units).
fn box_label(layer: &Layer) -> String {
    match layer {
        Layer::Conv { filters, kernel } => format!("CONV({filters},{kernel},1)"),
        Layer::Pool { size, stride } => format!("POOL({size},{stride})"),
        Layer::Fc { units } => format!("FC({units})"),
    }
}

fn draw_architecture<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    arch: &Architecture,
    classes: usize,
    caption: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (width, height) = root.dim_in_pixel();
    let mut labels: Vec<String> = arch.layers.iter().map(box_label).collect();
    labels.push(format!("FC({classes})"));
    let n = labels.len() as i32;
    let gap = 34;
    let box_w = ((width as i32 - 40 - gap * (n - 1)) / n).clamp(60, 150);
    let (top, box_h) = (height as i32 / 2 - 24, 48);
    root.draw(&Text::new(
        caption.to_string(),
        (20, 14),
        ("sans-serif", 18).into_font(),
    ))?;
    for (i, label) in labels.iter().enumerate() {
        let x = 20 + i as i32 * (box_w + gap);
        let fill = if i + 1 == labels.len() {
            RGBColor(255, 230, 200)
        } else {
            RGBColor(210, 225, 250)
        };
        root.draw(&Rectangle::new([(x, top), (x + box_w, top + box_h)], fill.filled()))?;
        root.draw(&Rectangle::new(
            [(x, top), (x + box_w, top + box_h)],
            BLACK.stroke_width(1),
        ))?;
        root.draw(&Text::new(
            label.clone(),
            (x + 6, top + box_h / 2 - 7),
            ("sans-serif", 14).into_font(),
        ))?;
        if i + 1 < labels.len() {
            let (ax, ay) = (x + box_w + 4, top + box_h / 2);
            root.draw(&PathElement::new([(ax, ay), (ax + gap - 8, ay)], BLACK.stroke_width(2)))?;
            root.draw(&Polygon::new(
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

/// Writes `report.md` and its plots into `out`; returns the report's path.
pub fn write_report(store: &Store, run: i64, out: &Path) -> anyhow::Result<PathBuf> {
    let record = store.run(run)?;
    let episodes = store.episodes(run)?;
    anyhow::ensure!(!episodes.is_empty(), "run {run} has no finished episodes to report on");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let config = crate::config::RunConfig::from_toml(&record.config_toml)?;
    let classes = config.dataset.num_classes();

    figure(
        out,
        "reward",
        (1000, 560),
        |a| plot_rewards(a, &episodes),
        |a| plot_rewards(a, &episodes),
    )?;
    figure(
        out,
        "accuracy_vs_params",
        (1000, 560),
        |a| plot_accuracy_vs_params(a, &episodes),
        |a| plot_accuracy_vs_params(a, &episodes),
    )?;
    let metric = ["epsilon", "entropy"]
        .into_iter()
        .find(|m| episodes.iter().any(|e| e.metrics.contains_key(*m)));
    if let Some(metric) = metric {
        let points: Vec<(f64, f64)> = episodes
            .iter()
            .filter_map(|e| {
                e.metrics
                    .get(metric)
                    .and_then(|v| v.as_f64())
                    .map(|v| (e.index as f64, v))
            })
            .collect();
        figure(
            out,
            "exploration",
            (1000, 480),
            |a| plot_metric(a, metric, &points),
            |a| plot_metric(a, metric, &points),
        )?;
    }
    let best = episodes
        .iter()
        .max_by(|a, b| a.reward.total_cmp(&b.reward))
        .expect("non-empty");
    let best_arch: Architecture = best.architecture.parse().map_err(anyhow::Error::msg)?;
    let caption = format!(
        "Best architecture (episode {}, reward {:.4}, accuracy {:.4}, {} params)",
        best.index, best.reward, best.accuracy, best.params
    );
    figure(
        out,
        "best_architecture",
        (1100, 180),
        |a| draw_architecture(a, &best_arch, classes, &caption),
        |a| draw_architecture(a, &best_arch, classes, &caption),
    )?;

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
    md.push_str("## Best architecture\n\n![best architecture](best_architecture.png)\n\n");
    md.push_str(&format!(
        "`{}` — reward {:.4}, accuracy {:.4}, {} parameters, found in episode {}.\n\n",
        best.architecture, best.reward, best.accuracy, best.params, best.index
    ));
    md.push_str("## Reward and accuracy\n\n![reward per episode](reward.png)\n\n");
    md.push_str("## Accuracy vs size\n\n![accuracy vs parameters](accuracy_vs_params.png)\n\n");
    match metric {
        Some(m) => md.push_str(&format!("## Exploration\n\n![{m} over episodes](exploration.png)\n\n")),
        None => md.push_str("## Exploration\n\nThis agent reports neither ε nor policy entropy.\n\n"),
    }
    md.push_str(
        "## Top architectures\n\n| reward | accuracy | params | depth | architecture |\n|---|---|---|---|---|\n",
    );
    for e in &top {
        md.push_str(&format!(
            "| {:.4} | {:.4} | {} | {} | `{}` |\n",
            e.reward, e.accuracy, e.params, e.depth, e.architecture
        ));
    }
    let samples = store.eval_samples(run)?;
    if !samples.is_empty() {
        let (m, s, p, d) = sample_stats(&samples);
        md.push_str(&format!(
            "\n## Frozen-policy evaluation\n\n{} samples: accuracy {m:.4} ± {s:.4}, mean parameters {p:.0}, mean depth {d:.2}.\n",
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
            header: vec!["a", "b"],
            rows: vec![vec!["x,y".into(), "q\"".into()]],
        };
        assert_eq!(t.to_csv(), "a,b\n\"x,y\",\"q\"\"\"\n");
    }
}
