//! ROC-AUC and top-k accuracy against scikit-learn (fixtures from scripts/metrics_reference).
mod metrics_common;
use flamingo_eval::metrics::classification::{roc_auc, top_k_accuracy};
use metrics_common::*;

#[test]
fn matches_sklearn() {
    let e = read_json(&fixture("classification/sklearn_expected.json"));
    for c in e["roc_auc"].as_array().unwrap() {
        let labels: Vec<bool> = c["labels"].as_array().unwrap().iter().map(|v| v.as_u64() == Some(1)).collect();
        let scores: Vec<f64> = c["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_close(roc_auc(&labels, &scores).unwrap(), c["roc_auc"].as_f64().unwrap(), 1e-12, "roc_auc");
    }
    for c in e["top_k"].as_array().unwrap() {
        let labels: Vec<usize> = c["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let scores: Vec<Vec<f64>> = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect())
            .collect();
        assert_close(top_k_accuracy(&scores, &labels, 1).unwrap(), c["top1"].as_f64().unwrap(), 1e-12, "top1");
        assert_close(top_k_accuracy(&scores, &labels, 5).unwrap(), c["top5"].as_f64().unwrap(), 1e-12, "top5");
    }
}
