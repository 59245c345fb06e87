//! Classification metrics: ROC-AUC (as scikit-learn's `roc_auc_score` for binary labels) and top-k
//! accuracy.
//!
//! Top-k tie-breaking: classes are ranked by score, highest first; among equal scores the higher class
//! index ranks first. This is what scikit-learn's `top_k_accuracy_score` does (it takes the reversed
//! ascending argsort) whenever numpy's sort is stable, i.e. for up to 16 classes.

use super::MetricError;

fn check_finite(scores: &[f64]) -> Result<(), MetricError> {
    match scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(MetricError::NonFinite { index, value }),
        None => Ok(()),
    }
}

/// Area under the ROC curve for binary labels; tied scores count one half.
/// Errors if only one class is present (scikit-learn raises too) or a score is NaN/infinite.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, MetricError> {
    if labels.len() != scores.len() {
        return Err(MetricError::Invalid(format!(
            "{} labels but {} scores",
            labels.len(),
            scores.len()
        )));
    }
    if labels.is_empty() {
        return Err(MetricError::Empty);
    }
    check_finite(scores)?;
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        let which = if pos == 0 { "all labels are negative" } else { "all labels are positive" };
        return Err(MetricError::SingleClass(which.to_string()));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap());
    let (mut tp, mut area) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut dtp, mut dfp) = (0.0, 0.0);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] {
                dtp += 1.0;
            } else {
                dfp += 1.0;
            }
            j += 1;
        }
        area += dfp * (tp + dtp / 2.0);
        tp += dtp;
        i = j;
    }
    Ok(area / (pos as f64 * neg as f64))
}

/// Whether `label` is among the `k` highest-scoring classes (ties: higher class index first).
pub fn in_top_k(scores: &[f64], label: usize, k: usize) -> bool {
    let s = scores[label];
    // classes ranked before `label`: strictly higher score, or equal score and higher index
    let ahead = scores.iter().enumerate().filter(|&(c, &v)| v > s || (v == s && c > label)).count();
    ahead < k
}

/// Top-k accuracy in [0, 1] over samples given as per-class score rows and true class indices.
pub fn top_k_accuracy(scores: &[Vec<f64>], labels: &[usize], k: usize) -> Result<f64, MetricError> {
    Ok(top_k_hits(scores, labels, k)?.iter().sum::<f64>() / labels.len() as f64)
}

/// Per-sample top-k hits (1.0 or 0.0), for bootstrap.
pub fn top_k_hits(scores: &[Vec<f64>], labels: &[usize], k: usize) -> Result<Vec<f64>, MetricError> {
    if scores.len() != labels.len() {
        return Err(MetricError::Invalid(format!("{} score rows but {} labels", scores.len(), labels.len())));
    }
    if labels.is_empty() {
        return Err(MetricError::Empty);
    }
    if k == 0 {
        return Err(MetricError::Invalid("k must be at least 1".into()));
    }
    let mut out = Vec::with_capacity(labels.len());
    for (row, &label) in scores.iter().zip(labels) {
        check_finite(row)?;
        if label >= row.len() {
            return Err(MetricError::Invalid(format!(
                "label {label} is out of range for {} class scores",
                row.len()
            )));
        }
        out.push(if in_top_k(row, label, k) { 1.0 } else { 0.0 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn auc_ties_half() {
        assert_eq!(roc_auc(&[true, false], &[0.5, 0.5]).unwrap(), 0.5);
        assert_eq!(roc_auc(&[true, false, true, false], &[0.9, 0.1, 0.8, 0.3]).unwrap(), 1.0);
        assert!(matches!(roc_auc(&[true, true], &[0.1, 0.2]), Err(MetricError::SingleClass(_))));
    }
    #[test]
    fn topk_ties_prefer_higher_index() {
        let row = vec![0.5, 0.5, 0.1];
        assert!(in_top_k(&row, 1, 1));
        assert!(!in_top_k(&row, 0, 1));
        assert!(in_top_k(&row, 0, 2));
    }
}
