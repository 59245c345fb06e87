//! Published numbers as data: `results/reference/*.yaml`, one file per paper table, each row one model on
//! one benchmark at the table's shot counts. The report puts a run beside a row only when the model's source
//! identity recorded at export matches the row: the checkpoint's SHA-256 (`checkpoint_sha256:` of the row),
//! or the exporter preset (`presets:`) of an export whose weights were read from a checkpoint file. A display
//! name never matches on its own: a random-initialised model named "OpenFlamingo-3B" is not that model.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One table of a paper.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceTable {
    /// Paper and table, e.g. "Flamingo (Alayrac et al., 2022), Table 3".
    pub source: String,
    #[serde(default)]
    pub url: Option<String>,
    /// How demonstrations were chosen (random, rices).
    pub demo_selection: String,
    /// Averaging over trials, when the paper says.
    #[serde(default)]
    pub trials: Option<String>,
    pub shots: Vec<usize>,
    pub rows: Vec<ReferenceRow>,
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRow {
    /// The harness's benchmark name (`name:` of benchmarks/*.yaml).
    pub benchmark: String,
    pub model: String,
    /// Other names of the same model (documentation only: names are never matched).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Exporter presets (`export_openflamingo --preset NAME`, recorded as `source.preset` in model.yaml) that
    /// export this published model.
    #[serde(default)]
    pub presets: Vec<String>,
    /// SHA-256 of the published checkpoint file(s) (`source.checkpoint_sha256` of an export of them).
    #[serde(default)]
    pub checkpoint_sha256: Vec<String>,
    /// The evaluation split of the published number (test-dev, Karpathy test, val...).
    pub split: String,
    /// The harness's metric key (vqa_accuracy, cider, roc_auc, exact_match, top_k_accuracy).
    pub metric: String,
    /// One value per shot count of the table (null where the paper has none).
    pub values: Vec<Option<f64>>,
}

/// A published row that matches a run.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    pub table: &'a ReferenceTable,
    pub row: &'a ReferenceRow,
    /// How the row was matched (for the report).
    pub how: String,
}

pub use crate::engine::run::ModelSource;

/// A checkpoint hash that names a file's content (64 hex digits), not a random initialisation
/// (`random-init:<seed>`) or a random model of a published structure (`published-structure:...`).
pub fn is_file_hash(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

impl Match<'_> {
    pub fn value_at(&self, shot: usize) -> Option<f64> {
        let i = self.table.shots.iter().position(|&s| s == shot)?;
        self.row.values.get(i).copied().flatten()
    }
}

fn normalize(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// Loads every `*.yaml` in `dir` (sorted by name). A missing folder is no tables.
pub fn load_dir(dir: &Path) -> Result<Vec<ReferenceTable>> {
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("could not list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().map(|e| e == "yaml" || e == "yml").unwrap_or(false))
        .collect();
    files.sort();
    files.iter().map(|f| load_file(f)).collect()
}

pub fn load_file(path: &Path) -> Result<ReferenceTable> {
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut t: ReferenceTable = serde_yaml::from_str(&text).map_err(|e| {
        anyhow::anyhow!("{}: {e} (the layout is in docs/report.md)", path.display())
    })?;
    for (i, r) in t.rows.iter().enumerate() {
        if r.values.len() != t.shots.len() {
            bail!(
                "{}: rows[{i}] ({} on {}): {} value(s) for {} shot count(s) {:?}: give one value (or null) per shot count",
                path.display(),
                r.model,
                r.benchmark,
                r.values.len(),
                t.shots.len(),
                t.shots
            );
        }
    }
    t.file = path.to_path_buf();
    Ok(t)
}

/// Rows of `tables` for this benchmark and metric whose model is the one `source` identifies: its checkpoint
/// hash is one of the row's, or its preset is one of the row's and its weights came from a checkpoint file.
/// No source (an older results folder whose model folder is gone), no match.
pub fn matches<'a>(tables: &'a [ReferenceTable], benchmark: &str, metric: &str, source: Option<&ModelSource>) -> Vec<Match<'a>> {
    let Some(src) = source else { return vec![] };
    let mut out = Vec::new();
    for t in tables {
        for r in t.rows.iter().filter(|r| r.benchmark == benchmark && r.metric == metric) {
            let how = if r.checkpoint_sha256.iter().any(|h| h.eq_ignore_ascii_case(&src.checkpoint_sha256)) {
                Some(format!("matched by checkpoint sha256 `{}`", src.checkpoint_sha256))
            } else if is_file_hash(&src.checkpoint_sha256) && src.preset.as_ref().is_some_and(|p| r.presets.contains(p)) {
                Some(format!(
                    "matched by exporter preset `{}`; checkpoint sha256 `{}`{}",
                    src.preset.as_deref().unwrap_or(""),
                    src.checkpoint_sha256,
                    if r.checkpoint_sha256.is_empty() { " (the table lists no published hash to check it against)" } else { " is not the published file's" }
                ))
            } else {
                None
            };
            // A listed published hash that differs: the preset's structure with other weights (fine-tuned?).
            let how = how.filter(|_| r.checkpoint_sha256.is_empty() || r.checkpoint_sha256.iter().any(|h| h.eq_ignore_ascii_case(&src.checkpoint_sha256)));
            if let Some(how) = how {
                out.push(Match { table: t, row: r, how });
            }
        }
    }
    out
}

/// Rows named like `model` (name or alias, ignoring case and punctuation) that [`matches`] did not match:
/// the report says why they are not shown.
pub fn named_like<'a>(tables: &'a [ReferenceTable], benchmark: &str, metric: &str, model: &str) -> Vec<&'a ReferenceRow> {
    let m = normalize(model);
    tables
        .iter()
        .flat_map(|t| t.rows.iter())
        .filter(|r| r.benchmark == benchmark && r.metric == metric && (normalize(&r.model) == m || r.aliases.iter().any(|a| normalize(a) == m)))
        .collect()
}
