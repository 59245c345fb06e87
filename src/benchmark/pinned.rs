//! Pinned demonstrations (`--demos FILE`): the demonstrations of each (query sample, shot, trial) taken from
//! a file instead of the benchmark's own selection, so that two models — or this harness and another tool —
//! are compared on identical prompts.
//!
//! The file is a JSON array of records or JSONL (one record a line). A record:
//! ```json
//! {"sample_id": "13000", "shot": 4, "trial": 0, "demo_ids": ["1000", "2001", "5002", "3000"], "text_only_demo_ids": []}
//! ```
//! - `sample_id` (or `query_id`, or `question_id`): the query sample's id, string or integer.
//! - `shot`: the shot count; `trial`: the trial index (0-based, default 0).
//! - `demo_ids`: demonstration-split ids in prompt order (the first is farthest from the query); exactly
//!   `shot` of them when `shot > 0`, none at shot 0.
//! - `text_only_demo_ids`: at shot 0 under the `text_only_demos` zero-shot policy, exactly `zero_shot.demos`
//!   ids (none under `no_demos`); empty when `shot > 0`. Both lists default to empty.
//! - Any other field is ignored, so a run's own `samples.jsonl` is a valid pins file: replaying it gives
//!   the same prompts (on another model: exactly the same prompts).
//!
//! Validation happens when the file is loaded against a benchmark, before any model work: unknown query or
//! demonstration ids, a trial the benchmark has no seed for, list lengths that do not match the shot count,
//! and duplicate records are errors naming the file, the line (JSONL) or record (array) and the id. A file
//! must cover every evaluated (sample, shot, trial); with `fallback` the uncovered ones get the benchmark's
//! own selection and are counted ([`Coverage`]). Records for samples, shots or trials not evaluated are
//! validated but otherwise unused.
//!
//! Pinned requests are assembled by the same code as selected ones (`Benchmark::build_requests`), so a
//! pin that lists the demonstrations the selection would have chosen gives a byte-identical request.

use super::{Benchmark, RequestSet};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A pins file resolved against one benchmark: demonstration-split indices per
/// (query-split index, shot, trial).
#[derive(Debug, Clone)]
pub struct DemoPins {
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (part of a run's identity).
    pub sha256: String,
    /// Number of records in the file.
    pub records: usize,
    pins: HashMap<(usize, usize, usize), Vec<usize>>,
}

/// How many of the evaluated (sample, shot, trial) a pins file covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub evaluated: usize,
    pub pinned: usize,
    /// (sample id, shot, trial) of the uncovered ones, in evaluation order.
    pub missing: Vec<(String, usize, usize)>,
}

/// Requests for one (shot, trial) with pinned demonstrations.
#[derive(Debug, Clone, Default)]
pub struct PinnedRequests {
    pub set: RequestSet,
    /// Query samples whose demonstrations came from the file.
    pub pinned: usize,
    /// Query samples not in the file, given the benchmark's own selection (only with fallback).
    pub fallback: usize,
}

/// Pinned-demonstration settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinsConfig {
    pub path: PathBuf,
    /// Select the demonstrations of samples the file does not cover with the benchmark's own method
    /// (default: such samples are an error).
    pub fallback: bool,
}

/// What `summary.json` records about pinned demonstrations.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, PartialEq, Eq)]
pub struct PinsProvenance {
    pub file: String,
    pub sha256: String,
    pub fallback_allowed: bool,
    /// Requests of the run's sweep whose demonstrations came from the file.
    pub pinned: usize,
    /// Requests of the run's sweep given the benchmark's own selection.
    pub fallback: usize,
}

