//! From sample records to the benchmark's metric: per-sample values, per-trial values, mean and std over
//! trials, and bootstrap confidence intervals. Pure functions over [`SampleRecord`]s, so a summary can be
//! recomputed from `samples.jsonl` alone.

use crate::benchmark::spec::{MetricMode, MetricName};
use crate::benchmark::Target;
use crate::engine::records::SampleRecord;
use crate::metrics::caption::CiderPrepared;
use crate::metrics::vqa::{vqa_accuracy, VqaMode};
use crate::metrics::bootstrap::bootstrap_ci_skip_undefined;
use crate::metrics::caption::{line_terminator_samples, line_terminator_warning, samples_from_raw};
use crate::metrics::{roc_auc, BootstrapConfig, CaptionSample, ConfidenceInterval};
use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// The metric of a benchmark, as the engine applies it.
#[derive(Debug, Clone, Copy)]
pub struct MetricChoice {
    pub name: MetricName,
    pub mode: MetricMode,
    /// top-k accuracy: which k is the headline number.
    pub top_k: usize,
}

impl MetricChoice {
    /// Human-readable name of the implementation that produced the numbers.
    pub fn describe(&self) -> String {
        match self.name {
            MetricName::VqaAccuracy => format!("VQA accuracy ×100 ({})", self.vqa_mode().describe()),
            MetricName::Cider => "CIDEr-D ×100 (pycocoevalcap 1.2 rules, PTB tokenizer reimplemented in Rust)".into(),
            MetricName::RocAuc => "ROC-AUC ×100 (scikit-learn roc_auc_score rules, ties count 1/2)".into(),
            MetricName::TopKAccuracy if self.mode == MetricMode::Openflamingo => {
                "top-1 accuracy ×100 (OpenFlamingo rule: the predicted class name equals the true one; ties: higher class index first)".into()
            }
            MetricName::TopKAccuracy => format!("top-{} accuracy ×100 (ties: higher class index ranks first)", self.top_k),
            MetricName::ExactMatch => "exact-match accuracy ×100 after VQA answer normalisation".into(),
        }
    }

    pub fn key(&self) -> &'static str {
        match self.name {
            MetricName::VqaAccuracy => "vqa_accuracy",
            MetricName::Cider => "cider",
            MetricName::RocAuc => "roc_auc",
            MetricName::TopKAccuracy => "top_k_accuracy",
            MetricName::ExactMatch => "exact_match",
        }
    }

    pub fn vqa_mode(&self) -> VqaMode {
        match self.mode {
            MetricMode::Official => VqaMode::Official,
            MetricMode::Openflamingo => VqaMode::OpenFlamingo,
        }
    }

    /// Whether the metric is a mean of per-sample values (so each record carries its own value).
    pub fn decomposes(&self) -> bool {
        !matches!(self.name, MetricName::Cider | MetricName::RocAuc)
    }
}

/// The per-sample value stored in a record: accuracy in [0,1], or P(positive) for ROC-AUC; None for CIDEr.
pub fn per_sample_value(metric: &MetricChoice, target: &Target, prediction: &str, class_scores: Option<&[f64]>) -> Result<Option<f64>> {
    Ok(match (metric.name, target) {
        // An unannotated split (e.g. VQAv2 test-dev) has nothing to score: not scored, never 0.
        (MetricName::VqaAccuracy, Target::Vqa { answers, .. }) if answers.is_empty() => None,
        (MetricName::VqaAccuracy, Target::Vqa { answers, .. }) => Some(vqa_accuracy(prediction, answers, metric.vqa_mode())),
        (MetricName::ExactMatch, Target::Answer { answer }) => {
            Some(if crate::metrics::videoqa::exact_match(prediction, answer) { 1.0 } else { 0.0 })
        }
        (MetricName::ExactMatch, Target::Vqa { answers, .. }) => {
            let a = answers.first().ok_or_else(|| anyhow!("no answer to compare with"))?;
            Some(if crate::metrics::videoqa::exact_match(prediction, a) { 1.0 } else { 0.0 })
        }
        // OpenFlamingo compares class names (so two classes with one name, as in CLIP's ImageNet list, count
        // as the same); it reports top-1 only.
        (MetricName::TopKAccuracy, Target::Class { name, .. }) if metric.mode == MetricMode::Openflamingo => {
            Some(if prediction == name { 1.0 } else { 0.0 })
        }
        (MetricName::TopKAccuracy, Target::Class { label, .. }) => {
            let s = class_scores.ok_or_else(|| anyhow!("top-k accuracy needs class scores"))?;
            Some(if crate::metrics::classification::in_top_k(s, *label, metric.top_k) { 1.0 } else { 0.0 })
        }
        (MetricName::RocAuc, Target::Class { .. }) => {
            let s = class_scores.ok_or_else(|| anyhow!("ROC-AUC needs class scores"))?;
            if s.len() != 2 {
                bail!("ROC-AUC needs exactly two candidates (negative, positive), got {}", s.len());
            }
            // P(positive) = softmax over the two candidates' scores.
            let m = s[0].max(s[1]);
            let (a, b) = ((s[0] - m).exp(), (s[1] - m).exp());
            Some(b / (a + b))
        }
        (MetricName::Cider, Target::Caption { .. }) => None,
        (name, t) => bail!("metric {name:?} cannot score a target of this kind ({t:?})"),
    })
}

