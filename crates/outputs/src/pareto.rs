//! The accuracy–cost trade-off of runs (`report`, `compare`, `export --pareto`): each distinct
//! child the runs trained with its cost, the Pareto-optimal ones against latency and against
//! multiply-adds, and how well multiply-adds alone rank the measured latencies.

use std::collections::HashSet;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use nas_core::arch::Architecture;
use nas_core::cost::{pareto_front, structural_cost};
use nas_core::stats::spearman;
use nas_store::Store;

use crate::plots::{figure, human_count, titled, value_range, DrawResult, PlotLabels};

/// One distinct child of a run, with its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPoint {
    pub run: i64,
    pub evaluation_id: i64,
    pub architecture: String,
    pub accuracy: f64,
    pub params: u64,
    pub mult_adds: u64,
    pub activation_bytes: u64,
    /// Median and p90 latency in ms and where it was measured, when the run measured it.
    pub latency_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    pub latency_device: Option<String>,
}

/// The children of `runs` that trained to the end without failing, once per evaluation, with
/// their stored cost (the structural figures for evaluations stored before costs were).
pub fn cost_points(store: &Store, runs: &[i64]) -> anyhow::Result<Vec<CostPoint>> {
    let mut points = Vec::new();
    for &run in runs {
        let record = store.run(run)?;
        let config = nas_config::RunConfig::from_toml(&record.config_toml)?;
        let info = config.dataset.describe()?;
        let ids = store.episode_evaluations(run)?;
        let mut seen = HashSet::new();
        for episode in store.episodes(run)? {
            let id = ids[&episode.index];
            if !seen.insert(id) {
                continue;
            }
            let outcome = store.evaluation(id)?.outcome;
            if outcome.failure.is_some() || outcome.curve.stopped {
                continue;
            }
            let cost = match outcome.cost {
                Some(cost) => cost,
                None => {
                    let arch: Architecture = episode.architecture.parse().map_err(anyhow::Error::msg)?;
                    structural_cost(&arch, info.image_shape(), info.num_classes())
                }
            };
            points.push(CostPoint {
                run,
                evaluation_id: id,
                architecture: episode.architecture.clone(),
                accuracy: outcome.accuracy,
                params: outcome.params,
                mult_adds: cost.mult_adds,
                activation_bytes: cost.activation_bytes,
                latency_ms: cost.latency.as_ref().map(|l| l.median_ms),
                latency_p90_ms: cost.latency.as_ref().map(|l| l.p90_ms),
                latency_device: cost.latency.as_ref().map(|l| l.device.clone()),
            });
        }
    }
    Ok(points)
}

/// The trade-off of a set of children.
#[derive(Debug, Clone, PartialEq)]
pub struct Pareto {
    pub points: Vec<CostPoint>,
    /// Indices into `points` of the Pareto-optimal children against latency (those with one),
    /// fastest first.
    pub latency_front: Vec<usize>,
    /// The same against multiply-adds, cheapest first.
    pub mult_adds_front: Vec<usize>,
    /// Spearman's rank correlation of multiply-adds with measured latency (children with a
    /// latency measured on a device, not summed from a table; at least three), so users know how
    /// far searching on the proxy alone would go on this machine.
    pub mult_adds_latency_spearman: Option<f64>,
}

