//! Seeded percentile bootstrap confidence intervals.
//!
//! Two entry points: [`bootstrap_mean_ci`] for metrics that are a mean of per-sample scores (VQA
//! accuracy, ROUGE-L, exact match, top-k), and [`bootstrap_ci`] for set-level metrics that must be
//! recomputed on each resampled index multiset (CIDEr-D, whose document frequencies depend on the whole
//! set; corpus BLEU; ROC-AUC). Resample `b` draws its indices from ChaCha8 seeded with `seed` on stream
//! `b`, so results do not depend on thread count or scheduling.

use super::MetricError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

/// How to resample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    pub resamples: usize,
    pub seed: u64,
    /// Two-sided coverage, e.g. 0.95.
    pub confidence: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig { resamples: 1000, seed: 0, confidence: 0.95 }
    }
}

/// A percentile interval of a statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConfidenceInterval {
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// Indices of resample `b` (n draws with replacement from 0..n).
pub fn resample_indices(n: usize, seed: u64, b: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(b as u64);
    (0..n).map(|_| rng.random_range(0..n)).collect()
}

fn check_config(n: usize, cfg: &BootstrapConfig) -> Result<(), MetricError> {
    if n == 0 {
        return Err(MetricError::Empty);
    }
    if cfg.resamples == 0 || !(cfg.confidence > 0.0 && cfg.confidence < 1.0) {
        return Err(MetricError::Invalid(format!(
            "bootstrap needs resamples > 0 and 0 < confidence < 1 (got {} and {})",
            cfg.resamples, cfg.confidence
        )));
    }
    Ok(())
}

/// The percentile interval of (unsorted, finite) resample statistics.
fn percentile_interval(mut stats: Vec<f64>, cfg: &BootstrapConfig) -> ConfidenceInterval {
    stats.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let alpha = 1.0 - cfg.confidence;
    ConfidenceInterval {
        low: quantile(&stats, alpha / 2.0),
        high: quantile(&stats, 1.0 - alpha / 2.0),
        confidence: cfg.confidence,
        resamples: cfg.resamples,
        seed: cfg.seed,
    }
}

/// Percentile bootstrap of any statistic of an index multiset over `n` samples.
pub fn bootstrap_ci<F>(n: usize, cfg: &BootstrapConfig, statistic: F) -> Result<ConfidenceInterval, MetricError>
where
    F: Fn(&[usize]) -> f64 + Sync,
{
    check_config(n, cfg)?;
    let stats: Vec<f64> = (0..cfg.resamples)
        .into_par_iter()
        .map(|b| statistic(&resample_indices(n, cfg.seed, b)))
        .collect();
    if let Some((index, &value)) = stats.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MetricError::NonFinite { index, value });
    }
    Ok(percentile_interval(stats, cfg))
}

/// Like [`bootstrap_ci`] for a statistic that is undefined on some resamples (ROC-AUC of a resample with a
/// single class): those resamples are left out, and their number is returned with the interval. Errors when
/// every resample is undefined.
pub fn bootstrap_ci_skip_undefined<F>(n: usize, cfg: &BootstrapConfig, statistic: F) -> Result<(ConfidenceInterval, usize), MetricError>
where
    F: Fn(&[usize]) -> Option<f64> + Sync,
{
    check_config(n, cfg)?;
    let stats: Vec<f64> = (0..cfg.resamples)
        .into_par_iter()
        .filter_map(|b| statistic(&resample_indices(n, cfg.seed, b)).filter(|v| v.is_finite()))
        .collect();
    let skipped = cfg.resamples - stats.len();
    if stats.is_empty() {
        return Err(MetricError::Invalid("the statistic is undefined on every bootstrap resample".into()));
    }
    Ok((percentile_interval(stats, cfg), skipped))
}

/// Percentile bootstrap of the mean of per-sample scores.
pub fn bootstrap_mean_ci(scores: &[f64], cfg: &BootstrapConfig) -> Result<ConfidenceInterval, MetricError> {
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MetricError::NonFinite { index, value });
    }
    bootstrap_ci(scores.len(), cfg, |idx| idx.iter().map(|&i| scores[i]).sum::<f64>() / idx.len() as f64)
}

/// Linear-interpolation quantile of sorted data (numpy's default method).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_resamples_are_skipped_and_counted() {
        // Statistic undefined when the resample holds only index 0 or only index 1 of a 2-sample set.
        let cfg = BootstrapConfig { resamples: 400, seed: 3, confidence: 0.95 };
        let (ci, skipped) = bootstrap_ci_skip_undefined(2, &cfg, |idx| {
            let ones = idx.iter().filter(|&&i| i == 1).count();
            (ones > 0 && ones < idx.len()).then_some(0.5)
        })
        .unwrap();
        assert!(skipped > 100 && skipped < 300, "{skipped}");
        assert_eq!((ci.low, ci.high), (0.5, 0.5));
        assert!(bootstrap_ci_skip_undefined(3, &cfg, |_| None).is_err());
    }
    #[test]
    fn deterministic_and_covers_mean() {
        let s: Vec<f64> = (0..200).map(|i| (i % 7) as f64).collect();
        let cfg = BootstrapConfig { resamples: 300, seed: 7, confidence: 0.9 };
        let a = bootstrap_mean_ci(&s, &cfg).unwrap();
        let b = bootstrap_mean_ci(&s, &cfg).unwrap();
        assert_eq!(a, b);
        let m = s.iter().sum::<f64>() / s.len() as f64;
        assert!(a.low <= m && m <= a.high);
    }
}