/// Whether a record counts in the metric: no error, and a per-sample value when the metric is a mean of them
/// (a record of an unannotated sample has none).
pub(crate) fn is_scored(metric: MetricName, r: &SampleRecord) -> bool {
    r.error.is_none() && (matches!(metric, MetricName::Cider) || r.metric.is_some())
}

/// The metric over the records at `idx` (indices into the prepared set), as a percentage.
pub(crate) fn metric_value(idx: &[usize], prep: &Prepared) -> f64 {
    match prep {
        Prepared::Mean(v) => 100.0 * idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len().max(1) as f64,
        Prepared::Cider(c) => 100.0 * c.score(idx).corpus,
        Prepared::Auc(labels, scores) => {
            let l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
            let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
            // A resample with a single class has no ROC-AUC: NaN makes the bootstrap report it.
            roc_auc(&l, &s).map(|v| 100.0 * v).unwrap_or(f64::NAN)
        }
    }
}

/// Bootstrap CI of a percentage statistic; resamples where it is undefined (NaN: ROC-AUC with one class) are
/// left out (the same rule `compare` uses).
fn ci_of(n: usize, boot: &BootstrapConfig, stat: impl Fn(&[usize]) -> f64 + Sync) -> Option<ConfidenceInterval> {
    bootstrap_ci_skip_undefined(n, boot, |idx| Some(stat(idx)).filter(|v| v.is_finite())).ok().map(|(ci, _)| ci)
}

/// Scored records of one (shot, trial), ready to score any index multiset.
pub(crate) enum Prepared {
    Mean(Vec<f64>),
    Cider(CiderPrepared),
    Auc(Vec<bool>, Vec<f64>),
}

pub(crate) fn prepare(metric: MetricName, recs: &[&SampleRecord]) -> Result<Prepared> {
    Ok(match metric {
        MetricName::Cider => {
            let refs: Vec<Vec<String>> = recs
                .iter()
                .map(|r| {
                    serde_json::from_value(r.target["references"].clone())
                        .map_err(|_| anyhow!("sample {}: target has no references", r.sample_id))
                })
                .collect::<Result<_>>()?;
            // one tokenizer call for the predictions and one for the references, in record order
            let items: Vec<(String, &str, &[String])> = recs
                .iter()
                .zip(&refs)
                .map(|(r, x)| (r.sample_id.clone(), r.prediction.as_deref().unwrap_or(""), x.as_slice()))
                .collect();
            let odd = line_terminator_samples(&items);
            if !odd.is_empty() {
                eprintln!("{}", line_terminator_warning("CIDEr", &odd));
            }
            let samples = caption_samples_in_eval_order(recs, &items);
            Prepared::Cider(CiderPrepared::new(&samples))
        }
        MetricName::RocAuc => {
            let labels = recs
                .iter()
                .map(|r| {
                    r.target["label"].as_u64().map(|l| l == 1).ok_or_else(|| anyhow!("sample {}: target has no label", r.sample_id))
                })
                .collect::<Result<_>>()?;
            let scores = recs.iter().map(|r| r.metric.unwrap_or(f64::NAN)).collect();
            Prepared::Auc(labels, scores)
        }
        _ => Prepared::Mean(
            recs.iter()
                .map(|r| r.metric.ok_or_else(|| anyhow!("sample {}: record has no metric value", r.sample_id)))
                .collect::<Result<_>>()?,
        ),
    })
}

