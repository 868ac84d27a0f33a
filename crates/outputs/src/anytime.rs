//! What NAS papers compare agents by: the best accuracy found so far (and the mean of the best
//! five) against children trained, one line per agent, the mean over seeds with a 95% band; a
//! table per agent; and each agent against `random` with a bootstrap 95% interval and a
//! Mann–Whitney test, so a reader sees whether a difference is real.

use std::collections::BTreeMap;
use std::path::Path;

use nas_core::anytime::{anytime_curve, mean_band, Band};
use nas_core::stats::{clustered_bootstrap_mean_difference_ci, mann_whitney_u, mean_std, quantile_sorted};
use nas_store::Store;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plots::{figure, DrawResult};

/// Bootstrap resamples behind every interval.
const RESAMPLES: usize = 10_000;

/// The runs of one agent (and reward shaper): its seeds.
#[derive(Debug, Clone)]
pub struct AgentRuns {
    /// "ppo", or "ppo + size_penalty" when the reward is not `accuracy`.
    pub label: String,
    pub agent: String,
    pub runs: Vec<i64>,
    /// Best accuracy found after k children, per run.
    pub best_so_far: Vec<Vec<f64>>,
    pub top5_so_far: Vec<Vec<f64>>,
    /// The same against distinct architectures trained, per run.
    pub best_by_distinct: Vec<Vec<f64>>,
    pub top5_by_distinct: Vec<Vec<f64>>,
    /// The frozen policy's `eval` accuracies, one vector per run (runs without samples left
    /// out), and the samples' parameters, all runs together.
    pub eval_by_run: Vec<Vec<f64>>,
    pub eval_params: Vec<f64>,
    /// Parameters of each run's last 100 episodes, all runs together.
    pub last_params: Vec<f64>,
}

impl AgentRuns {
    /// The best accuracy each run found (the last point of its best-so-far curve).
    pub fn best_found(&self) -> Vec<f64> {
        self.best_so_far.iter().filter_map(|c| c.last().copied()).collect()
    }
}

/// The anytime comparison of some runs.
#[derive(Debug, Clone)]
pub struct Anytime {
    pub agents: Vec<AgentRuns>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, 0.5)
}

impl Anytime {
    /// Groups `runs` by agent and reward shaper and reads their curves and eval samples.
    pub fn of(store: &Store, runs: &[i64]) -> anyhow::Result<Anytime> {
        let mut groups: BTreeMap<String, AgentRuns> = BTreeMap::new();
        for &run in runs {
            let record = store.run(run)?;
            let label = if record.reward.name == "accuracy" {
                record.agent.name.clone()
            } else {
                format!("{} + {}", record.agent.name, record.reward.name)
            };
            let episodes = store.episodes(run)?;
            let curve = anytime_curve(&episodes);
            let group = groups.entry(label.clone()).or_insert_with(|| AgentRuns {
                label,
                agent: record.agent.name.clone(),
                runs: Vec::new(),
                best_so_far: Vec::new(),
                top5_so_far: Vec::new(),
                best_by_distinct: Vec::new(),
                top5_by_distinct: Vec::new(),
                eval_by_run: Vec::new(),
                eval_params: Vec::new(),
                last_params: Vec::new(),
            });
            group.runs.push(run);
            group.best_so_far.push(curve.best_so_far);
            group.top5_so_far.push(curve.top5_mean_so_far);
            group.best_by_distinct.push(curve.best_by_distinct);
            group.top5_by_distinct.push(curve.top5_mean_by_distinct);
            let samples = store.eval_samples(run)?;
            if !samples.is_empty() {
                group.eval_by_run.push(samples.iter().map(|s| s.accuracy).collect());
                group.eval_params.extend(samples.iter().map(|s| s.params as f64));
            }
            let tail = episodes.len().saturating_sub(100);
            group
                .last_params
                .extend(episodes[tail..].iter().map(|e| e.params as f64));
        }
        Ok(Anytime {
            agents: groups.into_values().collect(),
        })
    }

