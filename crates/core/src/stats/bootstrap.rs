//! The percentile bootstrap interval for a difference of means.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::quantile_sorted;

/// A confidence interval around a point estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// The statistic on the samples themselves (not a bootstrap average).
    pub estimate: f64,
}

/// Percentile bootstrap confidence interval of mean(`a`) − mean(`b`).
///
/// Each of `resamples` rounds draws `a.len()` values from `a` and `b.len()` values from `b`, with
/// replacement and independently (the two samples are unpaired: different seeds of an agent and
/// of random search), and records the difference of the two resampled means. The interval is
/// the (1 − `confidence`)/2 and (1 + `confidence`)/2 quantiles of those differences (linear
/// interpolation between order statistics); `estimate` is mean(`a`) − mean(`b`) on the samples.
///
/// The randomness is a ChaCha8 stream seeded with `seed`: the same inputs and seed give the same
/// interval on every machine. The percentile method assumes nothing about the shape of either
/// distribution, but with very small samples (a handful of seeds) it is too narrow, as every
/// bootstrap is: it cannot see variation the samples do not show.
///
/// All three fields are NaN when either sample is empty or `resamples` is 0. `confidence` is
/// clamped to [0, 1].
pub fn bootstrap_mean_difference_ci(a: &[f64], b: &[f64], resamples: usize, confidence: f64, seed: u64) -> Interval {
    if a.is_empty() || b.is_empty() || resamples == 0 {
        return Interval {
            low: f64::NAN,
            high: f64::NAN,
            estimate: f64::NAN,
        };
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let resampled_mean = |values: &[f64], rng: &mut ChaCha8Rng| {
        (0..values.len())
            .map(|_| values[rng.random_range(0..values.len())])
            .sum::<f64>()
            / values.len() as f64
    };
    let differences: Vec<f64> = (0..resamples)
        .map(|_| resampled_mean(a, &mut rng) - resampled_mean(b, &mut rng))
        .collect();
    percentile_interval(differences, confidence, mean(a) - mean(b))
}

/// The (1 − `confidence`)/2 and (1 + `confidence`)/2 quantiles of the bootstrap `differences`
/// around `estimate`.
fn percentile_interval(mut differences: Vec<f64>, confidence: f64, estimate: f64) -> Interval {
    differences.sort_by(f64::total_cmp);
    let confidence = confidence.clamp(0.0, 1.0);
    Interval {
        low: quantile_sorted(&differences, (1.0 - confidence) / 2.0),
        high: quantile_sorted(&differences, (1.0 + confidence) / 2.0),
        estimate,
    }
}

/// Percentile bootstrap interval of the difference of pooled means when the values come in runs:
/// `a` and `b` hold one vector per run (per seed), e.g. the 50 frozen-policy samples of each.
///
/// Samples of one run share that run's policy, so they are not independent draws: resampling
/// them one by one (as [`bootstrap_mean_difference_ci`] does) shows only the spread within runs
/// and gives intervals far too narrow when runs differ. Here each round draws `a.len()` runs from
/// `a` and `b.len()` from `b`, with replacement (the cluster bootstrap), and takes the mean of all
/// values of the drawn runs; the interval is the quantiles of the differences, `estimate` the
/// difference of the pooled means. With few runs (a handful of seeds) it is still too narrow, as
/// every bootstrap is. Seeded with `seed` (ChaCha8), like the plain one.
///
/// NaN in all three fields when either side has no values or `resamples` is 0; empty runs count
/// as runs without values.
pub fn clustered_bootstrap_mean_difference_ci(
    a: &[Vec<f64>],
    b: &[Vec<f64>],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Interval {
    fn pooled_mean<'a>(runs: impl IntoIterator<Item = &'a Vec<f64>>) -> f64 {
        let (sum, count) = runs.into_iter().fold((0.0, 0usize), |(sum, count), run| {
            (sum + run.iter().sum::<f64>(), count + run.len())
        });
        sum / count as f64
    }
    let (estimate_a, estimate_b) = (pooled_mean(a), pooled_mean(b));
    if !estimate_a.is_finite() || !estimate_b.is_finite() || resamples == 0 {
        return Interval {
            low: f64::NAN,
            high: f64::NAN,
            estimate: f64::NAN,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let resampled_mean = |runs: &[Vec<f64>], rng: &mut ChaCha8Rng| loop {
        // A draw of only empty runs has no mean; draw again (some run has values).
        let drawn: Vec<&Vec<f64>> = (0..runs.len())
            .map(|_| &runs[rng.random_range(0..runs.len())])
            .collect();
        let mean = pooled_mean(drawn);
        if mean.is_finite() {
            break mean;
        }
    };
    let differences: Vec<f64> = (0..resamples)
        .map(|_| resampled_mean(a, &mut rng) - resampled_mean(b, &mut rng))
        .collect();
    percentile_interval(differences, confidence, estimate_a - estimate_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn bootstrap_covers_known_normal_difference_with_textbook_width() {
        // a ~ N(0.5, 1²), b ~ N(0.2, 2²), 1000 values each: the true difference is 0.3 and the
        // normal-theory 95% interval is 2 · 1.96 · sqrt(1/1000 + 4/1000) ≈ 0.2772 wide.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let a: Vec<f64> = Normal::new(0.5, 1.0)
            .unwrap()
            .sample_iter(&mut rng)
            .take(1000)
            .collect();
        let b: Vec<f64> = Normal::new(0.2, 2.0)
            .unwrap()
            .sample_iter(&mut rng)
            .take(1000)
            .collect();
        let ci = bootstrap_mean_difference_ci(&a, &b, 2000, 0.95, 11);
        assert!(ci.low < 0.3 && 0.3 < ci.high, "{ci:?}");
        assert!(ci.low < ci.estimate && ci.estimate < ci.high, "{ci:?}");
        let expected = 2.0 * 1.96 * (1.0f64 / 1000.0 + 4.0 / 1000.0).sqrt();
        let width = ci.high - ci.low;
        assert!(
            (width / expected - 1.0).abs() < 0.2,
            "width {width}, expected {expected}"
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert_eq!(ci.estimate, mean(&a) - mean(&b));
    }

    #[test]
    fn clustered_bootstrap_sees_the_spread_between_runs() {
        // Agent a: two runs, one all 1s and one all 3s (100 samples each); b: two runs of 2s.
        // Pooled means are equal (estimate 0). Resampling runs, a's mean is 1, 2 or 3 with
        // probability 1/4, 1/2, 1/4 and b's is always 2, so the 95% interval is [−1, +1];
        // resampling the 200 samples one by one would give about ±1.96 · 1/√200 ≈ ±0.14.
        let a = vec![vec![1.0; 100], vec![3.0; 100]];
        let b = vec![vec![2.0; 100], vec![2.0; 100]];
        let ci = clustered_bootstrap_mean_difference_ci(&a, &b, 4000, 0.95, 5);
        assert_eq!((ci.low, ci.high, ci.estimate), (-1.0, 1.0, 0.0));
        let flat = |runs: &[Vec<f64>]| runs.concat();
        let plain = bootstrap_mean_difference_ci(&flat(&a), &flat(&b), 4000, 0.95, 5);
        assert!(plain.high - plain.low < 0.4, "{plain:?}");
        // Seeded: the same inputs give the same interval.
        let one = clustered_bootstrap_mean_difference_ci(&a, &[vec![0.5, 1.5], vec![4.0]], 300, 0.9, 2);
        assert_eq!(
            one,
            clustered_bootstrap_mean_difference_ci(&a, &[vec![0.5, 1.5], vec![4.0]], 300, 0.9, 2)
        );
        // Pooled, not run-averaged: b's mean is 6/3 = 2, so the estimate is 2 − 2 = 0.
        assert_eq!(one.estimate, 0.0);
        assert!(clustered_bootstrap_mean_difference_ci(&[vec![]], &b, 10, 0.95, 0)
            .low
            .is_nan());
        assert!(clustered_bootstrap_mean_difference_ci(&a, &b, 0, 0.95, 0)
            .estimate
            .is_nan());
    }

    #[test]
    fn bootstrap_of_identical_constants_is_zero() {
        // 0.75 is exact in binary, so every resampled mean is exactly 0.75.
        let ci = bootstrap_mean_difference_ci(&[0.75; 5], &[0.75; 8], 500, 0.95, 1);
        assert_eq!((ci.low, ci.high, ci.estimate), (0.0, 0.0, 0.0));
        // 0.7 is not: five and eight of them sum with different rounding, off by an ulp or so.
        let ci = bootstrap_mean_difference_ci(&[0.7; 5], &[0.7; 8], 500, 0.95, 1);
        for v in [ci.low, ci.high, ci.estimate] {
            assert!(v.abs() < 1e-15, "{ci:?}");
        }
    }

    #[test]
    fn bootstrap_is_seeded_and_stays_within_resample_range() {
        // Resampled means of a = [1, 2] lie in {1, 1.5, 2}; b = [0] is always 0.
        let a = [1.0, 2.0];
        let ci = bootstrap_mean_difference_ci(&a, &[0.0], 200, 0.9, 3);
        assert!(1.0 <= ci.low && ci.low <= ci.high && ci.high <= 2.0, "{ci:?}");
        assert_eq!(ci.estimate, 1.5);
        assert_eq!(ci, bootstrap_mean_difference_ci(&a, &[0.0], 200, 0.9, 3));
    }

    #[test]
    fn bootstrap_of_nothing_is_nan() {
        assert!(bootstrap_mean_difference_ci(&[], &[1.0], 10, 0.95, 0).low.is_nan());
        assert!(bootstrap_mean_difference_ci(&[1.0], &[1.0], 0, 0.95, 0)
            .estimate
            .is_nan());
    }
}
