//! Summary statistics shared by `eval`, `report` and `compare`; depends on nothing else.

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
}
