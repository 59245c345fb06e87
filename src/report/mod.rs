//! What users do with finished results folders: read them back ([`RunFolder`]), report them (Markdown,
//! HTML, shot-scaling plots, published numbers beside them), compare two of them with a paired bootstrap
//! (a CI regression gate with Markdown and JUnit output), merge the folders of a sharded run, and export
//! predictions for the VQAv2 / VizWiz test servers.
//!
//! Everything here reads the files `flamingo-eval run` writes (`run.json`, `summary.json`,
//! `samples.jsonl`); nothing here runs a model. Metric values are recomputed only through
//! [`crate::engine::scoring`] and [`crate::metrics`], so the numbers agree with `run`'s to the bit.
//! Every file written here is written atomically (temporary file, then rename).

pub mod compare;
pub mod document;
pub mod export;
pub mod junit;
pub mod merge;
pub mod plot;
pub mod reference;
pub mod render;
pub mod samples;

use crate::engine::records::{read_records, SampleRecord};
use crate::engine::run::RunIdentity;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A confidence interval as `summary.json` stores it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    #[serde(default)]
    pub confidence: f64,
}

/// One trial of one shot count, as stored in `summary.json` (NaN is stored as null).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredTrial {
    pub trial: usize,
    #[serde(default)]
    pub seed: u64,
    pub n: usize,
    pub errors: usize,
    pub value: Option<f64>,
    pub ci: Option<Interval>,
    #[serde(default)]
    pub per_answer_type: std::collections::BTreeMap<String, f64>,
}

/// One shot count, as stored in `summary.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredShot {
    pub shot: usize,
    pub trials: Vec<StoredTrial>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub ci: Option<Interval>,
    pub n: usize,
    pub errors: usize,
}

/// The parts of `summary.json` the report reads (provenance is kept as JSON).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredSummary {
    pub benchmark: String,
    pub model: String,
    pub metric: String,
    pub metric_key: String,
    pub results: Vec<StoredShot>,
    #[serde(default)]
    pub skipped_records: Vec<String>,
    pub provenance: serde_json::Value,
}

/// A finished results folder of `flamingo-eval run` (or `merge`).
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    pub identity: RunIdentity,
    pub summary: StoredSummary,
}

impl RunFolder {
    pub fn load(dir: &Path) -> Result<RunFolder> {
        let id_path = dir.join("run.json");
        let sum_path = dir.join("summary.json");
        if !id_path.is_file() {
            bail!("{}: no run.json here; give a folder written by `flamingo-eval run` (or `merge`)", dir.display());
        }
        let identity: RunIdentity = serde_json::from_str(
            &std::fs::read_to_string(&id_path).with_context(|| format!("could not read {}", id_path.display()))?,
        )
        .with_context(|| format!("{}: not a flamingo-eval run identity", id_path.display()))?;
        if !sum_path.is_file() {
            bail!(
                "{}: no summary.json: the run has not finished (rerun the same `flamingo-eval run` command; it resumes){}",
                dir.display(),
                if identity.shard.is_some() { ", or this is a shard: merge the shards first with `flamingo-eval merge`" } else { "" }
            );
        }
        let summary: StoredSummary = serde_json::from_str(
            &std::fs::read_to_string(&sum_path).with_context(|| format!("could not read {}", sum_path.display()))?,
        )
        .with_context(|| format!("{}: not a flamingo-eval summary", sum_path.display()))?;
        Ok(RunFolder { dir: dir.to_path_buf(), identity, summary })
    }

    pub fn samples_path(&self) -> PathBuf {
        self.dir.join("samples.jsonl")
    }

    pub fn records(&self) -> Result<Vec<SampleRecord>> {
        let p = self.samples_path();
        if !p.is_file() {
            bail!("{}: no samples.jsonl in this results folder", self.dir.display());
        }
        read_records(&p, false)
    }

    /// "benchmark · model", for legends and headings.
    pub fn label(&self) -> String {
        format!("{} · {}", self.summary.benchmark, self.summary.model)
    }

    /// The model's source identity (checkpoint hash, exporter preset) and where it was read: the summary's
    /// `provenance.model_source`, or for older folders the model folder's model.yaml when it still exists and
    /// is the very file the run used (its SHA-256 is run.json's `model_manifest_sha256`).
    pub fn model_source(&self) -> Option<(crate::engine::run::ModelSource, &'static str)> {
        if let Some(v) = self.summary.provenance.get("model_source") {
            if let Ok(s) = serde_json::from_value(v.clone()) {
                return Some((s, "summary.json provenance.model_source"));
            }
        }
        let dir = self.provenance_str("model_dir")?;
        let manifest = Path::new(&dir).join("model.yaml");
        if crate::hashing::sha256_file_hex(&manifest).ok()? != self.identity.model_manifest_sha256 {
            return None;
        }
        let y: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&manifest).ok()?).ok()?;
        let src = y.get("source")?;
        Some((
            crate::engine::run::ModelSource {
                checkpoint_sha256: src.get("checkpoint_sha256")?.as_str()?.to_string(),
                preset: src.get("preset").and_then(|p| p.as_str()).map(String::from),
                dtype: y.get("dtype").and_then(|d| d.as_str()).map(String::from),
            },
            "the model folder's model.yaml (same SHA-256 as the run's)",
        ))
    }

    pub fn provenance_str(&self, key: &str) -> Option<String> {
        match self.summary.provenance.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            v => Some(v.to_string()),
        }
    }
}

/// The run folders under `path`: the folder itself when it holds `run.json`, else its subfolders that do
/// (sorted by name; shard folders of a sharded run are not runs of their own and are left out).
pub fn discover_runs(path: &Path) -> Result<Vec<RunFolder>> {
    if !path.is_dir() {
        bail!("{}: no such results folder", path.display());
    }
    if path.join("run.json").is_file() {
        return Ok(vec![RunFolder::load(path)?]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("could not list {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("run.json").is_file())
        .collect();
    dirs.sort();
    let runs: Vec<RunFolder> = dirs.iter().map(|d| RunFolder::load(d)).collect::<Result<_>>()?;
    let runs: Vec<RunFolder> = runs.into_iter().filter(|r| r.identity.shard.is_none()).collect();
    if runs.is_empty() {
        return Err(anyhow!(
            "{}: no results here (no run.json in it or its subfolders); give the --out folder of `flamingo-eval run`",
            path.display()
        ));
    }
    Ok(runs)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let name = path.file_name().ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("could not write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("could not move {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// `x` with `digits` decimals, or "–" for a missing value.
pub fn fmt_num(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".into(),
    }
}