impl Pareto {
    pub fn of(points: Vec<CostPoint>) -> Pareto {
        let by_latency: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.accuracy, p.latency_ms.unwrap_or(f64::NAN)))
            .collect();
        let by_madds: Vec<(f64, f64)> = points.iter().map(|p| (p.accuracy, p.mult_adds as f64)).collect();
        let measured: Vec<&CostPoint> = points
            .iter()
            .filter(|p| p.latency_ms.is_some() && !p.latency_device.as_deref().unwrap_or("").starts_with("table:"))
            .collect();
        let rho = (measured.len() >= 3).then(|| {
            let madds: Vec<f64> = measured.iter().map(|p| p.mult_adds as f64).collect();
            let latency: Vec<f64> = measured.iter().map(|p| p.latency_ms.unwrap_or(f64::NAN)).collect();
            spearman(&madds, &latency)
        });
        Pareto {
            latency_front: pareto_front(&by_latency),
            mult_adds_front: pareto_front(&by_madds),
            mult_adds_latency_spearman: rho.filter(|r| !r.is_nan()),
            points,
        }
    }

    /// Whether any child has a latency.
    pub fn has_latency(&self) -> bool {
        self.points.iter().any(|p| p.latency_ms.is_some())
    }

    /// The Pareto-optimal children: against latency when measured, else against multiply-adds.
    pub fn front(&self) -> Vec<&CostPoint> {
        let front = if self.has_latency() {
            &self.latency_front
        } else {
            &self.mult_adds_front
        };
        front.iter().map(|&i| &self.points[i]).collect()
    }

    /// The report's section: the plots, the front as a table, and the proxy's rank correlation.
    pub fn to_markdown(&self, score: &str) -> String {
        let mut md = String::from("## Accuracy and cost\n\n");
        if self.has_latency() {
            md.push_str("![accuracy vs latency](accuracy_vs_latency.png)\n\n");
        }
        md.push_str("![accuracy vs multiply-adds](accuracy_vs_mult_adds.png)\n\n");
        let against = if self.has_latency() { "latency" } else { "multiply-adds" };
        md.push_str(&format!(
            "Pareto-optimal children against {against} ({} of {}: none is both at least as accurate and at most as costly as another, better in one):\n\n",
            self.front().len(),
            self.points.len()
        ));
        md.push_str(&format!(
            "| run | {score} | latency ms (median / p90) | multiply-adds | params | activations | architecture |\n|---|---|---|---|---|---|---|\n"
        ));
        for p in self.front() {
            let latency = match (p.latency_ms, p.latency_p90_ms) {
                (Some(m), Some(p90)) => format!("{m:.4} / {p90:.4} ({})", p.latency_device.as_deref().unwrap_or("?")),
                _ => "—".into(),
            };
            md.push_str(&format!(
                "| {} | {:.4} | {latency} | {} | {} | {} kB | `{}` |\n",
                p.run,
                p.accuracy,
                human_count(p.mult_adds as f64),
                human_count(p.params as f64),
                p.activation_bytes / 1024,
                p.architecture
            ));
        }
        match self.mult_adds_latency_spearman {
            Some(rho) => md.push_str(&format!(
                "\nMultiply-adds predict the measured latency's ranking with Spearman ρ = {rho:.3} over {} children: {}.\n\n",
                self.points.iter().filter(|p| p.latency_ms.is_some()).count(),
                if rho >= 0.9 {
                    "a search on multiply-adds alone would rank these children much as latency does"
                } else {
                    "a proxy search on multiply-adds would misjudge some children's latency on this machine"
                }
            )),
            None => md.push('\n'),
        }
        md
    }

    /// Draws accuracy against latency (when measured) and against multiply-adds into `dir`.
    pub(crate) fn plot(&self, dir: &Path, labels: &PlotLabels) -> anyhow::Result<()> {
        if self.has_latency() {
            let axis = Axis {
                cost: &|p: &CostPoint| p.latency_ms,
                name: "latency",
                description: "latency, ms (median of the timed runs; log scale)",
                label: &|v: f64| format!("{v:.3}"),
            };
            figure(
                dir,
                "accuracy_vs_latency",
                (1000, 560),
                |a| plot_front(a, self, &axis, &self.latency_front, labels),
                |a| plot_front(a, self, &axis, &self.latency_front, labels),
            )?;
        }
        let axis = Axis {
            cost: &|p: &CostPoint| Some(p.mult_adds.max(1) as f64),
            name: "multiply-adds",
            description: "multiply-adds per input (log scale)",
            label: &human_count,
        };
        figure(
            dir,
            "accuracy_vs_mult_adds",
            (1000, 560),
            |a| plot_front(a, self, &axis, &self.mult_adds_front, labels),
            |a| plot_front(a, self, &axis, &self.mult_adds_front, labels),
        )?;
        Ok(())
    }
}

/// The cost a trade-off plot puts on its x axis.
struct Axis<'a> {
    cost: &'a dyn Fn(&CostPoint) -> Option<f64>,
    /// In the title: "latency", "multiply-adds".
    name: &'a str,
    description: &'a str,
    label: &'a dyn Fn(f64) -> String,
}

