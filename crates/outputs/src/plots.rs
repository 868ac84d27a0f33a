//! The report's plots, drawn by plotters as PNG and SVG: rewards per episode, accuracy against
//! parameters, the agent's metrics, learning curves and the architecture diagram.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use nas_core::arch::{Architecture, Layer};
use nas_core::record::EpisodeRecord;

pub(crate) fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
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

pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

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
pub(crate) struct PlotLabels {
    /// "run 3 · agent ppo 0.1.0 · reward accuracy 0.1.0 · dataset cifar5 · evaluator train".
    pub(crate) subtitle: String,
    /// What the evaluator measures: "accuracy", or "score" for the synthetic evaluator.
    pub(crate) score: &'static str,
}

/// Fills the area, writes the title and subtitle at the top and returns the area below them.
pub(crate) fn titled<'a, DB: DrawingBackend>(
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
pub(crate) fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
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
pub(crate) fn human_count(value: f64) -> String {
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let text = format!("{scaled:.1}");
    format!("{}{suffix}", text.trim_end_matches(".0"))
}

pub(crate) fn plot_rewards<DB: DrawingBackend>(
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

pub(crate) fn plot_accuracy_vs_params<DB: DrawingBackend>(
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

pub(crate) fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

pub(crate) fn plot_metric<DB: DrawingBackend>(
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

/// Learning curves: completed children in blue, stopped ones in vermillion ending in a cross.
pub(crate) fn plot_curves<DB: DrawingBackend>(
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
pub(crate) fn box_lines(layer: Option<&Layer>, row: &nas_core::summary::SummaryRow) -> [String; 3] {
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

pub(crate) fn draw_architecture<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    arch: &Architecture,
    summary: &nas_core::summary::Summary,
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
pub(crate) fn figure(
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
    fn moving_average_warms_up() {
        assert_eq!(moving_average(&[1.0, 3.0, 5.0, 7.0], 2), vec![1.0, 2.0, 4.0, 6.0]);
    }
}
