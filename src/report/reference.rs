//! Published numbers as data: `results/reference/*.yaml`, one file per paper table, each row one model on
//! one benchmark at the table's shot counts. The report puts a run beside the row whose benchmark name and
//! model name (or an alias) match.

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
    /// Other names of the same model (e.g. exported model directories' `name:`).
    #[serde(default)]
    pub aliases: Vec<String>,
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

/// Rows of `tables` for this benchmark, metric and model (by name or alias, ignoring case and punctuation).
pub fn matches<'a>(tables: &'a [ReferenceTable], benchmark: &str, metric: &str, model: &str) -> Vec<Match<'a>> {
    let m = normalize(model);
    let mut out = Vec::new();
    for t in tables {
        for r in &t.rows {
            if r.benchmark == benchmark && r.metric == metric && (normalize(&r.model) == m || r.aliases.iter().any(|a| normalize(a) == m)) {
                out.push(Match { table: t, row: r });
            }
        }
    }
    out
}
