//! The Mann–Whitney U (Wilcoxon rank-sum) test.

use statrs::distribution::{ContinuousCDF, Normal};

/// The Mann–Whitney U test of two independent samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: the number of pairs (a_i, b_j) with a_i > b_j, ties counting one
    /// half (R_a − n_a(n_a + 1)/2, with R_a the rank sum of `a` in the pooled sample). 0 when
    /// every value of `a` is below every value of `b`, n_a·n_b when every one is above.
    pub u: f64,
    /// The normal approximation's z, continuity-corrected toward 0: negative when `a` tends
    /// below `b`.
    pub z: f64,
    /// Two-sided p-value, 2·(1 − Φ(|z|)), at most 1.
    pub p_two_sided: f64,
    /// The exact two-sided p-value, 2·P(U ≥ max(U, n_a·n_b − U)) at most 1 under the null
    /// hypothesis's distribution of U, when there are no ties and the smaller sample has at most
    /// 8 values: where scipy's `method="auto"` uses it, and where the normal approximation is
    /// rough (a handful of seeds a side). `None` otherwise.
    pub p_exact: Option<f64>,
}

impl MannWhitney {
    /// The p-value to report: the exact one where there is one, else the approximation.
    pub fn p(&self) -> f64 {
        self.p_exact.unwrap_or(self.p_two_sided)
    }
}

/// The largest smaller sample [`MannWhitney::p_exact`] is computed for (scipy's threshold).
const EXACT_MAX: usize = 8;

/// The number of orderings of `m` values of one sample among `n` of the other that give each U
/// (0 ..= m·n) when all values differ: the coefficients of the Gaussian binomial coefficient
/// [m + n choose m] in q, built as ∏ᵢ₌₁..ₘ (1 − q^(n+i)) / (1 − q^i). They sum to C(m + n, m),
/// which fits an i128 for m ≤ 8 and n below about 10¹⁵.
fn u_counts(m: usize, n: usize) -> Vec<i128> {
    let mut counts = vec![0i128; m * n + 1];
    counts[0] = 1;
    for i in 1..=m {
        // × (1 − q^(n+i)), from the top so each coefficient is read before it is changed.
        for k in (n + i..=m * n).rev() {
            counts[k] -= counts[k - n - i];
        }
        // ÷ (1 − q^i): the series 1 + q^i + q^2i + …, a running sum with stride i.
        for k in i..=m * n {
            counts[k] += counts[k - i];
        }
    }
    counts
}

/// Mann–Whitney U test of whether `a` and `b` come from one distribution, against the two-sided
/// alternative that one tends to give larger values (e.g. final accuracies of an agent's seeds
/// against random search's). Nonparametric: it uses only the order of the pooled values.
///
/// Tied values get the mean of the ranks they span. The p-value is the normal approximation,
/// with mean n_a·n_b/2, the tie-corrected variance
/// n_a·n_b/12 · ((n + 1) − Σ(t³ − t)/(n(n − 1))) (t: the size of each group of tied values,
/// n = n_a + n_b) and a continuity correction of ½ toward the mean: the same as scipy's
/// `mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=True)`.
/// The approximation is rough below about 8 values a side, and not always conservative: for
/// [1, 2, 3] against [4, 5, 6] the exact two-sided p is 2/20 = 0.1, the approximation 0.081 —
/// so without ties and with at most 8 values in the smaller sample the exact p is given too
/// ([`MannWhitney::p_exact`]; [`MannWhitney::p`] picks it).
///
/// When every pooled value is tied the ranks say nothing: `z` is 0 and `p_two_sided` 1. All
/// three fields are NaN when either sample is empty. NaN values are ordered after every number
/// (`f64::total_cmp`): leave them out first.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> MannWhitney {
    if a.is_empty() || b.is_empty() {
        return MannWhitney {
            u: f64::NAN,
            z: f64::NAN,
            p_two_sided: f64::NAN,
            p_exact: None,
        };
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let n = na + nb;
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let (ranks, tie_term) = average_ranks(&pooled);
    let rank_sum_a: f64 = ranks[..a.len()].iter().sum();
    let u = rank_sum_a - na * (na + 1.0) / 2.0;
    let p_exact = (tie_term == 0.0 && a.len().min(b.len()) <= EXACT_MAX).then(|| {
        let counts = u_counts(a.len().min(b.len()), a.len().max(b.len()));
        let total: i128 = counts.iter().sum();
        // No ties: U is a whole number, and its distribution is symmetric about n_a·n_b/2.
        let larger = (u.max(na * nb - u)) as usize;
        let tail: i128 = counts[larger..].iter().sum();
        (2.0 * tail as f64 / total as f64).min(1.0)
    });
    let mean = na * nb / 2.0;
    let variance = na * nb / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return MannWhitney {
            u,
            z: 0.0,
            p_two_sided: 1.0,
            p_exact,
        };
    }
    // Continuity correction: move |U − mean| half a step toward 0 (never past it).
    let deviation = ((u - mean).abs() - 0.5).max(0.0);
    let z = (u - mean).signum() * deviation / variance.sqrt();
    let standard = Normal::standard();
    let p_two_sided = (2.0 * standard.sf(z.abs())).min(1.0);
    MannWhitney {
        u,
        z,
        p_two_sided,
        p_exact,
    }
}

