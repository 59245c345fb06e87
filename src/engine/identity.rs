//! A results folder's identity (`run.json`): the settings that must match for the folder to be resumed.
//! A run into a folder of another run is refused, naming what differs.

use super::run::Shard;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// Settings that must match for a results folder to be resumed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RunIdentity {
    pub benchmark_name: String,
    pub benchmark_sha256: String,
    pub template_sha256: String,
    pub model_name: String,
    pub model_manifest_sha256: String,
    pub shots: Vec<usize>,
    pub trial_seeds: Vec<u64>,
    pub limit: Option<usize>,
    /// Present only in a shard's folder (absent in an unsharded or merged run, so their run.json agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// SHA-256 of the `--demos` file (absent when demonstrations are not pinned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo_pins_sha256: Option<String>,
    /// Generation settings overridden on the command line (`--gen`), with their effective values (absent
    /// when none; the benchmark file's own settings are covered by `benchmark_sha256`). Trial seeds given
    /// with `--seeds` are the `trial_seeds` above.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub generation_overrides: std::collections::BTreeMap<String, serde_json::Value>,
    /// `--batching padded` (absent for the default equal-length batching, so older run.json files agree):
    /// padded results may differ in the last bits, so they are never resumed or merged with equal-length ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<String>,
}

/// Refuses a folder holding results of another run; true when it holds this run's `run.json`.
pub(crate) fn check_identity(id_path: &Path, out: &Path, identity: &RunIdentity) -> Result<bool> {
    if !id_path.exists() {
        return Ok(false);
    }
    let prev: RunIdentity = serde_json::from_str(&std::fs::read_to_string(id_path)?)
        .with_context(|| format!("{}: not a flamingo-eval run identity", id_path.display()))?;
    if prev != *identity {
        bail!(
            "{} holds results of a different run (model, benchmark files, shots, seeds, limit or overrides differ: {}). \
             Use another --out folder, or delete it to start over",
            out.display(),
            describe_identity_diff(&prev, identity)
        );
    }
    Ok(true)
}

fn describe_identity_diff(a: &RunIdentity, b: &RunIdentity) -> String {
    let mut d = Vec::new();
    if a.benchmark_name != b.benchmark_name || a.benchmark_sha256 != b.benchmark_sha256 {
        d.push("benchmark file");
    }
    if a.template_sha256 != b.template_sha256 {
        d.push("prompt template");
    }
    if a.model_manifest_sha256 != b.model_manifest_sha256 {
        d.push("model");
    }
    if a.shots != b.shots {
        d.push("shots");
    }
    if a.trial_seeds != b.trial_seeds {
        d.push("trial seeds (trials.seeds, --seeds, --num-trials)");
    }
    if a.limit != b.limit {
        d.push("limit");
    }
    if a.shard != b.shard {
        d.push("shard");
    }
    if a.demo_pins_sha256 != b.demo_pins_sha256 {
        d.push("pinned demonstrations (--demos file)");
    }
    if a.generation_overrides != b.generation_overrides {
        d.push("generation overrides (--gen)");
    }
    if a.batching != b.batching {
        d.push("batching (--batching)");
    }
    d.join(", ")
}

