//! Anytime curves, the plot NAS papers compare searches with: the best accuracy found (and the
//! mean of the best few) after each child trained, and their mean across seeds with a band.

use std::collections::HashMap;

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::record::EpisodeRecord;

/// How many architectures [`AnytimeCurve::top5_mean_so_far`] averages.
pub const TOP_K: usize = 5;

/// A run's anytime curves: entry k is the state after k + 1 children trained.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnytimeCurve {
    /// The best accuracy of the first k + 1 episodes.
    pub best_so_far: Vec<f64>,
    /// The mean accuracy of the best [`TOP_K`] distinct architectures of the first k + 1
    /// episodes (of all of them while fewer have been seen).
    pub top5_mean_so_far: Vec<f64>,
    /// The same two curves against distinct architectures instead of episodes: entry k is the
    /// state when the (k + 1)-th new architecture had been trained. Repeats are cache hits that
    /// cost no training, so this is the comparison at equal training compute; an agent that
    /// converges spends fewer trainings for its episodes than random sampling does.
    pub best_by_distinct: Vec<f64>,
    pub top5_mean_by_distinct: Vec<f64>,
}

/// The anytime curves of one run's `episodes`.
///
/// Episodes are taken in index order (the order children were designed and trained; they are
/// sorted by `index` here, so the store's order need not be). Every episode counts as one child
/// trained, cache hits included: compute-matched comparisons count evaluations the search asked
/// for, and an agent that keeps proposing what it has already seen spends its budget doing so.
/// Each episode counts with its recorded accuracy: 0 for a failed child, the last measured for
/// one an assessor stopped.
///
/// The top-5 mean is over distinct architectures, each represented by its best accuracy so far
/// (as [`crate::record::top_distinct`] lists them): a repeated architecture, which a converging
/// agent proposes again and again, would otherwise fill the top five with one network.
///
/// No episodes give empty curves.
pub fn anytime_curve(episodes: &[EpisodeRecord]) -> AnytimeCurve {
    let mut ordered: Vec<&EpisodeRecord> = episodes.iter().collect();
    ordered.sort_by_key(|e| e.index);
    let mut best_of: HashMap<&str, f64> = HashMap::new();
    // The best TOP_K distinct architectures so far with their best accuracies, best first.
    let mut top: Vec<(&str, f64)> = Vec::with_capacity(TOP_K + 1);
    let mut curve = AnytimeCurve {
        best_so_far: Vec::with_capacity(ordered.len()),
        top5_mean_so_far: Vec::with_capacity(ordered.len()),
        ..AnytimeCurve::default()
    };
    for e in ordered {
        let architecture = e.architecture.as_str();
        let new = !best_of.contains_key(architecture);
        let improved = best_of.get(architecture).is_none_or(|&best| e.accuracy > best);
        if improved {
            best_of.insert(architecture, e.accuracy);
            // Bests only grow, so an architecture outside the top enters it only by beating the
            // last one there.
            match top.iter_mut().find(|(a, _)| *a == architecture) {
                Some(entry) => entry.1 = e.accuracy,
                None => top.push((architecture, e.accuracy)),
            }
            top.sort_by(|x, y| y.1.total_cmp(&x.1));
            top.truncate(TOP_K);
        }
        let (best, top5_mean) = (top[0].1, top.iter().map(|(_, a)| a).sum::<f64>() / top.len() as f64);
        curve.best_so_far.push(best);
        curve.top5_mean_so_far.push(top5_mean);
        if new {
            curve.best_by_distinct.push(best);
            curve.top5_mean_by_distinct.push(top5_mean);
        }
    }
    curve
}