/// Every child as a dot (one colour per run), the Pareto-optimal ones ringed and joined by a line.
fn plot_front<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    pareto: &Pareto,
    axis: &Axis<'_>,
    front: &[usize],
    labels: &PlotLabels,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let cost = axis.cost;
    let points: Vec<(f64, &CostPoint)> = pareto
        .points
        .iter()
        .filter_map(|p| cost(p).filter(|c| *c > 0.0).map(|c| (c, p)))
        .collect();
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (c, _)| {
            (lo.min(*c), hi.max(*c))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo / 1.3, hi * 1.3)
    } else {
        (1e-3, 1.0)
    };
    let title = format!(
        "{} vs {} (ringed: Pareto-optimal)",
        crate::plots::capitalised(labels.score),
        axis.name
    );
    let area = titled(&root, &title, labels).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(
            (lo..hi).log_scale(),
            value_range(points.iter().map(|(_, p)| p.accuracy)).0..1.0,
        )?;
    chart
        .configure_mesh()
        .x_desc(axis.description)
        .y_desc(labels.score)
        .x_label_formatter(&|v| (axis.label)(*v))
        .draw()?;
    let mut runs: Vec<i64> = points.iter().map(|(_, p)| p.run).collect();
    runs.sort();
    runs.dedup();
    for (k, &run) in runs.iter().enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        let series = chart.draw_series(
            points
                .iter()
                .filter(|(_, p)| p.run == run)
                .map(|(c, p)| Circle::new((*c, p.accuracy), 3, colour.filled())),
        )?;
        if runs.len() > 1 {
            series
                .label(format!("run {run}"))
                .legend(move |(x, y)| Circle::new((x, y), 4, colour.filled()));
        }
    }
    let line: Vec<(f64, f64)> = front
        .iter()
        .filter_map(|&i| cost(&pareto.points[i]).map(|c| (c, pareto.points[i].accuracy)))
        .collect();
    chart.draw_series(LineSeries::new(line.iter().copied(), BLACK.stroke_width(1)))?;
    chart.draw_series(line.iter().map(|&(c, a)| Circle::new((c, a), 6, BLACK.stroke_width(2))))?;
    if runs.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Writes the trade-off plots of `runs` (one colour per run) into `dir` and returns the section.
pub fn write_pareto(
    store: &Store,
    runs: &[i64],
    dir: &Path,
    subtitle: &str,
    score: &'static str,
) -> anyhow::Result<Pareto> {
    let pareto = Pareto::of(cost_points(store, runs)?);
    std::fs::create_dir_all(dir)?;
    if !pareto.points.is_empty() {
        pareto.plot(
            dir,
            &PlotLabels {
                subtitle: subtitle.to_string(),
                score,
            },
        )?;
    }
    Ok(pareto)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(run: i64, accuracy: f64, madds: u64, latency: Option<f64>) -> CostPoint {
        CostPoint {
            run,
            evaluation_id: 0,
            architecture: format!("conv({madds},1)"),
            accuracy,
            params: madds,
            mult_adds: madds,
            activation_bytes: 4096,
            latency_ms: latency,
            latency_p90_ms: latency.map(|l| l * 1.1),
            latency_device: latency.map(|_| "cpu".to_string()),
        }
    }

    /// A hand-made run: the front against latency and against multiply-adds differ where the
    /// proxy misranks a child, and the rank correlation says how far.
    #[test]
    fn the_pareto_set_of_a_hand_made_run() {
        let pareto = Pareto::of(vec![
            point(1, 0.90, 100, Some(1.0)), // 0: on both fronts
            point(1, 0.95, 400, Some(3.0)), // 1: on both
            point(1, 0.93, 200, Some(4.0)), // 2: cheap in multiply-adds but slow: only that front
            point(1, 0.80, 300, Some(2.0)), // 3: dominated on both
            point(1, 0.99, 800, None),      // 4: no latency: only the multiply-adds front
        ]);
        assert_eq!(pareto.latency_front, vec![0, 1]);
        assert_eq!(pareto.mult_adds_front, vec![0, 2, 1, 4]);
        // madds ranks 1,4,2,3 against latency ranks 1,3,4,2: ρ = 1 − 6·(0+1+4+1)/(4·15) = 0.4.
        assert!((pareto.mult_adds_latency_spearman.unwrap() - 0.4).abs() < 1e-12);
        let md = pareto.to_markdown("accuracy");
        assert!(md.contains("Pareto-optimal children against latency (2 of 5"), "{md}");
        assert!(
            md.contains("| 1 | 0.9500 | 3.0000 / 3.3000 (cpu) | 400 | 400 | 4 kB | `conv(400,1)` |"),
            "{md}"
        );
        assert!(md.contains("Spearman ρ = 0.400 over 4 children"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        pareto
            .plot(
                dir.path(),
                &PlotLabels {
                    subtitle: "test".into(),
                    score: "accuracy",
                },
            )
            .unwrap();
        assert!(dir.path().join("accuracy_vs_latency.png").is_file());
        assert!(dir.path().join("accuracy_vs_mult_adds.svg").is_file());
    }
}