    /// The table per agent — the frozen policy's samples as the seed reported them (accuracy and
    /// parameters, mean ± std) beside what the search found and the distinct architectures it
    /// trained — then each agent against `random` (with the same reward when there is such a
    /// run): the difference in frozen-policy accuracy with a bootstrap 95% interval and a
    /// Mann–Whitney p, or, without eval samples, in the best accuracy found per seed.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| agent | runs | children (shortest run) | distinct architectures (mean per run) | best found (mean ± std over runs) | eval accuracy (mean ± std, n) | eval params (mean ± std) | median params, last 100 episodes |\n|---|---|---|---|---|---|---|---|\n",
        );
        for a in &self.agents {
            let (best, best_std) = mean_std(&a.best_found());
            let eval_accuracies = a.eval_by_run.concat();
            let (eval, eval_std) = mean_std(&eval_accuracies);
            let (params, params_std) = mean_std(&a.eval_params);
            // Each run's distinct-architecture curve has one point per architecture it trained.
            let distinct =
                a.best_by_distinct.iter().map(Vec::len).sum::<usize>() as f64 / a.best_by_distinct.len().max(1) as f64;
            let shortest = a.best_so_far.iter().map(Vec::len).min().unwrap_or(0);
            out.push_str(&format!(
                "| {} | {} | {shortest} | {distinct:.0} | {best:.4} ± {best_std:.4} | {} | {} | {:.0} |\n",
                a.label,
                a.runs.len(),
                if eval_accuracies.is_empty() {
                    "— (run `nas-host eval`)".to_string()
                } else {
                    format!("{eval:.4} ± {eval_std:.4} (n={})", eval_accuracies.len())
                },
                if a.eval_params.is_empty() {
                    "—".to_string()
                } else {
                    format!("{params:.0} ± {params_std:.0}")
                },
                median(&a.last_params)
            ));
        }
        let Some(random) = self.agents.iter().find(|a| a.agent == "random") else {
            return out;
        };
        // Samples of one run share its policy: the interval resamples whole runs and the test
        // ranks one value per run, so neither counts a run's 50 samples as 50 independent draws.
        out.push_str("\n| agent − random | difference | 95% interval (bootstrap over runs) | Mann–Whitney p (run means; exact without ties up to 8 runs) | over |\n|---|---|---|---|---|\n");
        for a in self.agents.iter().filter(|a| a.agent != "random") {
            let (mine, theirs, over) = if !a.eval_by_run.is_empty() && !random.eval_by_run.is_empty() {
                (a.eval_by_run.clone(), random.eval_by_run.clone(), "eval samples")
            } else {
                // One value per run: each run a cluster of one.
                let finals = |g: &AgentRuns| g.best_found().into_iter().map(|v| vec![v]).collect::<Vec<_>>();
                (finals(a), finals(random), "best found per run")
            };
            let ci = clustered_bootstrap_mean_difference_ci(&mine, &theirs, RESAMPLES, 0.95, 0);
            let run_means = |runs: &[Vec<f64>]| -> Vec<f64> {
                runs.iter()
                    .map(|run| run.iter().sum::<f64>() / run.len() as f64)
                    .collect()
            };
            let test = mann_whitney_u(&run_means(&mine), &run_means(&theirs));
            let values = |runs: &[Vec<f64>]| runs.iter().map(Vec::len).sum::<usize>();
            let verdict = if ci.low > 0.0 {
                "better"
            } else if ci.high < 0.0 {
                "worse"
            } else {
                "no clear difference"
            };
            out.push_str(&format!(
                "| {} | {:+.4} ({verdict}) | [{:+.4}, {:+.4}] | {:.3} | {over} ({} runs, n = {} vs {} runs, n = {}) |\n",
                a.label,
                ci.estimate,
                ci.low,
                ci.high,
                test.p(),
                mine.len(),
                values(&mine),
                theirs.len(),
                values(&theirs)
            ));
        }
        out
    }

    /// The mean best-so-far (and top-5 mean) of each agent with its 95% band, against episodes.
    pub fn bands(&self) -> Vec<(String, Vec<Band>, Vec<Band>)> {
        self.bands_of(|a| (&a.best_so_far, &a.top5_so_far))
    }

    /// The same against distinct architectures trained (each agent's bands end where its run
    /// with the fewest ends).
    pub fn bands_by_distinct(&self) -> Vec<(String, Vec<Band>, Vec<Band>)> {
        self.bands_of(|a| (&a.best_by_distinct, &a.top5_by_distinct))
    }

    fn bands_of(
        &self,
        curves: impl Fn(&AgentRuns) -> (&Vec<Vec<f64>>, &Vec<Vec<f64>>),
    ) -> Vec<(String, Vec<Band>, Vec<Band>)> {
        self.agents
            .iter()
            .map(|a| {
                let (best, top5) = curves(a);
                (a.label.clone(), mean_band(best, 0.95), mean_band(top5, 0.95))
            })
            .collect()
    }

    /// Draws `anytime.png`/`.svg` (against episodes, cache hits included) and
    /// `anytime-distinct.png`/`.svg` (against distinct architectures trained) into `dir`.
    pub fn plot(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let figures = [
            (
                "anytime",
                self.bands(),
                "children (episodes, cache hits included; log scale)",
            ),
            (
                "anytime-distinct",
                self.bands_by_distinct(),
                "distinct architectures trained (log scale)",
            ),
        ];
        for (name, bands, x) in &figures {
            figure(dir, name, (1000, 600), |a| draw(a, bands, x), |a| draw(a, bands, x))?;
        }
        Ok(())
    }
}