/// The mean of several curves at one point, with a confidence band around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// The mean of `curves` (one per seed) at each point, with a two-sided Student t interval at
/// `confidence` (e.g. 0.95) for that mean: mean ± t(n − 1) · s/√n, with s the sample standard
/// deviation (n − 1 in the denominator) of the n curves' values there. The t interval, not the
/// normal one, because seeds are few (3–10): with 3 the 95% multiplier is 4.30, not 1.96. It
/// assumes the values across seeds are roughly normal at each point.
///
/// With one curve the band is the curve itself (low = mean = high). Curves of different lengths
/// are compared only where all have values: the result is as long as the shortest curve, and
/// empty for no curves.
pub fn mean_band(curves: &[Vec<f64>], confidence: f64) -> Vec<Band> {
    let length = curves.iter().map(Vec::len).min().unwrap_or(0);
    let n = curves.len();
    let multiplier = if n > 1 {
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("degrees of freedom are positive");
        t.inverse_cdf((1.0 + confidence.clamp(0.0, 1.0)) / 2.0)
    } else {
        0.0
    };
    (0..length)
        .map(|k| {
            let mean = curves.iter().map(|c| c[k]).sum::<f64>() / n as f64;
            if n == 1 {
                return Band {
                    mean,
                    low: mean,
                    high: mean,
                };
            }
            let variance = curves.iter().map(|c| (c[k] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let half = multiplier * (variance / n as f64).sqrt();
            Band {
                mean,
                low: mean - half,
                high: mean + half,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(index: usize, architecture: &str, accuracy: f64, cache_hit: bool) -> EpisodeRecord {
        EpisodeRecord {
            index,
            env: 0,
            architecture: architecture.into(),
            reward: accuracy,
            accuracy,
            params: 1,
            depth: 1,
            cache_hit,
            failure: None,
            metrics: Default::default(),
            reported: index,
            stopped: false,
        }
    }

    fn close(actual: &[f64], expected: &[f64]) -> bool {
        actual.len() == expected.len() && actual.iter().zip(expected).all(|(a, e)| (a - e).abs() < 1e-12)
    }

    #[test]
    fn anytime_curve_of_a_hand_made_run() {
        // Given out of index order, as a store might: sorted, the run is
        // 0: A 0.50, 1: B 0.70, 2: A 0.50 (cache hit), 3: C 0.60, 4: D 0.20, 5: E 0.90,
        // 6: F 0.10, 7: B 0.70 (cache hit).
        let episodes = [
            episode(5, "E", 0.9, false),
            episode(0, "A", 0.5, false),
            episode(1, "B", 0.7, false),
            episode(2, "A", 0.5, true),
            episode(3, "C", 0.6, false),
            episode(4, "D", 0.2, false),
            episode(6, "F", 0.1, false),
            episode(7, "B", 0.7, true),
        ];
        let curve = anytime_curve(&episodes);
        // Cache hits count as children trained: eight points.
        assert_eq!(curve.best_so_far, vec![0.5, 0.7, 0.7, 0.7, 0.7, 0.9, 0.9, 0.9]);
        // Distinct architectures: after episode 2 the top is {B 0.7, A 0.5}, not A twice.
        // After 4: {B, C, A, D} = 2.0 / 4; after 5: {E, B, C, A, D} = 2.9 / 5; F (0.1) stays
        // out, and B's repeat changes nothing.
        let expected = [0.5, 0.6, 0.6, 0.6, 0.5, 0.58, 0.58, 0.58];
        assert!(
            close(&curve.top5_mean_so_far, &expected),
            "{:?}",
            curve.top5_mean_so_far
        );
        // Against distinct architectures the two cache hits (episodes 2 and 7) add no point:
        // A, B, C, D, E, F.
        assert_eq!(curve.best_by_distinct, vec![0.5, 0.7, 0.7, 0.7, 0.9, 0.9]);
        assert!(
            close(&curve.top5_mean_by_distinct, &[0.5, 0.6, 0.6, 0.5, 0.58, 0.58]),
            "{:?}",
            curve.top5_mean_by_distinct
        );
    }

    #[test]
    fn anytime_top5_takes_an_architectures_improvement() {
        // A fails (0) then succeeds (0.8): its best replaces it, not a second entry.
        let episodes = [
            episode(0, "A", 0.0, false),
            episode(1, "B", 0.4, false),
            episode(2, "A", 0.8, false),
        ];
        let curve = anytime_curve(&episodes);
        assert_eq!(curve.best_so_far, vec![0.0, 0.4, 0.8]);
        assert!(close(&curve.top5_mean_so_far, &[0.0, 0.2, 0.6]));
        // A's second training is no new architecture: the distinct curve stops at B.
        assert_eq!(curve.best_by_distinct, vec![0.0, 0.4]);
        assert_eq!(anytime_curve(&[]), AnytimeCurve::default());
    }

    #[test]
    fn mean_band_t_interval_by_hand() {
        // Three seeds; the longest curve's last point is dropped. At point 0 the values are
        // 1, 2, 3: mean 2, s = 1, half-width t(0.975, 2 df) / √3 with t = 4.302652729749462
        // (scipy 1.17.1 t.ppf(0.975, 2)). At point 1 all are 5: a zero-width band.
        let curves = vec![vec![1.0, 5.0], vec![2.0, 5.0, 9.0], vec![3.0, 5.0]];
        let bands = mean_band(&curves, 0.95);
        assert_eq!(bands.len(), 2);
        let half = 4.302652729749462 / 3f64.sqrt();
        assert!((bands[0].mean - 2.0).abs() < 1e-12);
        assert!((bands[0].low - (2.0 - half)).abs() < 1e-9, "{:?}", bands[0]);
        assert!((bands[0].high - (2.0 + half)).abs() < 1e-9, "{:?}", bands[0]);
        assert_eq!(
            bands[1],
            Band {
                mean: 5.0,
                low: 5.0,
                high: 5.0
            }
        );
    }

    #[test]
    fn mean_band_of_one_curve_is_the_curve() {
        let bands = mean_band(&[vec![0.3, 0.6]], 0.95);
        let expected: Vec<Band> = [0.3, 0.6]
            .iter()
            .map(|&v| Band {
                mean: v,
                low: v,
                high: v,
            })
            .collect();
        assert_eq!(bands, expected);
        assert!(mean_band(&[], 0.95).is_empty());
    }

    #[test]
    fn mean_band_feeds_on_anytime_curves() {
        let run = |accuracies: &[f64]| {
            let episodes: Vec<EpisodeRecord> = accuracies
                .iter()
                .enumerate()
                .map(|(i, &a)| episode(i, &format!("X{i}"), a, false))
                .collect();
            anytime_curve(&episodes).best_so_far
        };
        // Best-so-far curves 0.2 0.6 0.6 and 0.4 0.4 0.8: means 0.3 0.5 0.7, t(0.975, 1 df)
        // = 12.706204736174694 times s/√2 = |x − y|/2.
        let bands = mean_band(&[run(&[0.2, 0.6, 0.1]), run(&[0.4, 0.3, 0.8])], 0.95);
        let t = 12.706204736174694;
        for (band, (mean, spread)) in bands.iter().zip([(0.3, 0.1), (0.5, 0.1), (0.7, 0.1)]) {
            assert!((band.mean - mean).abs() < 1e-12, "{band:?}");
            assert!((band.high - band.mean - t * spread).abs() < 1e-9, "{band:?}");
        }
    }
}
