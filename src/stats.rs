//! Small statistics every report uses: shares and percentages of counts, mean and median,
//! nearest-rank quantiles. One definition each, so a share means the same in the demo, the dedup
//! report, `explain`, the sweep's distributions and the fleet.
//!
//! Plain numbers only (no bytes, no simulated time): it sits at the crate root beside `units`, so
//! modules on both sides of ARCHITECTURE.md's line may use it.

/// `part / whole` as a fraction in 0..=1; 0 when `whole` is 0.
pub fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// `part` as a percentage of `whole`; 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    percent_f64(part as f64, whole as f64)
}

/// `part` as a percentage of `whole`; 0 when `whole` is not positive.
pub fn percent_f64(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { 100.0 * part / whole } else { 0.0 }
}

/// `part` as a percentage of `whole`; `None` when `whole` is 0 (nothing to be a share of).
pub fn percent_of(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

/// The arithmetic mean; `None` for no values.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The median of sorted values (the mean of the middle two for an even count); `None` for none.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The `q`-quantile of sorted values by nearest rank (the smallest value with at least `q` of
/// the values at or below it); 0 for no values.
pub fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The finite values of `samples`, sorted.
pub fn sorted_finite(samples: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Nearest-rank quantiles of `samples` (any order; non-finite values dropped) at each of
/// `levels`; empty when no finite sample is left.
pub fn quantiles(samples: &[f64], levels: &[f64]) -> Vec<f64> {
    let v = sorted_finite(samples);
    if v.is_empty() {
        return Vec::new();
    }
    levels.iter().map(|&q| nearest_rank(&v, q)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_percentages_of_nothing_are_zero_or_none() {
        assert_eq!(share(1, 4), 0.25);
        assert_eq!(share(3, 0), 0.0);
        assert_eq!(percent(1, 8), 12.5);
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(percent_f64(1.0, -1.0), 0.0);
        assert_eq!(percent_of(3, 4), Some(75.0));
        assert_eq!(percent_of(3, 0), None);
    }

    #[test]
    fn mean_and_median() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, 2.0, 6.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, 4.0, 6.0]), Some(3.0));
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        assert_eq!(nearest_rank(&[], 0.5), 0.0);
        assert!(quantiles(&[f64::NAN], &[0.5]).is_empty());
        let q = quantiles(&[4.0, 1.0, f64::INFINITY, 3.0, 2.0], &[0.0, 0.25, 0.5, 0.51, 1.0]);
        assert_eq!(q, vec![1.0, 1.0, 2.0, 3.0, 4.0]);
        let many: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantiles(&many, &[0.5, 0.99, 0.999]), vec![500.0, 990.0, 999.0]);
    }
}
