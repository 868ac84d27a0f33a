//! Summary statistics shared by `eval`, `report` and `compare`, and the tests that compare a NAS
//! agent against random search honestly: a bootstrap interval for a difference of means
//! ([`bootstrap_mean_difference_ci`]) and the Mann–Whitney U test ([`mann_whitney_u`]). Pure
//! functions of their inputs (the bootstrap's randomness comes from its seed); the normal and
//! Student t distributions come from `statrs`.

mod bootstrap;
mod rank;

pub use bootstrap::{bootstrap_mean_difference_ci, clustered_bootstrap_mean_difference_ci, Interval};
pub use rank::{mann_whitney_u, spearman, MannWhitney};

/// Mean and population standard deviation (numpy's default, as in the seed's tables); NaN for
/// no values.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The `q` quantile (0 ≤ q ≤ 1) of ascending `sorted` values, interpolating linearly between
/// order statistics (numpy's default, "type 7"); NaN for no values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_std_by_hand() {
        // Mean 2.5; squared deviations 2.25, 0.25, 0.25, 2.25 sum to 5; 5 / 4 = 1.25.
        assert_eq!(mean_std(&[1.0, 2.0, 3.0, 4.0]), (2.5, 1.25f64.sqrt()));
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        // Positions 0..=4; q = 0.3 sits at 1.2, between 20 and 30.
        let sorted = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(quantile_sorted(&sorted, 0.0), 10.0);
        assert_eq!(quantile_sorted(&sorted, 1.0), 50.0);
        assert_eq!(quantile_sorted(&sorted, 0.5), 30.0);
        assert!((quantile_sorted(&sorted, 0.3) - 22.0).abs() < 1e-12);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }
}