struct RawPin {
    origin: String,
    sample_id: String,
    shot: usize,
    trial: usize,
    demo_ids: Vec<String>,
    text_only_demo_ids: Vec<String>,
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

fn parse_record(v: &Value, origin: &str) -> Result<RawPin> {
    let o = v.as_object().ok_or_else(|| anyhow!("{origin}: not a JSON object"))?;
    let (key, idv) = ["sample_id", "query_id", "question_id"]
        .iter()
        .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        .ok_or_else(|| anyhow!("{origin}: missing `sample_id` (or `query_id` / `question_id`)"))?;
    let sample_id = id_of(idv).ok_or_else(|| anyhow!("{origin}: `{key}` must be a string or an integer, got {idv}"))?;
    let uint = |k: &str, default: Option<usize>| -> Result<usize> {
        match o.get(k) {
            None | Some(Value::Null) => default.ok_or_else(|| anyhow!("{origin}: missing `{k}`")),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| anyhow!("{origin}: `{k}` must be a non-negative integer, got {v}")),
        }
    };
    let shot = uint("shot", None)?;
    let trial = uint("trial", Some(0))?;
    let ids = |k: &str| -> Result<Vec<String>> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| id_of(v).ok_or_else(|| anyhow!("{origin}: `{k}` must list string or integer ids, got {v}")))
                .collect(),
            Some(v) => bail!("{origin}: `{k}` must be a list of ids, got {v}"),
        }
    };
    Ok(RawPin { origin: origin.to_string(), sample_id, shot, trial, demo_ids: ids("demo_ids")?, text_only_demo_ids: ids("text_only_demo_ids")? })
}

fn parse_text(text: &str) -> Result<Vec<RawPin>> {
    if text.trim_start().starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(text).map_err(|e| anyhow!("not a JSON array of records: {e}"))?;
        all.iter().enumerate().map(|(i, v)| parse_record(v, &format!("record {}", i + 1))).collect()
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let origin = format!("line {}", i + 1);
            let v: Value = serde_json::from_str(line).map_err(|e| anyhow!("{origin}: not a JSON record: {e}"))?;
            out.push(parse_record(&v, &origin)?);
        }
        Ok(out)
    }
}

