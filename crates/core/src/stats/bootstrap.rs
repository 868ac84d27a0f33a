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
    let mut differences: Vec<f64> = (0..resamples)
        .map(|_| resampled_mean(a, &mut rng) - resampled_mean(b, &mut rng))
        .collect();
    differences.sort_by(f64::total_cmp);
    let confidence = confidence.clamp(0.0, 1.0);
    Interval {
        low: quantile_sorted(&differences, (1.0 - confidence) / 2.0),
        high: quantile_sorted(&differences, (1.0 + confidence) / 2.0),
        estimate: mean(a) - mean(b),
    }
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