/// The records' captions tokenized as pycocoevalcap does (one PTB tokenizer call for the predictions, one
/// for the references) with the lines in the evaluation's image order — the targets' `eval_order` where
/// every record has one (records of older versions have none: then record order) — and returned in record
/// order. The order matters because the Java tokenizer's output for a caption can depend on the next one.
pub(crate) fn caption_samples_in_eval_order(recs: &[&SampleRecord], items: &[(String, &str, &[String])]) -> Vec<CaptionSample> {
    let order: Option<Vec<u64>> = recs.iter().map(|r| r.target["eval_order"].as_u64()).collect();
    let mut perm: Vec<usize> = (0..items.len()).collect();
    if let Some(o) = &order {
        perm.sort_by_key(|&k| (o[k], k));
    }
    let ordered: Vec<(String, &str, &[String])> = perm.iter().map(|&k| items[k].clone()).collect();
    let mut tokenized: Vec<Option<CaptionSample>> = samples_from_raw(&ordered).into_iter().map(Some).collect();
    let mut out: Vec<Option<CaptionSample>> = vec![None; items.len()];
    for (pos, &k) in perm.iter().enumerate() {
        out[k] = tokenized[pos].take();
    }
    out.into_iter().flatten().collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct TrialResult {
    pub trial: usize,
    pub seed: u64,
    /// Samples scored (errors excluded).
    pub n: usize,
    pub errors: usize,
    pub value: f64,
    pub ci: Option<ConfidenceInterval>,
    /// Per answer type (VQA), in order of first appearance.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_answer_type: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShotResult {
    pub shot: usize,
    pub trials: Vec<TrialResult>,
    /// Mean over trials.
    pub mean: f64,
    /// Population standard deviation over trials (numpy's default, as OpenFlamingo reports).
    pub std: f64,
    /// Bootstrap CI of the trial mean: samples resampled jointly across trials when they share the sample
    /// set, else the CI of the first trial.
    pub ci: Option<ConfidenceInterval>,
    pub n: usize,
    pub errors: usize,
}

/// Scores every (shot, trial) present in `records`.
pub fn summarize(metric: &MetricChoice, records: &[SampleRecord], seeds: &[u64], boot: &BootstrapConfig) -> Result<Vec<ShotResult>> {
    let mut by_shot: BTreeMap<usize, BTreeMap<usize, Vec<&SampleRecord>>> = BTreeMap::new();
    for r in records {
        by_shot.entry(r.shot).or_default().entry(r.trial).or_default().push(r);
    }
    let mut out = Vec::new();
    for (shot, trials) in by_shot {
        let mut trial_results = Vec::new();
        let mut prepared = Vec::new();
        let mut ok_sets = Vec::new();
        for (trial, recs) in &trials {
            let mut ok: Vec<&SampleRecord> = recs.iter().copied().filter(|r| is_scored(metric.name, r)).collect();
            ok.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
            let errors = recs.iter().filter(|r| r.error.is_some()).count();
            let prep = prepare(metric.name, &ok)?;
            let all: Vec<usize> = (0..ok.len()).collect();
            let value = if ok.is_empty() { f64::NAN } else { metric_value(&all, &prep) };
            let ci = if ok.is_empty() { None } else { ci_of(ok.len(), boot, |idx| metric_value(idx, &prep)) };
            let mut per_answer_type = BTreeMap::new();
            if metric.name == MetricName::VqaAccuracy {
                let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for r in &ok {
                    if let Some(t) = r.target["answer_type"].as_str() {
                        groups.entry(t.to_string()).or_default().push(r.metric.unwrap_or(0.0));
                    }
                }
                for (k, v) in groups {
                    per_answer_type.insert(k, 100.0 * v.iter().sum::<f64>() / v.len() as f64);
                }
            }
            trial_results.push(TrialResult {
                trial: *trial,
                seed: seeds.get(*trial).copied().unwrap_or(0),
                n: ok.len(),
                errors,
                value,
                ci,
                per_answer_type,
            });
            prepared.push(prep);
            ok_sets.push(ok);
        }
        let vals: Vec<f64> = trial_results.iter().map(|t| t.value).collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
        let same_ids = ok_sets.windows(2).all(|w| {
            w[0].len() == w[1].len() && w[0].iter().zip(w[1].iter()).all(|(a, b)| a.sample_id == b.sample_id)
        });
        let ci = if ok_sets.len() > 1 && same_ids && !ok_sets[0].is_empty() {
            ci_of(ok_sets[0].len(), boot, |idx| {
                prepared.iter().map(|p| metric_value(idx, p)).sum::<f64>() / ok_sets.len() as f64
            })
        } else {
            trial_results.first().and_then(|t| t.ci)
        };
        out.push(ShotResult {
            shot,
            n: trial_results.iter().map(|t| t.n).sum(),
            errors: trial_results.iter().map(|t| t.errors).sum(),
            trials: trial_results,
            mean,
            std,
            ci,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openflamingo_top1_compares_class_names() {
        let target = Target::Class { label: 3, name: "missile".into() };
        let scores = [0.0, 0.0, 0.9, 0.1]; // class 2 (also "missile") ranks first
        let official = MetricChoice { name: MetricName::TopKAccuracy, mode: MetricMode::Official, top_k: 1 };
        let of = MetricChoice { mode: MetricMode::Openflamingo, ..official };
        assert_eq!(per_sample_value(&official, &target, "missile", Some(&scores)).unwrap(), Some(0.0));
        assert_eq!(per_sample_value(&of, &target, "missile", Some(&scores)).unwrap(), Some(1.0));
        assert_eq!(per_sample_value(&of, &target, "tench", Some(&scores)).unwrap(), Some(0.0));
    }

    #[test]
    fn unannotated_vqa_sample_is_not_scored_as_zero() {
        let metric = MetricChoice { name: MetricName::VqaAccuracy, mode: MetricMode::Official, top_k: 1 };
        let target =
            |answers: Vec<String>| Target::Vqa { answers, answer_type: None, question_type: None, multiple_choice_answer: None };
        assert_eq!(per_sample_value(&metric, &target(vec![]), "yes", None).unwrap(), None);
        assert_eq!(per_sample_value(&metric, &target(vec!["yes".into(); 10]), "yes", None).unwrap(), Some(1.0));
    }

    fn caption_record(id: &str, prediction: &str, eval_order: Option<u64>) -> SampleRecord {
        let mut target = serde_json::json!({"kind": "caption", "image_id": id, "references": ["a dog", "The dog"]});
        if let Some(o) = eval_order {
            target["eval_order"] = o.into();
        }
        serde_json::from_value(serde_json::json!({
            "sample_id": id, "shot": 0, "trial": 0, "trial_seed": 1, "prompt": "", "demo_ids": [],
            "text_only_demo_ids": [], "media": [], "target": target, "raw_output": prediction,
            "prediction": prediction, "tokens": null, "sequence_score": null, "candidate_scores": null,
            "metric": null, "error": null
        }))
        .unwrap()
    }

    #[test]
    fn captions_are_tokenized_in_the_evaluation_order() {
        // Java: a line-final initial is "e" "." before a line opening with "The", "e." at the end of the input
        let items_of = |recs: &[&SampleRecord]| -> Vec<(String, String, Vec<String>)> {
            recs.iter()
                .map(|r| {
                    let refs: Vec<String> = serde_json::from_value(r.target["references"].clone()).unwrap();
                    (r.sample_id.clone(), r.prediction.clone().unwrap(), refs)
                })
                .collect()
        };
        let run = |a: SampleRecord, b: SampleRecord| {
            let recs = [&a, &b];
            let owned = items_of(&recs);
            let items: Vec<(String, &str, &[String])> =
                owned.iter().map(|(i, p, r)| (i.clone(), p.as_str(), r.as_slice())).collect();
            caption_samples_in_eval_order(&recs, &items)
        };
        // record (sample id) order 1, 2; evaluation order 2, 1: "a man named E." is followed by "The dog"
        let s = run(caption_record("1", "The dog", Some(1)), caption_record("2", "a man named E.", Some(0)));
        assert_eq!((s[0].id.as_str(), s[1].id.as_str()), ("1", "2"));
        assert_eq!(s[1].candidate, "a man named e");
        assert_eq!(s[0].candidate, "the dog");
        // records without an evaluation order (older versions): record order, "E." ends the input
        let s = run(caption_record("1", "The dog", None), caption_record("2", "a man named E.", Some(0)));
        assert_eq!(s[1].candidate, "a man named e.");
    }
}
