//! `flamingo-eval compare BASELINE CANDIDATE`: per benchmark and shot count, the difference of the metric
//! (candidate − baseline, mean over trials), its paired bootstrap confidence interval and p-value, and a
//! verdict — for pull-request comments (Markdown), CI systems (JUnit XML) and exit codes.
//!
//! Pairing: records are paired by (shot, trial, sample id); a sample that failed in either run is left out
//! of the pair set (and new failures in the candidate are a verdict of their own). Each bootstrap resample
//! draws one index multiset per trial (the same stream for every trial, so trials sharing a sample set are
//! resampled jointly, as `run`'s CIs are) and applies it to *both* runs. Decomposable metrics (VQA accuracy,
//! exact match, top-k) average the records' `metric`; CIDEr is recomputed on each resample of images
//! (document frequencies included); ROC-AUC is recomputed from the records' P(positive).
//!
//! The p-value is two-sided, from the bootstrap distribution shifted to the null (difference 0):
//! p = (1 + #{b : |δ_b − δ| ≥ |δ|}) / (B + 1). A *regression* is a drop larger than `max_drop` points with
//! p < `alpha`; a smaller significant drop passes but is shown.
//!
//! Incomparable (exit 2, with the reason): different benchmark files (sha256 in run.json), different
//! metrics, different trial seeds, a (shot, trial) of the baseline missing from the candidate, different
//! sample sets, or a benchmark of the baseline missing from the candidate.

use crate::benchmark::spec::MetricName;
use crate::engine::records::SampleRecord;
use crate::metrics::bootstrap::resample_indices;
use crate::engine::scoring::{is_scored, metric_value, prepare};
use crate::report::junit::{self, Outcome, TestCase, TestSuite};
use crate::report::{discover_runs, fmt_num, RunFolder};
use anyhow::{anyhow, Result};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Thresholds and resampling of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct CompareConfig {
    /// Largest tolerated drop, in metric points (the metrics are ×100).
    pub max_drop: f64,
    /// Significance level of the two-sided paired test.
    pub alpha: f64,
    pub resamples: usize,
    pub seed: u64,
    /// Coverage of the reported interval of the difference.
    pub confidence: f64,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig { max_drop: 0.5, alpha: 0.05, resamples: 1000, seed: 0, confidence: 0.95 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A drop beyond the threshold, significant at alpha.
    Regression,
    /// Samples that scored in the baseline fail in the candidate.
    NewErrors,
    /// Significant, but within the tolerated drop.
    DropWithinThreshold,
    Improvement,
    NoSignificantChange,
}

impl Verdict {
    pub fn fails(&self) -> bool {
        matches!(self, Verdict::Regression | Verdict::NewErrors)
    }
    pub fn text(&self) -> &'static str {
        match self {
            Verdict::Regression => "❌ regression",
            Verdict::NewErrors => "❌ new sample errors",
            Verdict::DropWithinThreshold => "➖ drop within threshold",
            Verdict::Improvement => "✅ improvement",
            Verdict::NoSignificantChange => "✅ no significant change",
        }
    }
}

/// The comparison of one benchmark at one shot count.
#[derive(Debug, Clone)]
pub struct ShotComparison {
    pub benchmark: String,
    pub metric_key: String,
    pub shot: usize,
    pub trials: usize,
    /// Paired samples per trial (summed over trials).
    pub n_paired: usize,
    pub baseline: f64,
    pub candidate: f64,
    pub delta: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
    pub baseline_errors: usize,
    pub candidate_errors: usize,
    /// Resamples without a defined value (ROC-AUC on a single-class resample), left out.
    pub undefined_resamples: usize,
    pub verdict: Verdict,
}

/// Why a benchmark could not be compared.
#[derive(Debug, Clone)]
pub struct Incomparable {
    pub benchmark: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub baseline: PathBuf,
    pub candidate: PathBuf,
    pub config: CompareConfig,
    pub rows: Vec<ShotComparison>,
    pub incomparable: Vec<Incomparable>,
    pub notes: Vec<String>,
}