impl DemoPins {
    /// Reads and validates a pins file against `bench`.
    pub fn load(path: &Path, bench: &Benchmark) -> Result<DemoPins> {
        let bytes = std::fs::read(path).with_context(|| format!("--demos: could not read {}", path.display()))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| anyhow!("{}: not UTF-8 text: {e}", path.display()))?;
        Self::parse(text, path, &hex::encode(Sha256::digest(&bytes)), bench)
    }

    fn parse(text: &str, path: &Path, sha256: &str, bench: &Benchmark) -> Result<DemoPins> {
        let file = path.display();
        let raw = parse_text(text).map_err(|e| anyhow!("{file}: {e:#}"))?;
        let bfile = bench.path.display();
        let mut pins = HashMap::new();
        let mut origins: HashMap<(usize, usize, usize), String> = HashMap::new();
        for p in &raw {
            let at = format!("{file}: {}", p.origin);
            let q = bench
                .query
                .position(&p.sample_id)
                .ok_or_else(|| anyhow!("{at}: query sample `{}` is not in the query split of {bfile}", p.sample_id))?;
            bench.trial_seed(p.trial).map_err(|e| anyhow!("{at}: sample `{}`: {e}", p.sample_id))?;
            let what = format!("sample `{}`, shot {}, trial {}", p.sample_id, p.shot, p.trial);
            let list = if p.shot > 0 {
                if !p.text_only_demo_ids.is_empty() {
                    bail!("{at}: {what}: text_only_demo_ids are only for zero-shot records (shot 0); a {}-shot record lists its demonstrations in demo_ids", p.shot);
                }
                if p.demo_ids.len() != p.shot {
                    bail!("{at}: {what}: shot is {} but demo_ids lists {} demonstration(s)", p.shot, p.demo_ids.len());
                }
                &p.demo_ids
            } else {
                if !p.demo_ids.is_empty() {
                    bail!("{at}: {what}: a zero-shot record has no demo_ids ({} listed); zero-shot demonstrations are text-only: use text_only_demo_ids", p.demo_ids.len());
                }
                let want = bench.effective_shots(0);
                if p.text_only_demo_ids.len() != want {
                    bail!(
                        "{at}: {what}: the benchmark's zero-shot policy ({}) uses {want} text-only demonstration(s) but text_only_demo_ids lists {}",
                        match bench.spec.zero_shot.policy {
                            super::spec::ZeroShotPolicy::TextOnlyDemos => "zero_shot.policy text_only_demos",
                            super::spec::ZeroShotPolicy::NoDemos => "zero_shot.policy no_demos",
                        },
                        p.text_only_demo_ids.len()
                    );
                }
                &p.text_only_demo_ids
            };
            let idx = list
                .iter()
                .map(|d| {
                    bench.demos.position(d).ok_or_else(|| anyhow!("{at}: {what}: demonstration `{d}` is not in the demonstration split of {bfile}"))
                })
                .collect::<Result<Vec<usize>>>()?;
            // Random and RICES selection never show the query's own record (its answer) or a demo twice.
            if let Some(own) = bench.overlap[q].filter(|o| idx.contains(o)) {
                bail!("{at}: {what}: demonstration `{}` is the query's own record (its answer would be in the prompt); pin other demonstrations", bench.demos.samples[own].id);
            }
            if let Some(d) = super::spec::first_repeat(&idx) {
                bail!("{at}: {what}: demonstration `{}` is listed twice", bench.demos.samples[d].id);
            }
            let key = (q, p.shot, p.trial);
            if let Some(first) = origins.insert(key, p.origin.clone()) {
                bail!("{at}: {what} is pinned twice (first at {first})");
            }
            pins.insert(key, idx);
        }
        Ok(DemoPins { path: path.to_path_buf(), sha256: sha256.to_string(), records: raw.len(), pins })
    }

    /// Demonstration-split indices pinned for query-split index `q` at (shot, trial), in prompt order.
    pub fn get(&self, q: usize, shot: usize, trial: usize) -> Option<&[usize]> {
        self.pins.get(&(q, shot, trial)).map(|v| v.as_slice())
    }

    /// Coverage of the given query-split indices at (shot, trial), added to `cov`.
    pub fn add_coverage(&self, bench: &Benchmark, shot: usize, trial: usize, query_indices: &[usize], cov: &mut Coverage) {
        for &q in query_indices {
            cov.evaluated += 1;
            if self.get(q, shot, trial).is_some() {
                cov.pinned += 1;
            } else {
                cov.missing.push((bench.query.samples[q].id.clone(), shot, trial));
            }
        }
    }

    /// Coverage of a sweep: every shot × trial over the benchmark's evaluated samples (at most `limit`).
    pub fn coverage(&self, bench: &Benchmark, shots: &[usize], trials: &[usize], limit: Option<usize>) -> Result<Coverage> {
        let mut cov = Coverage::default();
        for &shot in shots {
            for &trial in trials {
                let mut idx = bench.eval_indices(trial)?;
                if let Some(l) = limit {
                    idx.truncate(l);
                }
                self.add_coverage(bench, shot, trial, &idx, &mut cov);
            }
        }
        Ok(cov)
    }

    /// Errors (naming the first uncovered samples) when `cov` is incomplete and fallback is not allowed.
    pub fn check_coverage(&self, cov: &Coverage, fallback: bool) -> Result<()> {
        if cov.missing.is_empty() || fallback {
            return Ok(());
        }
        let first: Vec<String> = cov.missing.iter().take(5).map(|(s, shot, t)| format!("sample `{s}` shot {shot} trial {t}")).collect();
        bail!(
            "{}: does not pin the demonstrations of {} of the {} evaluated (sample, shot, trial) (e.g. {}{}); \
             add records for them, or pass --demos-fallback to select theirs with the benchmark's own method",
            self.path.display(),
            cov.missing.len(),
            cov.evaluated,
            first.join(", "),
            if cov.missing.len() > first.len() { ", ..." } else { "" }
        )
    }

    /// A one-line note on how many evaluated samples fall back to the benchmark's selection (None when the
    /// file covers them all).
    pub fn fallback_note(&self, bench: &Benchmark, cov: &Coverage) -> Option<String> {
        if cov.missing.is_empty() {
            return None;
        }
        Some(format!(
            "--demos {}: {} of {} evaluated (sample, shot, trial) are not in the file; their demonstrations are selected by the benchmark ({})",
            self.path.display(),
            cov.missing.len(),
            cov.evaluated,
            match bench.spec.demo_selection.method {
                super::DemoMethod::Random => "random",
                super::DemoMethod::Rices => "RICES",
            }
        ))
    }
}

