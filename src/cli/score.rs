//! `flamingo-eval score`: score prediction files in the official layouts with the metrics in
//! `crate::metrics`, printing a table (default) or one JSON object with the official tools' keys.

use crate::metrics::bootstrap::{bootstrap_ci, bootstrap_ci_skip_undefined, bootstrap_mean_ci, BootstrapConfig, ConfidenceInterval};
use crate::metrics::caption::{bleu_from_stats, bleu_of_stats, bleu_stats, rouge_l, CiderPrepared};
use crate::metrics::classification::{roc_auc, top_k_hits};
use crate::metrics::formats::{self, ClassRecord};
use crate::metrics::numeric::numpy_mean;
use crate::metrics::videoqa::exact_match_scores;
use crate::metrics::vqa::{evaluate_vqa, VqaMode};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// Score predictions against references with the official metrics (reimplemented in Rust).
#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(subcommand)]
    pub task: ScoreTask,
}

#[derive(Subcommand, Debug)]
pub enum ScoreTask {
    /// COCO-style captioning: CIDEr-D, BLEU-1..4, ROUGE-L (pycocoevalcap 1.2 rules).
    Caption(CaptionArgs),
    /// VQA accuracy (VQAv2 / OK-VQA / TextVQA / VizWiz layouts).
    Vqa(VqaArgs),
    /// Binary ROC-AUC or multi-class top-1/top-5 accuracy.
    Classification(ClassificationArgs),
    /// Video QA (MSRVTT-QA / MSVD-QA): exact match after VQA normalisation.
    Videoqa(VideoQaArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub bootstrap: crate::cli::common::BootstrapArgs,
    #[command(flatten)]
    pub legacy_bootstrap: crate::cli::common::LegacyBootstrapArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct CaptionArgs {
    /// COCO caption annotation file ({"images", "annotations"}).
    #[arg(long)]
    pub annotations: PathBuf,
    /// Results file: [{"image_id", "caption"}]. The scored image set is the result images.
    #[arg(long)]
    pub results: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct VqaArgs {
    /// Questions file ({"questions": [...]}).
    #[arg(long)]
    pub questions: PathBuf,
    /// Annotations file ({"annotations": [...]}) with 10 answers per question.
    #[arg(long)]
    pub annotations: PathBuf,
    /// Results file: [{"question_id", "answer"}].
    #[arg(long)]
    pub results: PathBuf,
    /// `official`: the VQA team's vqaEval.py (every annotated question needs a result);
    /// `openflamingo`: OpenFlamingo's lenient copy (scores the predicted questions).
    #[arg(long, value_enum, default_value_t = ModeArg::Official)]
    pub mode: ModeArg,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeArg {
    Official,
    Openflamingo,
}

#[derive(Args, Debug)]
pub struct ClassificationArgs {
    /// JSON array or CSV of {"id", "label", "score"} (binary) or {"id", "label", "scores": [...]}
    /// (CSV: score_0, score_1, ... columns).
    #[arg(long)]
    pub input: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct VideoQaArgs {
    /// Annotations: [{"question_id" or "id", "answer"}].
    #[arg(long)]
    pub annotations: PathBuf,
    /// Results: [{"question_id", "answer"}].
    #[arg(long)]
    pub results: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let (common, out) = match args.task {
        ScoreTask::Caption(a) => (a.common.clone(), caption(&a)?),
        ScoreTask::Vqa(a) => (a.common.clone(), vqa(&a)?),
        ScoreTask::Classification(a) => (a.common.clone(), classification(&a)?),
        ScoreTask::Videoqa(a) => (a.common.clone(), videoqa(&a)?),
    };
    match common.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&out.json)?),
        Format::Table => print!("{}", out.table),
    }
    Ok(ExitCode::SUCCESS)
}

struct Output {
    json: Value,
    table: String,
}

fn cfg(c: &CommonArgs) -> BootstrapConfig {
    c.bootstrap.config(Some(&c.legacy_bootstrap))
}

fn ci_json(ci: &ConfidenceInterval, scale: f64) -> Value {
    json!({"low": ci.low * scale, "high": ci.high * scale, "confidence": ci.confidence,
           "resamples": ci.resamples, "seed": ci.seed, "method": "percentile bootstrap"})
}

/// The `scale` of the JSON values: the official tools' own scale, stated.
const SCALE_FRACTION: &str = "fraction (0-1, as the official tool prints it; the papers and the table output print x100)";
const SCALE_PERCENT: &str = "x100 (percent, as the official tool prints it)";

fn ci_text(ci: Option<&ConfidenceInterval>, scale: f64, digits: usize) -> String {
    match ci {
        Some(ci) => format!("[{:.*}, {:.*}]", digits, ci.low * scale, digits, ci.high * scale),
        None => "-".into(),
    }
}

fn bootstrap_note(c: &CommonArgs) -> String {
    let c = c.bootstrap.resolved(Some(&c.legacy_bootstrap));
    if c.resamples == 0 {
        "Confidence intervals: disabled (--bootstrap-resamples 0).\n".into()
    } else {
        format!(
            "Confidence intervals: {:.0}% percentile bootstrap, {} resamples, seed {}.\n",
            c.confidence * 100.0,
            c.resamples,
            c.seed
        )
    }
}

const CAPTION_IMPL: &str = "pycocoevalcap 1.2 rules (Bleu, Rouge, Cider), PTB tokenizer reimplemented in Rust";

fn caption(a: &CaptionArgs) -> anyhow::Result<Output> {
    let raw = formats::read_caption_files(&a.annotations, &a.results)?;
    for id in &raw.empty_candidates {
        eprintln!(
            "warning: {}: image_id {id} has an empty caption; scored as the official tool does (no tokens)",
            a.results.display()
        );
    }
    let odd = raw.line_terminator_samples();
    if !odd.is_empty() {
        let what = format!("{} / {}", a.annotations.display(), a.results.display());
        eprintln!("{}", crate::metrics::caption::line_terminator_warning(&what, &odd));
    }
    let samples = formats::tokenize_captions(&raw);
    let n = samples.len();
    let cider_prep = CiderPrepared::new(&samples);
    let all: Vec<usize> = (0..n).collect();
    let cider = cider_prep.score(&all);
    let stats = bleu_stats(&samples);
    let bleu = bleu_from_stats(&stats, &all);
    let rouge = rouge_l(&samples);
    let c = cfg(&a.common);
    let mut cis: Vec<(&str, ConfidenceInterval)> = Vec::new();
    if c.resamples > 0 {
        cis.push(("CIDEr", bootstrap_ci(n, &c, |idx| cider_prep.score(idx).corpus)?));
        for k in 0..4 {
            let name = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"][k];
            cis.push((name, bootstrap_ci(n, &c, |idx| bleu_from_stats(&stats, idx)[k])?));
        }
        cis.push(("ROUGE_L", bootstrap_ci(n, &c, |idx| {
            let v: Vec<f64> = idx.iter().map(|&i| rouge.per_sample[i]).collect();
            numpy_mean(&v)
        })?));
    }
    let _ = bleu_of_stats; // per-image BLEU is available to library callers
    let values: Vec<(&str, f64)> = vec![
        ("Bleu_1", bleu[0]),
        ("Bleu_2", bleu[1]),
        ("Bleu_3", bleu[2]),
        ("Bleu_4", bleu[3]),
        ("ROUGE_L", rouge.corpus),
        ("CIDEr", cider.corpus),
    ];
    let mut obj = Map::new();
    for (k, v) in &values {
        obj.insert(k.to_string(), json!(v));
    }
    obj.insert("num_images".into(), json!(n));
    obj.insert("implementation".into(), json!({
        "Bleu_1..4": format!("BLEU ({CAPTION_IMPL})"),
        "ROUGE_L": format!("ROUGE-L ({CAPTION_IMPL})"),
        "CIDEr": format!("CIDEr-D ({CAPTION_IMPL})"),
    }));
    obj.insert("not_computed".into(), json!(["METEOR", "SPICE"]));
    let mut ci_obj = Map::new();
    for (k, ci) in &cis {
        ci_obj.insert(k.to_string(), ci_json(ci, 1.0));
    }
    obj.insert("confidence_intervals".into(), Value::Object(ci_obj));
    obj.insert("scale".into(), json!(SCALE_FRACTION));
    let mut t = format!("Caption metrics on {n} images ({CAPTION_IMPL}), ×100 as the papers print them\n");
    t += &format!("{:<14} {:>10}  {:>22}\n", "metric", "score", "CI");
    for (k, v) in &values {
        let ci = cis.iter().find(|(name, _)| name == k).map(|(_, c)| c);
        t += &format!("{:<14} {:>10.2}  {:>22}\n", format!("{k} ×100"), 100.0 * v, ci_text(ci, 100.0, 2));
    }
    t += "METEOR and SPICE are not computed (they need Java jars / a CoreNLP download).\n";
    t += "pycocoevalcap prints these as fractions (×1); --format json keeps its fractions.\n";
    t += &bootstrap_note(&a.common);
    Ok(Output { json: Value::Object(obj), table: t })
}

fn vqa(a: &VqaArgs) -> anyhow::Result<Output> {
    let mode = match a.mode {
        ModeArg::Official => VqaMode::Official,
        ModeArg::Openflamingo => VqaMode::OpenFlamingo,
    };
    let items = formats::read_vqa_files(&a.questions, &a.annotations, &a.results, mode)?;
    let report = evaluate_vqa(&items, mode);
    let c = cfg(&a.common);
    let ci = if c.resamples > 0 { Some(bootstrap_mean_ci(&report.per_question, &c)?) } else { None };
    let to_map = |v: &[(String, f64)]| -> Value {
        Value::Object(v.iter().map(|(k, x)| (k.clone(), json!(x))).collect())
    };
    let mut obj = Map::new();
    obj.insert("overall".into(), json!(report.overall));
    obj.insert("perQuestionType".into(), to_map(&report.per_question_type));
    obj.insert("perAnswerType".into(), to_map(&report.per_answer_type));
    obj.insert("num_questions".into(), json!(items.len()));
    obj.insert("mode".into(), json!(mode));
    obj.insert("implementation".into(), json!(mode.describe()));
    let mut cis = Map::new();
    if let Some(ci) = &ci {
        cis.insert("overall".into(), ci_json(ci, 100.0));
    }
    obj.insert("confidence_intervals".into(), Value::Object(cis));
    obj.insert("scale".into(), json!(SCALE_PERCENT));
    let mut t = format!("{} on {} questions\n", mode.describe(), items.len());
    if let Some(w) = crate::metrics::vqa::few_answers_warning(items.iter().map(|i| i.answers.len()), None) {
        let w = format!("{}: {w}", a.annotations.display());
        eprintln!("{w}");
        obj.insert("warnings".into(), json!([w.clone()]));
        t += &format!("{w}\n");
    }
    t += &format!("Overall accuracy ×100: {:.2}  CI {}\n", report.overall, ci_text(ci.as_ref(), 100.0, 2));
    if !report.per_answer_type.is_empty() {
        t += "Per answer type (accuracy ×100):\n";
        for (k, v) in &report.per_answer_type {
            t += &format!("  {k:<30} {v:>6.2}\n");
        }
    }
    if !report.per_question_type.is_empty() {
        t += "Per question type (accuracy ×100):\n";
        for (k, v) in &report.per_question_type {
            t += &format!("  {k:<30} {v:>6.2}\n");
        }
    }
    t += &bootstrap_note(&a.common);
    Ok(Output { json: Value::Object(obj), table: t })
}

fn classification(a: &ClassificationArgs) -> anyhow::Result<Output> {
    let recs = formats::read_classification(&a.input)?;
    let c = cfg(&a.common);
    let mut obj = Map::new();
    let mut cis = Map::new();
    let mut t = String::new();
    obj.insert("num_samples".into(), json!(recs.len()));
    match &recs[0] {
        ClassRecord::Binary { .. } => {
            let (labels, scores): (Vec<bool>, Vec<f64>) = recs
                .iter()
                .map(|r| match r {
                    ClassRecord::Binary { label, score, .. } => (*label, *score),
                    ClassRecord::Multi { .. } => unreachable!("checked by the reader"),
                })
                .unzip();
            obj.insert("implementation".into(), json!("ROC-AUC (scikit-learn roc_auc_score rules; ties count 1/2)"));
            let auc = match roc_auc(&labels, &scores) {
                Ok(v) => v,
                Err(e @ crate::metrics::MetricError::SingleClass(_)) => {
                    // Undefined, not an error of the input and never a number: say so and print "undefined".
                    eprintln!("warning: {}: {e}", a.input.display());
                    obj.insert("roc_auc".into(), Value::Null);
                    obj.insert("roc_auc_undefined".into(), json!(e.to_string()));
                    obj.insert("confidence_intervals".into(), Value::Object(cis));
                    t += &format!("ROC-AUC (scikit-learn rules) on {} samples: undefined ({e})\n", labels.len());
                    return Ok(Output { json: Value::Object(obj), table: t });
                }
                Err(e) => return Err(e).with_context(|| a.input.display().to_string()),
            };
            obj.insert("roc_auc".into(), json!(auc));
            let mut ci = None;
            if c.resamples > 0 {
                // A resample that draws a single class has no ROC-AUC: it is left out, as `run` and `compare` do.
                let (x, skipped) = bootstrap_ci_skip_undefined(labels.len(), &c, |idx| {
                    let l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
                    let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
                    roc_auc(&l, &s).ok()
                })?;
                if skipped > 0 {
                    eprintln!("note: {skipped} of {} resample(s) had a single class (ROC-AUC undefined) and were left out", c.resamples);
                    obj.insert("bootstrap_resamples_skipped".into(), json!(skipped));
                }
                cis.insert("roc_auc".into(), ci_json(&x, 1.0));
                ci = Some(x);
            }
            t += &format!("ROC-AUC ×100 (scikit-learn rules) on {} samples: {:.2}  CI {}\n", labels.len(), 100.0 * auc, ci_text(ci.as_ref(), 100.0, 2));
        }
        ClassRecord::Multi { scores, .. } => {
            let nclass = scores.len();
            let (rows, labels): (Vec<Vec<f64>>, Vec<usize>) = recs
                .iter()
                .map(|r| match r {
                    ClassRecord::Multi { label, scores, .. } => (scores.clone(), *label),
                    ClassRecord::Binary { .. } => unreachable!("checked by the reader"),
                })
                .unzip();
            obj.insert("implementation".into(), json!("top-k accuracy; ties rank the higher class index first (as scikit-learn)"));
            t += &format!("Top-k accuracy ×100 on {} samples, {} classes (ties: higher class index first)\n", rows.len(), nclass);
            for k in [1usize, 5] {
                let hits = top_k_hits(&rows, &labels, k)?;
                let acc = hits.iter().sum::<f64>() / hits.len() as f64;
                let key = format!("top{k}_accuracy");
                obj.insert(key.clone(), json!(acc));
                let ci = if c.resamples > 0 { Some(bootstrap_mean_ci(&hits, &c)?) } else { None };
                if let Some(ci) = &ci {
                    cis.insert(key.clone(), ci_json(ci, 1.0));
                }
                t += &format!("  top-{k} ×100: {:.2}  CI {}\n", 100.0 * acc, ci_text(ci.as_ref(), 100.0, 2));
            }
        }
    }
    obj.insert("confidence_intervals".into(), Value::Object(cis));
    obj.insert("scale".into(), json!(SCALE_FRACTION));
    t += "scikit-learn prints these as fractions (×1); --format json keeps its fractions.\n";
    t += &bootstrap_note(&a.common);
    Ok(Output { json: Value::Object(obj), table: t })
}

fn videoqa(a: &VideoQaArgs) -> anyhow::Result<Output> {
    let triples = formats::read_videoqa_files(&a.annotations, &a.results)?;
    let pairs: Vec<(String, String)> = triples.iter().map(|(_, p, g)| (p.clone(), g.clone())).collect();
    let hits = exact_match_scores(&pairs);
    let acc = hits.iter().sum::<f64>() / hits.len() as f64;
    let c = cfg(&a.common);
    let ci = if c.resamples > 0 { Some(bootstrap_mean_ci(&hits, &c)?) } else { None };
    let mut cis = Map::new();
    if let Some(ci) = &ci {
        cis.insert("accuracy".into(), ci_json(ci, 100.0));
    }
    let obj = json!({
        "accuracy": acc * 100.0,
        "num_questions": hits.len(),
        "implementation": "top-1 exact match after VQA answer normalisation (punctuation, lowercase, number words, articles)",
        "scale": SCALE_PERCENT,
        "confidence_intervals": Value::Object(cis),
    });
    let mut t = format!("Video QA exact match ×100 (VQA normalisation) on {} questions: {:.2}  CI {}\n", hits.len(), acc * 100.0, ci_text(ci.as_ref(), 100.0, 2));
    t += &bootstrap_note(&a.common);
    Ok(Output { json: obj, table: t })
}