/// The accuracies the bands span (lows to highs, means included), padded by a twentieth of the span
/// on each side and kept within 0–1; 0–1 when there is nothing finite to draw.
fn band_range(bands: &[(String, Vec<Band>, Vec<Band>)]) -> (f64, f64) {
    let values = bands
        .iter()
        .flat_map(|b| b.1.iter().chain(&b.2))
        .flat_map(|x| [x.low, x.mean, x.high])
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) / 20.0).max(0.005);
    ((lo - pad).max(0.0), (hi + pad).min(1.0))
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    bands: &[(String, Vec<Band>, Vec<Band>)],
    x_desc: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let n = bands.iter().map(|b| b.1.len()).max().unwrap_or(1).max(1) as i64;
    // The curves of a search sit in a narrow band (0.70–0.75 on CIFAR-5), so the axis spans what is
    // drawn rather than 0–1; children on a log axis, as budgets are compared in NAS papers, so the
    // first hundred children — where agents part from random or not — are not squeezed into a
    // sliver of a 2,700-child axis.
    let (lo, hi) = band_range(bands);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Best accuracy found so far (solid) and mean of the best 5 (dashed), mean over runs with 95% band",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d((1..n).log_scale(), lo..hi)?;
    chart.configure_mesh().x_desc(x_desc).y_desc("accuracy").draw()?;
    for (i, (label, best, top5)) in bands.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = |b: &[Band], f: fn(&Band) -> f64| -> Vec<(i64, f64)> {
            b.iter().enumerate().map(|(k, x)| (k as i64 + 1, f(x))).collect()
        };
        let mut area = points(best, |b| b.high);
        area.extend(points(best, |b| b.low).into_iter().rev());
        chart.draw_series(std::iter::once(Polygon::new(area, colour.mix(0.15).filled())))?;
        chart
            .draw_series(LineSeries::new(points(best, |b| b.mean), colour.stroke_width(2)))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart.draw_series(DashedLineSeries::new(
            points(top5, |b| b.mean),
            6,
            4,
            colour.stroke_width(1),
        ))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_spans_the_bands_not_zero_to_one() {
        let band = |low, mean, high| Band { low, mean, high };
        let bands = vec![(
            "ppo".to_string(),
            vec![band(0.70, 0.72, 0.74), band(0.71, 0.73, 0.76)],
            vec![band(0.69, 0.70, 0.71)],
        )];
        // Span 0.69–0.76, padded by 0.0035 → clamped up to the 0.005 minimum.
        let (lo, hi) = band_range(&bands);
        assert!((lo - 0.685).abs() < 1e-12 && (hi - 0.765).abs() < 1e-12, "{lo} {hi}");
        let nan = vec![("x".to_string(), vec![band(f64::NAN, f64::NAN, f64::NAN)], vec![])];
        assert_eq!(band_range(&nan), (0.0, 1.0));
        let edge = vec![("x".to_string(), vec![band(0.0, 0.5, 1.0)], vec![])];
        assert_eq!(band_range(&edge), (0.0, 1.0));
    }

    #[test]
    fn the_median_by_hand() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    fn agent(name: &str, eval_accuracies: Vec<f64>, eval_params: Vec<f64>) -> AgentRuns {
        AgentRuns {
            label: name.into(),
            agent: name.into(),
            runs: vec![1, 2],
            best_so_far: vec![vec![0.5, 0.7], vec![0.6, 0.9]],
            top5_so_far: vec![vec![0.5, 0.6], vec![0.6, 0.75]],
            // No repeats: two distinct architectures in each run's two episodes.
            best_by_distinct: vec![vec![0.5, 0.7], vec![0.6, 0.9]],
            top5_by_distinct: vec![vec![0.5, 0.6], vec![0.6, 0.75]],
            eval_by_run: if eval_accuracies.is_empty() {
                vec![]
            } else {
                vec![eval_accuracies]
            },
            eval_params,
            last_params: vec![100.0, 300.0, 200.0],
        }
    }

    #[test]
    fn the_table_gives_the_frozen_policys_accuracy_and_parameters_as_the_seed_did() {
        let ppo = agent("ppo", vec![0.6, 0.8], vec![1000.0, 3000.0]);
        let random = agent("random", vec![], vec![]);
        let md = Anytime {
            agents: vec![ppo, random],
        }
        .to_markdown();
        // Best found: finals 0.7 and 0.9; eval: mean 0.7, population std 0.1; params 2000 ± 1000.
        assert!(
            md.contains("| ppo | 2 | 2 | 2 | 0.8000 ± 0.1000 | 0.7000 ± 0.1000 (n=2) | 2000 ± 1000 | 200 |"),
            "{md}"
        );
        assert!(
            md.contains("| random | 2 | 2 | 2 | 0.8000 ± 0.1000 | — (run `nas-host eval`) | — | 200 |"),
            "{md}"
        );
        // Random has no eval samples, so the agents are compared by the best found per run
        // ([0.7, 0.9] each): resampling the two runs, each mean is 0.7, 0.8 or 0.9 (¼, ½, ¼),
        // so the difference reaches ±0.2 with probability 1/16 > 2.5% on each side.
        assert!(
            md.contains("| ppo | +0.0000 (no clear difference) | [-0.2000, +0.2000] | 1.000 | best found per run (2 runs, n = 2 vs 2 runs, n = 2) |"),
            "{md}"
        );
    }
}