impl Benchmark {
    /// Requests for the given query-split indices at (shot, trial) with the demonstrations `pins` lists.
    /// Samples the file does not cover are an error, or with `fallback` get [`Self::requests_for`]'s
    /// selection (RICES then needs `prepare_rices`). Assembled exactly as [`Self::requests_for`] does.
    pub fn requests_pinned(&self, shot: usize, trial: usize, query_indices: &[usize], pins: &DemoPins, fallback: bool) -> Result<PinnedRequests> {
        let mut lists: Vec<Option<Vec<usize>>> = query_indices.iter().map(|&q| pins.get(q, shot, trial).map(|l| l.to_vec())).collect();
        let missing: Vec<usize> = query_indices.iter().zip(&lists).filter(|(_, l)| l.is_none()).map(|(&q, _)| q).collect();
        if !missing.is_empty() {
            if !fallback {
                let mut cov = Coverage::default();
                pins.add_coverage(self, shot, trial, query_indices, &mut cov);
                pins.check_coverage(&cov, false)?;
            }
            let mut selected = self.select_demos(shot, trial, &missing)?.into_iter();
            for l in lists.iter_mut().filter(|l| l.is_none()) {
                *l = selected.next();
            }
        }
        let lists: Vec<Vec<usize>> = lists.into_iter().map(|l| l.expect("every list filled")).collect();
        let set = self.build_requests(shot, trial, query_indices, &lists)?;
        Ok(PinnedRequests { set, pinned: query_indices.len() - missing.len(), fallback: missing.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arrays_jsonl_and_id_aliases() {
        let a = parse_text(r#"[{"query_id": 5, "shot": 2, "demo_ids": [1, "b"]}, {"sample_id": "x", "shot": 0, "trial": 1, "text_only_demo_ids": ["c"], "prompt": "ignored"}]"#).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].sample_id.as_str(), a[0].shot, a[0].trial), ("5", 2, 0));
        assert_eq!(a[0].demo_ids, vec!["1", "b"]);
        assert_eq!(a[0].origin, "record 1");
        assert_eq!((a[1].trial, a[1].text_only_demo_ids.len()), (1, 1));
        let l = parse_text("{\"question_id\": 7, \"shot\": 1, \"demo_ids\": [\"q\"]}\n\n{\"sample_id\": \"8\", \"shot\": 0, \"demo_ids\": null}\n").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].origin, "line 3");
        assert!(l[1].demo_ids.is_empty());
    }

    #[test]
    fn malformed_records_name_their_place() {
        let e = |t: &str| format!("{:#}", parse_text(t).err().unwrap());
        assert!(e("{\"shot\": 1}\n").contains("line 1: missing `sample_id`"));
        assert!(e("{\"sample_id\": \"a\"}\n").contains("missing `shot`"));
        assert!(e("{\"sample_id\": \"a\", \"shot\": -1}\n").contains("`shot` must be a non-negative integer"));
        assert!(e("{\"sample_id\": \"a\", \"shot\": 1, \"demo_ids\": \"b\"}\n").contains("must be a list"));
        assert!(e("{\"sample_id\": 1.5, \"shot\": 1}\n").contains("string or an integer"));
        assert!(e("{\"sample_id\": \"a\", \"shot\": 0}\nnot json\n").contains("line 2: not a JSON record"));
        assert!(e("[{\"sample_id\": \"a\", \"shot\": 1}, 3]").contains("record 2: not a JSON object"));
    }
}