/// Ranks of `values` from 1, tied values getting the mean of the ranks they span; and the
/// ties' term Σ(t³ − t) over groups of t tied values (the rank-sum tests' variance correction).
fn average_ranks(values: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]].total_cmp(&values[order[start]]).is_eq() {
            end += 1;
        }
        // Positions start..end hold ranks start + 1 ..= end; each gets their mean.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mean_rank;
        }
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }
    (ranks, tie_term)
}

/// Spearman's rank correlation of paired `x` and `y`: the Pearson correlation of their average
/// ranks (scipy's `spearmanr`). NaN with fewer than two pairs or when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "spearman takes paired values");
    if x.len() < 2 {
        return f64::NAN;
    }
    let ((rx, _), (ry, _)) = (average_ranks(x), average_ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    let mut syy = 0.0;
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_separated_samples() {
        // a entirely below b: U = 0. Mean 9/2 = 4.5, variance 9/12 · 7 = 5.25, no ties;
        // z = (0 − 4.5 + 0.5)/√5.25 = −1.74574. scipy 1.17.1 mannwhitneyu([1,2,3], [4,5,6],
        // alternative="two-sided", method="asymptotic") gives U = 0, p = 0.08085559837005224.
        let r = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!(r.u, 0.0);
        assert!((r.z - (-4.0 / 5.25f64.sqrt())).abs() < 1e-12, "{r:?}");
        // statrs' erfc agrees with scipy's to about 1e-10 relative.
        assert!((r.p_two_sided - 0.08085559837005224).abs() < 1e-10, "{r:?}");
        // Swapping the samples mirrors U (n_a·n_b − U = 9) and z, and keeps p.
        let s = mann_whitney_u(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]);
        assert_eq!(s.u, 9.0);
        assert_eq!(s.z, -r.z);
        assert_eq!(s.p_two_sided, r.p_two_sided);
    }

    #[test]
    fn mann_whitney_exact_p_by_hand() {
        // Three against three, all orderings equally likely: U takes 0..=9 in 1, 1, 2, 3, 3, 3,
        // 3, 2, 1, 1 of the C(6, 3) = 20 orderings.
        assert_eq!(u_counts(3, 3), vec![1, 1, 2, 3, 3, 3, 3, 2, 1, 1]);
        assert_eq!(u_counts(3, 3), u_counts(3, 3).into_iter().rev().collect::<Vec<_>>());
        // Separated: 2·P(U ≥ 9) = 2/20 (scipy 1.17.1 method="exact": 0.1).
        let r = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!(r.p_exact, Some(0.1));
        assert_eq!(r.p(), 0.1);
        // [1, 2, 4] against [3, 5, 6]: U = 1 (4 > 3), so 2·P(U ≥ 8) = 2·2/20 = 0.2. These and
        // the two below are what scipy 1.17.1 mannwhitneyu gives (method "auto": exact here).
        assert_eq!(mann_whitney_u(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0]).p_exact, Some(0.2));
        // Five seeds against five, fully separated: 2/C(10, 5) = 2/252 (the approximation: 0.012).
        let five = mann_whitney_u(&[0.70, 0.71, 0.72, 0.73, 0.74], &[0.60, 0.61, 0.62, 0.63, 0.64]);
        assert!((five.p() - 2.0 / 252.0).abs() < 1e-15, "{five:?}");
        assert!((five.p_two_sided - 0.0122).abs() < 1e-4, "{five:?}");
        // Unequal sizes: 2 against 250 values, the 2 above all: 2/C(252, 2).
        let many: Vec<f64> = (0..250).map(f64::from).collect();
        let two = mann_whitney_u(&[1000.0, 1001.0], &many);
        assert!((two.p() - 2.0 / 31626.0).abs() < 1e-15, "{two:?}");
        // Ties, or more than 8 a side: the approximation only.
        assert_eq!(mann_whitney_u(&[1.0, 2.0, 2.0], &[2.0, 3.0]).p_exact, None);
        let nine: Vec<f64> = (0..9).map(f64::from).collect();
        let other: Vec<f64> = (10..19).map(f64::from).collect();
        let r = mann_whitney_u(&nine, &other);
        assert_eq!((r.p_exact, r.p()), (None, r.p_two_sided));
    }

    #[test]
    fn mann_whitney_with_ties_by_hand() {
        // a = [1, 2, 2, 3], b = [2, 3, 4, 5]. Pooled and ranked: 1 → 1; the three 2s share
        // ranks 2–4 → 3; the two 3s share 5–6 → 5.5; 4 → 7; 5 → 8. R_a = 1 + 3 + 3 + 5.5 = 12.5,
        // U = 12.5 − 4·5/2 = 2.5. Ties: (3³ − 3) + (2³ − 2) = 30; variance
        // 16/12 · (9 − 30/56) = 11.285714…; z = (2.5 − 8 + 0.5)/√11.285714 = −1.488351.
        // scipy 1.17.1 (asymptotic, continuity): U = 2.5, p = 0.1366582477381475.
        let r = mann_whitney_u(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 4.0, 5.0]);
        assert_eq!(r.u, 2.5);
        let variance = 16.0 / 12.0 * (9.0 - 30.0 / 56.0);
        assert!((r.z - (-5.0 / f64::sqrt(variance))).abs() < 1e-12, "{r:?}");
        assert!((r.p_two_sided - 0.1366582477381475).abs() < 1e-10, "{r:?}");
    }

    #[test]
    fn mann_whitney_all_tied_and_empty() {
        let r = mann_whitney_u(&[0.5, 0.5], &[0.5, 0.5, 0.5]);
        assert_eq!((r.u, r.z, r.p_two_sided), (3.0, 0.0, 1.0));
        // U at its mean: the continuity correction does not overshoot past 0.
        let m = mann_whitney_u(&[1.0, 4.0], &[2.0, 3.0]);
        assert_eq!((m.u, m.z, m.p_two_sided), (2.0, 0.0, 1.0));
        assert!(mann_whitney_u(&[], &[1.0]).p_two_sided.is_nan());
    }

    #[test]
    fn spearman_by_hand() {
        // Monotone: 1; reversed: -1.
        assert_eq!(super::spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 90.0]), 1.0);
        assert_eq!(super::spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) = 0.8
        assert!((super::spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]) - 0.8).abs() < 1e-12);
        // Ties get mean ranks: spearmanr([1, 2, 2, 3], [1, 2, 3, 4]) = 0.9486832980505138
        assert!((super::spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]) - 0.9486832980505138).abs() < 1e-12);
        assert!(super::spearman(&[1.0], &[1.0]).is_nan());
    }
}
