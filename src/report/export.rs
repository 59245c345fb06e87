//! Test-server submissions from a results folder: VQAv2 test-dev (`[{"question_id": int, "answer": str}]`,
//! EvalAI) and VizWiz (`[{"image": "VizWiz_test_00000000.jpg", "answer": str}]`). Every question of the
//! given questions file must have exactly one prediction; anything missing, failed or extra is an error.

use crate::engine::records::SampleRecord;
use crate::report::RunFolder;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// VQAv2 test-dev / test-std: [{question_id, answer}].
    Vqav2,
    /// VizWiz VQA test: [{image, answer}].
    Vizwiz,
}

fn question_keys(format: ExportFormat, questions: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(questions).with_context(|| format!("could not read {}", questions.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", questions.display()))?;
    let id_text = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let keys: Option<Vec<String>> = match (format, &v) {
        (ExportFormat::Vqav2, Value::Object(o)) => {
            o.get("questions").and_then(|q| q.as_array()).map(|l| l.iter().filter_map(|q| q.get("question_id").and_then(id_text)).collect())
        }
        // The official VizWiz test.json: a list of {image, question}.
        (ExportFormat::Vizwiz, Value::Array(l)) => Some(l.iter().filter_map(|q| q.get("image").and_then(id_text)).collect()),
        // OpenFlamingo's VQA-format VizWiz files: image_id is the file name.
        (ExportFormat::Vizwiz, Value::Object(o)) => {
            o.get("questions").and_then(|q| q.as_array()).map(|l| l.iter().filter_map(|q| q.get("image_id").and_then(id_text)).collect())
        }
        _ => None,
    };
    keys.filter(|k| !k.is_empty()).ok_or_else(|| {
        anyhow!(
            "{}: no questions found (expected {})",
            questions.display(),
            match format {
                ExportFormat::Vqav2 => "the official VQAv2 layout {\"questions\": [{\"question_id\": ...}]}",
                ExportFormat::Vizwiz => "VizWiz's test.json [{\"image\": ...}] or the VQA-format {\"questions\": [{\"image_id\": ...}]}",
            }
        )
    })
}

fn key_of(format: ExportFormat, r: &SampleRecord) -> Result<String> {
    Ok(match format {
        ExportFormat::Vqav2 => r.sample_id.clone(),
        ExportFormat::Vizwiz => {
            let query = r.media.last().and_then(|m| m.first()).ok_or_else(|| anyhow!("sample {}: no query image in the record", r.sample_id))?;
            Path::new(query).file_name().map(|f| f.to_string_lossy().to_string()).ok_or_else(|| anyhow!("sample {}: bad image path {query}", r.sample_id))?
        }
    })
}

/// The submission JSON for (shot, trial) of the run in `dir`, checked against the questions file.
pub fn export(dir: &Path, format: ExportFormat, shot: usize, trial: usize, questions: &Path) -> Result<(String, usize)> {
    let run = RunFolder::load(dir)?;
    let records: Vec<SampleRecord> = run.records()?.into_iter().filter(|r| r.shot == shot && r.trial == trial).collect();
    if records.is_empty() {
        bail!("{}: no records at shot {shot} trial {trial} (the run has shots {:?} and {} trial(s)): pick them with --shot and --trial", dir.display(), run.identity.shots, run.identity.trial_seeds.len());
    }
    let wanted = question_keys(format, questions)?;
    let mut answers: HashMap<String, &SampleRecord> = HashMap::new();
    let mut failed = Vec::new();
    for r in &records {
        if r.error.is_some() || r.prediction.is_none() {
            failed.push(r.sample_id.clone());
            continue;
        }
        let k = key_of(format, r)?;
        if answers.insert(k.clone(), r).is_some() {
            bail!("{}: two records answer {k} at shot {shot} trial {trial}", dir.display());
        }
    }
    if !failed.is_empty() {
        bail!(
            "{}: {} sample(s) failed at shot {shot} trial {trial} (e.g. {}): fix the cause (see their `error` in samples.jsonl), delete those lines and rerun the same `run` command to redo them",
            dir.display(),
            failed.len(),
            failed.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let wanted_set: BTreeSet<&String> = wanted.iter().collect();
    let missing: Vec<&String> = wanted.iter().filter(|k| !answers.contains_key(*k)).collect();
    if !missing.is_empty() {
        bail!(
            "{}: {} of the {} question(s) in {} have no prediction at shot {shot} trial {trial} (e.g. {}): the run must cover the whole split (no --limit, no samples.count)",
            dir.display(),
            missing.len(),
            wanted.len(),
            questions.display(),
            missing.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let extra: Vec<&String> = answers.keys().filter(|k| !wanted_set.contains(k)).collect();
    if !extra.is_empty() {
        bail!(
            "{}: {} prediction(s) are for questions not in {} (e.g. {}): export against the questions file of the split that was run",
            dir.display(),
            extra.len(),
            questions.display(),
            extra.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut out = Vec::with_capacity(wanted.len());
    for k in &wanted {
        let r = answers[k];
        let answer = r.prediction.clone().unwrap_or_default();
        out.push(match format {
            ExportFormat::Vqav2 => {
                let qid: i64 = k.parse().map_err(|_| anyhow!("question_id {k} is not an integer (the VQAv2 server needs integers)"))?;
                json!({"question_id": qid, "answer": answer})
            }
            ExportFormat::Vizwiz => json!({"image": k, "answer": answer}),
        });
    }
    Ok((serde_json::to_string(&Value::Array(out))? + "\n", wanted.len()))
}