impl Comparison {
    /// 0: no regression; 1: a significant regression beyond the threshold (or new errors); 2: incomparable.
    pub fn exit_code(&self) -> u8 {
        if !self.incomparable.is_empty() {
            2
        } else if self.rows.iter().any(|r| r.verdict.fails()) {
            1
        } else {
            0
        }
    }

    pub fn headline(&self) -> &'static str {
        match self.exit_code() {
            0 => "✅ no regression",
            1 => "❌ regression",
            _ => "⚠️ incomparable inputs",
        }
    }

    /// A Markdown summary for a pull-request comment.
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut s = format!("## flamingo-eval compare: {}\n\n", self.headline());
        s.push_str(&format!(
            "Baseline `{}` → candidate `{}`. Metric values, Δ and its CI are ×100 (points). Fails on a drop of more than {} point(s) with p < {} \
             (two-sided paired bootstrap over samples, {} resamples, seed {}; {:.0}% CI of Δ).\n\n",
            self.baseline.display(),
            self.candidate.display(),
            c.max_drop,
            c.alpha,
            c.resamples,
            c.seed,
            100.0 * c.confidence
        ));
        if !self.incomparable.is_empty() {
            s.push_str("**Incomparable:**\n\n");
            for i in &self.incomparable {
                s.push_str(&format!("- `{}`: {}\n", i.benchmark, i.reason));
            }
            s.push('\n');
        }
        if !self.rows.is_empty() {
            s.push_str("| benchmark | metric | shots | trials | paired n | baseline | candidate | Δ | CI of Δ | p | errors (base → cand) | verdict |\n");
            s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|\n");
            for r in &self.rows {
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | [{}, {}] | {} | {} → {} | {} |\n",
                    r.benchmark,
                    r.metric_key,
                    r.shot,
                    r.trials,
                    r.n_paired,
                    fmt_num(Some(r.baseline), 2),
                    fmt_num(Some(r.candidate), 2),
                    if r.delta.is_finite() { format!("{:+.2}", r.delta) } else { "–".into() },
                    fmt_num(Some(r.ci_low), 2),
                    fmt_num(Some(r.ci_high), 2),
                    format_p(r.p_value),
                    r.baseline_errors,
                    r.candidate_errors,
                    r.verdict.text()
                ));
            }
            s.push('\n');
        }
        for n in &self.notes {
            s.push_str(&format!("- note: {n}\n"));
        }
        s
    }

    /// JUnit XML: one suite per benchmark, one case per shot count; incomparable benchmarks are errors.
    pub fn junit(&self) -> String {
        let mut suites: BTreeMap<String, Vec<TestCase>> = BTreeMap::new();
        for r in &self.rows {
            let numbers = format!(
                "{} ×100 at {} shot(s): baseline {:.4}, candidate {:.4}, delta {:+.4} (CI [{}, {}]), p = {}, paired samples {}, errors {} -> {}",
                r.metric_key,
                r.shot,
                r.baseline,
                r.candidate,
                r.delta,
                fmt_num(Some(r.ci_low), 4),
                fmt_num(Some(r.ci_high), 4),
                format_p(r.p_value),
                r.n_paired,
                r.baseline_errors,
                r.candidate_errors
            );
            let outcome = if r.verdict.fails() {
                Outcome::Failed { message: format!("{}: {}", r.verdict.text().trim_start_matches("❌ "), numbers), detail: numbers.clone() }
            } else {
                Outcome::Passed
            };
            suites.entry(r.benchmark.clone()).or_default().push(TestCase {
                classname: format!("flamingo-eval.compare.{}", r.benchmark),
                name: format!("{} shot {}", r.metric_key, r.shot),
                outcome,
                system_out: numbers,
            });
        }
        for i in &self.incomparable {
            suites.entry(i.benchmark.clone()).or_default().push(TestCase {
                classname: format!("flamingo-eval.compare.{}", i.benchmark),
                name: "comparable inputs".into(),
                outcome: Outcome::Error { message: i.reason.clone(), detail: i.reason.clone() },
                system_out: String::new(),
            });
        }
        let suites: Vec<TestSuite> = suites.into_iter().map(|(name, cases)| TestSuite { name, cases }).collect();
        junit::render("flamingo-eval compare", &suites)
    }
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Compares every benchmark of `baseline` with the same benchmark in `candidate` (each a results folder
/// or a folder of results folders).
pub fn compare(baseline: &Path, candidate: &Path, config: &CompareConfig) -> Result<Comparison> {
    if !(config.alpha > 0.0 && config.alpha < 1.0) {
        return Err(anyhow!("--alpha {} must be between 0 and 1", config.alpha));
    }
    if config.resamples == 0 || config.max_drop < 0.0 {
        return Err(anyhow!("--resamples must be positive and --max-drop not negative"));
    }
    let base_runs = discover_runs(baseline)?;
    let cand_runs = discover_runs(candidate)?;
    let mut cmp = Comparison {
        baseline: baseline.to_path_buf(),
        candidate: candidate.to_path_buf(),
        config: *config,
        rows: vec![],
        incomparable: vec![],
        notes: vec![],
    };
    let pairs: Vec<(&RunFolder, Option<&RunFolder>)> = if base_runs.len() == 1 && cand_runs.len() == 1 {
        vec![(&base_runs[0], Some(&cand_runs[0]))]
    } else {
        base_runs.iter().map(|b| (b, cand_runs.iter().find(|c| c.summary.benchmark == b.summary.benchmark))).collect()
    };
    for c in &cand_runs {
        if !pairs.iter().any(|(_, p)| p.map(|p| p.dir == c.dir).unwrap_or(false)) {
            cmp.notes.push(format!("{} ({}) has no baseline: not compared", c.dir.display(), c.summary.benchmark));
        }
    }
    for (b, c) in pairs {
        let same: Vec<&RunFolder> = cand_runs.iter().filter(|x| x.summary.benchmark == b.summary.benchmark).collect();
        if same.len() > 1 && !(base_runs.len() == 1 && cand_runs.len() == 1) {
            cmp.incomparable.push(Incomparable {
                benchmark: b.summary.benchmark.clone(),
                reason: format!(
                    "the candidate {} holds {} runs of this benchmark ({}): give the one to compare",
                    candidate.display(),
                    same.len(),
                    same.iter().map(|x| x.dir.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        }
        let Some(c) = c else {
            cmp.incomparable.push(Incomparable {
                benchmark: b.summary.benchmark.clone(),
                reason: format!("the candidate {} has no results for this benchmark (baseline: {})", candidate.display(), b.dir.display()),
            });
            continue;
        };
        match compare_runs(b, c, config, &mut cmp.notes) {
            Ok(rows) => cmp.rows.extend(rows),
            Err(reason) => cmp.incomparable.push(Incomparable { benchmark: b.summary.benchmark.clone(), reason }),
        }
    }
    Ok(cmp)
}

type Group<'a> = BTreeMap<(usize, usize), Vec<&'a SampleRecord>>;

fn groups(records: &[SampleRecord]) -> Group<'_> {
    let mut g: Group = BTreeMap::new();
    for r in records {
        g.entry((r.shot, r.trial)).or_default().push(r);
    }
    g
}

fn metric_name(key: &str) -> Option<MetricName> {
    Some(match key {
        "vqa_accuracy" => MetricName::VqaAccuracy,
        "cider" => MetricName::Cider,
        "roc_auc" => MetricName::RocAuc,
        "top_k_accuracy" => MetricName::TopKAccuracy,
        "exact_match" => MetricName::ExactMatch,
        _ => return None,
    })
}

fn short(h: &str) -> &str {
    h.char_indices().nth(12).map_or(h, |(i, _)| &h[..i])
}

fn compare_runs(b: &RunFolder, c: &RunFolder, cfg: &CompareConfig, notes: &mut Vec<String>) -> std::result::Result<Vec<ShotComparison>, String> {
    let (bi, ci) = (&b.identity, &c.identity);
    if bi.benchmark_sha256 != ci.benchmark_sha256 || bi.benchmark_name != ci.benchmark_name {
        return Err(format!(
            "different benchmark files: baseline {} ran `{}` (sha256 {}…), candidate {} ran `{}` (sha256 {}…)",
            b.dir.display(),
            bi.benchmark_name,
            short(&bi.benchmark_sha256),
            c.dir.display(),
            ci.benchmark_name,
            short(&ci.benchmark_sha256)
        ));
    }
    if b.summary.metric_key != c.summary.metric_key {
        return Err(format!("different metrics: baseline {}, candidate {}", b.summary.metric_key, c.summary.metric_key));
    }
    let metric = metric_name(&b.summary.metric_key).ok_or_else(|| format!("unknown metric `{}` in {}/summary.json", b.summary.metric_key, b.dir.display()))?;
    if bi.template_sha256 != ci.template_sha256 {
        notes.push(format!("{}: the prompt templates differ (sha256 {}… vs {}…)", bi.benchmark_name, short(&bi.template_sha256), short(&ci.template_sha256)));
    }
    if bi.model_manifest_sha256 != ci.model_manifest_sha256 {
        // the precision (model.yaml `dtype`, contract 4; absent = fp32) when it differs: an fp16 vs fp32 comparison
        let dtype = |r: &RunFolder| r.model_source().and_then(|(s, _)| s.dtype).unwrap_or_else(|| "fp32".into());
        let (bd, cd) = (dtype(b), dtype(c));
        let precision = if bd != cd { format!(" (precision {bd} → {cd})") } else { String::new() };
        notes.push(format!("{}: different models: {} → {}{precision}", bi.benchmark_name, bi.model_name, ci.model_name));
    }
    let common_trials = bi.trial_seeds.len().min(ci.trial_seeds.len());
    if bi.trial_seeds[..common_trials] != ci.trial_seeds[..common_trials] {
        return Err(format!("different trial seeds: baseline {:?}, candidate {:?}", bi.trial_seeds, ci.trial_seeds));
    }
    let brec = b.records().map_err(|e| format!("{e:#}"))?;
    let crec = c.records().map_err(|e| format!("{e:#}"))?;
    let bg = groups(&brec);
    let cg = groups(&crec);
    let missing: Vec<String> = bg.keys().filter(|k| !cg.contains_key(k)).map(|(s, t)| format!("shot {s} trial {t}")).collect();
    if !missing.is_empty() {
        return Err(format!("the candidate {} lacks {} of the baseline", c.dir.display(), missing.join(", ")));
    }
    let extra: Vec<String> = cg.keys().filter(|k| !bg.contains_key(k)).map(|(s, t)| format!("shot {s} trial {t}")).collect();
    if !extra.is_empty() {
        notes.push(format!("{}: the candidate also has {} (no baseline: not compared)", bi.benchmark_name, extra.join(", ")));
    }
    for (k, brs) in &bg {
        let crs = &cg[k];
        let bs: BTreeSet<&str> = brs.iter().map(|r| r.sample_id.as_str()).collect();
        let cs: BTreeSet<&str> = crs.iter().map(|r| r.sample_id.as_str()).collect();
        if bs != cs {
            let only_b: Vec<&str> = bs.difference(&cs).copied().collect();
            let only_c: Vec<&str> = cs.difference(&bs).copied().collect();
            return Err(format!(
                "different sample sets at shot {} trial {}: {} only in the baseline{}, {} only in the candidate{} (different --limit or data?)",
                k.0,
                k.1,
                only_b.len(),
                if only_b.is_empty() { String::new() } else { format!(" (e.g. {})", only_b.iter().take(3).copied().collect::<Vec<_>>().join(", ")) },
                only_c.len(),
                if only_c.is_empty() { String::new() } else { format!(" (e.g. {})", only_c.iter().take(3).copied().collect::<Vec<_>>().join(", ")) }
            ));
        }
    }

    let shots: BTreeSet<usize> = bg.keys().map(|k| k.0).collect();
    let mut rows = Vec::new();
    for shot in shots {
        let mut base_scorers = Vec::new();
        let mut cand_scorers = Vec::new();
        let mut sizes = Vec::new();
        let (mut be, mut ce, mut new_errors) = (0, 0, 0);
        for ((_, _), brs) in bg.range((shot, 0)..=(shot, usize::MAX)) {
            let trial = brs[0].trial;
            let crs = &cg[&(shot, trial)];
            let cmap: HashMap<&str, &SampleRecord> = crs.iter().map(|r| (r.sample_id.as_str(), *r)).collect();
            be += brs.iter().filter(|r| r.error.is_some()).count();
            ce += crs.iter().filter(|r| r.error.is_some()).count();
            // Samples that worked in the baseline and fail in the candidate.
            new_errors += brs.iter().filter(|r| r.error.is_none() && cmap[r.sample_id.as_str()].error.is_some()).count();
            let mut pairs: Vec<(&SampleRecord, &SampleRecord)> = brs
                .iter()
                .map(|r| (*r, cmap[r.sample_id.as_str()]))
                .filter(|(x, y)| is_scored(metric, x) && is_scored(metric, y))
                .collect();
            pairs.sort_by(|x, y| x.0.sample_id.cmp(&y.0.sample_id));
            let bl: Vec<&SampleRecord> = pairs.iter().map(|p| p.0).collect();
            let cl: Vec<&SampleRecord> = pairs.iter().map(|p| p.1).collect();
            sizes.push(pairs.len());
            base_scorers.push(prepare(metric, &bl).map_err(|e| format!("{e:#}"))?);
            cand_scorers.push(prepare(metric, &cl).map_err(|e| format!("{e:#}"))?);
        }
        if sizes.iter().any(|&n| n == 0) {
            return Err(format!("shot {shot}: no sample scored in both runs"));
        }
        let stat = |idx: &[Vec<usize>]| -> (f64, f64) {
            let t = idx.len() as f64;
            let bsum: f64 = base_scorers.iter().zip(idx).map(|(s, i)| metric_value(i, s)).sum();
            let csum: f64 = cand_scorers.iter().zip(idx).map(|(s, i)| metric_value(i, s)).sum();
            (bsum / t, csum / t)
        };
        let full: Vec<Vec<usize>> = sizes.iter().map(|&n| (0..n).collect()).collect();
        let (bv, cv) = stat(&full);
        let delta = cv - bv;
        if !delta.is_finite() && new_errors == 0 {
            // e.g. ROC-AUC over paired samples of a single class: nothing to test, so no verdict (new sample
            // errors are a verdict of their own).
            return Err(format!("shot {shot}: {} is undefined on the paired samples", b.summary.metric_key));
        }
        let deltas: Vec<f64> = (0..cfg.resamples)
            .into_par_iter()
            .map(|r| {
                let idx: Vec<Vec<usize>> = sizes.iter().map(|&n| resample_indices(n, cfg.seed, r)).collect();
                let (x, y) = stat(&idx);
                y - x
            })
            .collect();
        let mut ok: Vec<f64> = deltas.iter().copied().filter(|d| d.is_finite()).collect();
        let undefined = deltas.len() - ok.len();
        ok.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (lo, hi, p) = if ok.is_empty() || !delta.is_finite() {
            (f64::NAN, f64::NAN, 1.0)
        } else {
            let a = 1.0 - cfg.confidence;
            let tol = 1e-9 * delta.abs().max(1.0);
            let extreme = ok.iter().filter(|d| (*d - delta).abs() >= delta.abs() - tol).count();
            (quantile(&ok, a / 2.0), quantile(&ok, 1.0 - a / 2.0), ((1 + extreme) as f64 / (ok.len() + 1) as f64).min(1.0))
        };
        let significant = p < cfg.alpha;
        let verdict = if new_errors > 0 {
            Verdict::NewErrors
        } else if delta < -cfg.max_drop && significant {
            Verdict::Regression
        } else if delta < 0.0 && significant {
            Verdict::DropWithinThreshold
        } else if delta > 0.0 && significant {
            Verdict::Improvement
        } else {
            Verdict::NoSignificantChange
        };
        rows.push(ShotComparison {
            benchmark: bi.benchmark_name.clone(),
            metric_key: b.summary.metric_key.clone(),
            shot,
            trials: sizes.len(),
            n_paired: sizes.iter().sum(),
            baseline: bv,
            candidate: cv,
            delta,
            ci_low: lo,
            ci_high: hi,
            p_value: p,
            baseline_errors: be,
            candidate_errors: ce,
            undefined_resamples: undefined,
            verdict,
        });
        if undefined > 0 {
            notes.push(format!("{} shot {shot}: {undefined} resample(s) had a single class (ROC-AUC undefined) and were left out", bi.benchmark_name));
        }
    }
    Ok(rows)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}
