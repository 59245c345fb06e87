//! The sample browser of the report: `samples.html` beside `report.html`, with every record of the reported
//! runs (query image and demonstration thumbnails in prompt order, the exact prompt with its `<image>`
//! positions, raw and processed prediction, references, per-sample score, candidate scores, error), filters
//! (benchmark/run, shot, trial, outcome, text search), paging, and with several runs of one benchmark a
//! "changed" view (samples whose prediction or score differs, side by side).
//!
//! Layout, all beside the report so the folder is self-contained (no network resource in the page):
//! - `samples.html`: the page (styles and script inline);
//! - `report_samples/index.js`: runs and one compact column per filter key (one entry per record), the changed
//!   pairs;
//! - `report_samples/chunk_NNNNN.js`: the records, [`CHUNK`] per file, loaded only for the page shown;
//! - `report_samples/search.js`: one lower-cased search string per record, loaded on the first search;
//! - `report_samples/media/<sha256 prefix>.jpg`: downscaled copies of the media, one per distinct file content.
//!
//! Data files are JavaScript (`FE.index(...)`, `FE.chunk(...)`) rather than JSON because a page opened from
//! `file://` may load scripts but not fetch files. Every text is inserted with `textContent`, never as HTML.
//! The folder is written beside the final one and renamed into place, so a failed report leaves no
//! half-written browser.

use crate::engine::records::SampleRecord;
use crate::report::RunFolder;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Records per data chunk.
pub const CHUNK: usize = 200;
/// Longest side of a thumbnail, in pixels.
pub const THUMB_PX: u32 = 160;
/// `report` writes the browser by default when the reported runs hold at most this many records in all
/// (`--samples` writes it for any size, `--no-samples` never).
pub const DEFAULT_MAX_RECORDS: usize = 20_000;
/// Candidate scores kept per record (the best ones; the target class is always kept).
pub const MAX_CANDIDATES: usize = 10;
/// The folder of the data files, beside samples.html.
pub const DATA_DIR: &str = "report_samples";

pub struct BrowserOutcome {
    pub page: PathBuf,
    pub records: usize,
    pub thumbnails: usize,
    /// Media files that could not be read or decoded (shown as a placeholder naming the file).
    pub missing_media: Vec<String>,
    pub changed: usize,
    /// Pairs of runs of one benchmark compared in the changed view (baseline, candidate).
    pub comparisons: usize,
    /// Results folders without samples.jsonl (shown with no records).
    pub without_records: Vec<String>,
}

/// Outcome class of one record, one character in the index: correct, partial credit, incorrect, error,
/// unscored (no per-sample correctness: CIDEr, unannotated samples).
pub fn outcome(metric_key: &str, r: &SampleRecord) -> char {
    if r.error.is_some() {
        return 'e';
    }
    if metric_key == "roc_auc" {
        // The per-sample value is P(positive); correctness is the chosen class against the label.
        return match (r.prediction.as_deref(), r.target["name"].as_str()) {
            (Some(p), Some(n)) => {
                if p == n {
                    'c'
                } else {
                    'i'
                }
            }
            _ => 'u',
        };
    }
    match r.metric {
        Some(m) if m.is_finite() && m >= 1.0 - 1e-9 => 'c',
        Some(m) if m.is_finite() && m > 0.0 => 'p',
        Some(m) if m.is_finite() => 'i',
        _ => 'u',
    }
}

/// The references shown for a record: VQA answers, caption references, the class name, a video QA answer.
fn references(target: &Value) -> Vec<String> {
    for key in ["answers", "references"] {
        if let Some(a) = target[key].as_array() {
            return a.iter().map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string())).collect();
        }
    }
    for key in ["name", "answer"] {
        if let Some(s) = target[key].as_str() {
            return vec![s.to_string()];
        }
    }
    if target.is_null() {
        vec![]
    } else {
        vec![target.to_string()]
    }
}

/// Per-sample CIDEr-D of a captioning run, per (shot, trial) set (the IDF is the set's, as in the summary):
/// (shot, trial, sample_id) -> value ×100.
fn per_sample_cider(records: &[SampleRecord]) -> Result<HashMap<(usize, usize, String), f64>> {
    use crate::benchmark::spec::MetricName;
    use crate::engine::scoring::{is_scored, prepare, Prepared};
    let mut sets: BTreeMap<(usize, usize), Vec<&SampleRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| is_scored(MetricName::Cider, r)) {
        sets.entry((r.shot, r.trial)).or_default().push(r);
    }
    let mut out = HashMap::new();
    for ((shot, trial), mut recs) in sets {
        recs.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
        if let Prepared::Cider(c) = prepare(MetricName::Cider, &recs)? {
            let all: Vec<usize> = (0..recs.len()).collect();
            for (r, v) in recs.iter().zip(c.score(&all).per_sample) {
                out.insert((shot, trial, r.sample_id.clone()), 100.0 * v);
            }
        }
    }
    Ok(out)
}

/// A media file read, hashed and downscaled once.
struct Thumb {
    /// File name stem under media/ (the first 16 hex digits of the file's SHA-256).
    name: Option<String>,
    bytes: Option<Vec<u8>>,
}

fn make_thumb(path: &Path) -> Thumb {
    let Ok(data) = std::fs::read(path) else { return Thumb { name: None, bytes: None } };
    let name = hex::encode(&Sha256::digest(&data)[..8]);
    let Ok(img) = image::load_from_memory(&data) else { return Thumb { name: None, bytes: None } };
    let small = img.thumbnail(THUMB_PX, THUMB_PX).to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82);
    if enc.encode_image(&small).is_err() {
        return Thumb { name: None, bytes: None };
    }
    Thumb { name: Some(name), bytes: Some(out.into_inner()) }
}

/// One record as the page reads it (short keys: the data of 75,000 records must stay small).
fn record_json(run: usize, r: &SampleRecord, st: char, score: Option<f64>, thumbs: &HashMap<String, Thumb>) -> Value {
    let media: Vec<Value> = r
        .media
        .iter()
        .map(|frames| {
            let first = frames.first().map(String::as_str).unwrap_or("");
            let mut m = serde_json::Map::new();
            match thumbs.get(first).and_then(|t| t.name.clone()) {
                Some(n) => {
                    m.insert("f".into(), json!(n));
                }
                None => {
                    m.insert("x".into(), json!(first));
                }
            }
            if frames.len() > 1 {
                m.insert("n".into(), json!(frames.len()));
            }
            Value::Object(m)
        })
        .collect();
    let mut o = serde_json::Map::new();
    o.insert("r".into(), json!(run));
    o.insert("id".into(), json!(r.sample_id));
    o.insert("s".into(), json!(r.shot));
    o.insert("t".into(), json!(r.trial));
    o.insert("seed".into(), json!(r.trial_seed));
    o.insert("p".into(), json!(r.prompt));
    o.insert("d".into(), json!(r.demo_ids));
    if !r.text_only_demo_ids.is_empty() {
        o.insert("dt".into(), json!(r.text_only_demo_ids));
    }
    o.insert("m".into(), Value::Array(media));
    o.insert("ref".into(), json!(references(&r.target)));
    o.insert("raw".into(), json!(r.raw_output));
    o.insert("pr".into(), json!(r.prediction));
    o.insert("sc".into(), json!(score.filter(|v| v.is_finite())));
    o.insert("st".into(), json!(st.to_string()));
    if let Some(c) = &r.candidate_scores {
        let target = r.target["name"].as_str();
        let mut order: Vec<usize> = (0..c.len()).collect();
        order.sort_by(|&a, &b| c[b].score.partial_cmp(&c[a].score).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
        let mut keep: Vec<usize> = order.iter().copied().take(MAX_CANDIDATES).collect();
        if let Some(t) = target {
            if let Some(i) = order.iter().copied().find(|&i| c[i].candidate == t) {
                if !keep.contains(&i) {
                    keep.push(i);
                }
            }
        }
        let rank = |i: usize| order.iter().position(|&j| j == i).unwrap_or(0) + 1;
        o.insert(
            "c".into(),
            Value::Array(keep.iter().map(|&i| json!([c[i].candidate, c[i].score.is_finite().then_some(c[i].score), rank(i)])).collect()),
        );
        o.insert("nc".into(), json!(c.len()));
    }
    if let Some(e) = &r.error {
        o.insert("e".into(), json!(e));
    }
    if let Some(ens) = &r.ensemble_demo_ids {
        o.insert("ens".into(), json!(ens));
    }
    Value::Object(o)
}

/// The lower-cased text a search matches: sample id, the query part of the prompt, outputs, references, error.
fn search_text(r: &SampleRecord) -> String {
    let query = r.prompt.rsplit("<|endofchunk|>").next().unwrap_or(&r.prompt);
    let mut s = format!("{} {} {} {}", r.sample_id, query, r.raw_output.as_deref().unwrap_or(""), r.prediction.as_deref().unwrap_or(""));
    for x in references(&r.target) {
        s.push(' ');
        s.push_str(&x);
    }
    if let Some(e) = &r.error {
        s.push(' ');
        s.push_str(e);
    }
    s.to_lowercase()
}

/// Resolves a media path of a record: as written (relative to the working directory of the run, usually the
/// project folder), else relative to the folder of the run's benchmark file, else relative to a folder above
/// the results folder (a results folder under the project, reported from elsewhere).
fn resolve(path: &str, bench_dir: Option<&Path>, run_dir: &Path) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() || p.exists() {
        return p;
    }
    let run_abs = std::fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    bench_dir
        .map(|d| d.join(&p))
        .into_iter()
        .chain(run_abs.ancestors().skip(1).map(|a| a.join(&p)))
        .find(|q| q.exists())
        .unwrap_or(p)
}

fn same_score(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

fn js_call(func: &str, args: &[&Value]) -> String {
    let body: Vec<String> = args.iter().map(|v| serde_json::to_string(v).expect("JSON values serialise")).collect();
    // U+2028/2029 are valid in JSON and (since ES2019) in JS strings; escape them anyway for older engines.
    format!("{func}({});\n", body.join(",")).replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029")
}

/// Writes samples.html and report_samples/ into `out` for `runs`.
pub fn write_browser(runs: &[&RunFolder], out: &Path) -> Result<BrowserOutcome> {
    let mut all: Vec<(usize, Vec<SampleRecord>)> = Vec::new();
    let mut without_records = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if !run.samples_path().is_file() {
            // Kept as a run with no records, so that run k of the page is run k of the report.
            without_records.push(run.dir.display().to_string());
            all.push((i, vec![]));
            continue;
        }
        all.push((i, run.records().with_context(|| format!("sample browser: reading the records of {}", run.dir.display()))?));
    }

    // Media: every distinct path read, hashed and downscaled once (in parallel); files of equal content share
    // one thumbnail.
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (ri, recs) in &all {
        let bench_dir = runs[*ri].provenance_str("benchmark_file").and_then(|f| Path::new(&f).parent().map(Path::to_path_buf));
        for r in recs {
            for frames in &r.media {
                if let Some(f) = frames.first() {
                    if seen.insert(f.clone()) {
                        paths.push((f.clone(), resolve(f, bench_dir.as_deref(), &runs[*ri].dir)));
                    }
                }
            }
        }
    }
    let thumbs: HashMap<String, Thumb> = paths.par_iter().map(|(k, p)| (k.clone(), make_thumb(p))).collect();
    let mut missing: Vec<String> = thumbs.iter().filter(|(_, t)| t.name.is_none()).map(|(k, _)| k.clone()).collect();
    missing.sort();

    let data_dir = out.join(DATA_DIR);
    let tmp = out.join(format!(".{DATA_DIR}.tmp{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("could not remove {}", tmp.display()))?;
    }
    std::fs::create_dir_all(tmp.join("media")).with_context(|| format!("could not create {}", tmp.display()))?;
    let mut written = std::collections::HashSet::new();
    for t in thumbs.values() {
        if let (Some(n), Some(b)) = (&t.name, &t.bytes) {
            if written.insert(n.clone()) {
                std::fs::write(tmp.join("media").join(format!("{n}.jpg")), b).with_context(|| format!("could not write a thumbnail into {}", tmp.display()))?;
            }
        }
    }

    // Records, in run order then file order (the run's request order).
    let mut col_run = Vec::new();
    let mut col_shot = Vec::new();
    let mut col_trial = Vec::new();
    let mut col_status = String::new();
    let mut search = Vec::new();
    let mut records_json = Vec::new();
    let mut keys: Vec<HashMap<(usize, usize, String), usize>> = Vec::new();
    let mut offsets: Vec<usize> = Vec::new();
    let mut runs_json = Vec::new();
    for (ri, recs) in &all {
        let run = runs[*ri];
        let key = run.summary.metric_key.as_str();
        let cider = if key == "cider" { per_sample_cider(recs)? } else { HashMap::new() };
        let mut k = HashMap::new();
        offsets.push(records_json.len());
        for r in recs {
            let st = outcome(key, r);
            let score = if key == "cider" { cider.get(&r.key()).copied() } else { r.metric };
            k.insert(r.key(), records_json.len());
            col_run.push(*ri);
            col_shot.push(r.shot);
            col_trial.push(r.trial);
            col_status.push(st);
            search.push(search_text(r));
            records_json.push(record_json(*ri, r, st, score, &thumbs));
        }
        keys.push(k);
        runs_json.push(json!({
            "label": format!("{} · {}", run.summary.benchmark, run.summary.model),
            "benchmark": run.summary.benchmark,
            "model": run.summary.model,
            "dir": run.dir.display().to_string(),
            "metric": run.summary.metric,
            "metric_key": key,
            "n": recs.len(),
        }));
    }

    // Changed pairs: per benchmark, the first run given against each later one, matched by (shot, trial, id).
    let mut pairs: Vec<Value> = Vec::new();
    let mut comparisons = Vec::new();
    for (a, ra) in runs.iter().enumerate() {
        if runs[..a].iter().any(|x| x.summary.benchmark == ra.summary.benchmark) {
            continue;
        }
        for (b, _) in runs.iter().enumerate().skip(a + 1).filter(|(_, r)| r.summary.benchmark == ra.summary.benchmark) {
            let mut n = 0;
            for r in &all[a].1 {
                let ia = keys[a][&r.key()];
                let Some(&ib) = keys[b].get(&r.key()) else { continue };
                let rb_rec = &all[b].1[ib - offsets[b]];
                let sa = records_json[ia]["sc"].as_f64();
                let sb = records_json[ib]["sc"].as_f64();
                if r.prediction != rb_rec.prediction || r.error.is_some() != rb_rec.error.is_some() || !same_score(sa, sb) {
                    pairs.push(json!([ia, ib]));
                    n += 1;
                }
            }
            comparisons.push(json!({"a": a, "b": b, "changed": n}));
        }
    }

    let n = records_json.len();
    let n_comparisons = comparisons.len();
    let mut files = 0;
    for (ci, chunk) in records_json.chunks(CHUNK).enumerate() {
        let v = Value::Array(chunk.to_vec());
        std::fs::write(tmp.join(format!("chunk_{ci:05}.js")), js_call("FE.chunk", &[&json!(ci), &v]))
            .with_context(|| format!("could not write a data chunk into {}", tmp.display()))?;
        files += 1;
    }
    let index = json!({
        "version": 1,
        "chunk": CHUNK,
        "chunks": files,
        "n": n,
        "runs": runs_json,
        "run": col_run,
        "shot": col_shot,
        "trial": col_trial,
        "status": col_status,
        "pairs": pairs,
        "comparisons": comparisons,
        "missing_media": missing.len(),
    });
    std::fs::write(tmp.join("index.js"), js_call("FE.index", &[&index])).with_context(|| format!("could not write {}", tmp.join("index.js").display()))?;
    std::fs::write(tmp.join("search.js"), js_call("FE.searchData", &[&json!(search)]))
        .with_context(|| format!("could not write {}", tmp.join("search.js").display()))?;

    // Into place: the old folder goes only once the new one is complete.
    if data_dir.exists() {
        let old = out.join(format!(".{DATA_DIR}.old{}", std::process::id()));
        std::fs::rename(&data_dir, &old).with_context(|| format!("could not move {} aside", data_dir.display()))?;
        std::fs::rename(&tmp, &data_dir).with_context(|| format!("could not move {} into place", tmp.display()))?;
        std::fs::remove_dir_all(&old).with_context(|| format!("could not remove {}", old.display()))?;
    } else {
        std::fs::rename(&tmp, &data_dir).with_context(|| format!("could not move {} into place", tmp.display()))?;
    }
    let page = out.join("samples.html");
    crate::report::write_atomic(&page, page_html().as_bytes())?;
    let changed = pairs.len();
    Ok(BrowserOutcome { page, records: n, thumbnails: written.len(), missing_media: missing, changed, comparisons: n_comparisons, without_records })
}

/// Where `compare`'s user finds the samples that changed, side by side.
pub fn changed_view_hint(baseline: &Path, candidate: &Path) -> String {
    format!(
        "samples whose prediction or score changed, side by side: flamingo-eval report --results {} {} --out DIR --samples, then open DIR/samples.html#changed",
        shell_word(&baseline.display().to_string()),
        shell_word(&candidate.display().to_string())
    )
}

fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The page: static HTML, CSS and script; all data comes from report_samples/.
pub fn page_html() -> String {
    include_str!("browser/samples.html")
        .replace("/*STYLE*/", include_str!("browser/samples.css"))
        .replace("/*SCRIPT*/", include_str!("browser/samples.js"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(target: Value, prediction: Option<&str>, metric: Option<f64>, error: Option<&str>) -> SampleRecord {
        SampleRecord {
            sample_id: "1".into(),
            shot: 0,
            trial: 0,
            trial_seed: 0,
            prompt: "<image>Q:".into(),
            demo_ids: vec![],
            text_only_demo_ids: vec![],
            media: vec![],
            media_sha256: vec![],
            target,
            raw_output: prediction.map(String::from),
            prediction: prediction.map(String::from),
            tokens: None,
            sequence_score: None,
            candidate_scores: None,
            metric,
            error: error.map(String::from),
            ensemble_demo_ids: None,
        }
    }

    #[test]
    fn outcome_classes() {
        let vqa = json!({"kind": "vqa", "answers": ["a"]});
        assert_eq!(outcome("vqa_accuracy", &rec(vqa.clone(), Some("a"), Some(1.0), None)), 'c');
        assert_eq!(outcome("vqa_accuracy", &rec(vqa.clone(), Some("a"), Some(0.3333333333333333), None)), 'p');
        assert_eq!(outcome("vqa_accuracy", &rec(vqa.clone(), Some("b"), Some(0.0), None)), 'i');
        assert_eq!(outcome("vqa_accuracy", &rec(vqa.clone(), None, None, Some("boom"))), 'e');
        assert_eq!(outcome("vqa_accuracy", &rec(vqa, Some("a"), None, None)), 'u', "unannotated: not scored");
        assert_eq!(outcome("cider", &rec(json!({"references": ["x"]}), Some("x"), None, None)), 'u');
        // ROC-AUC: the per-sample value is P(positive); correctness is the chosen class.
        let class = json!({"kind": "class", "label": 1, "name": "yes"});
        assert_eq!(outcome("roc_auc", &rec(class.clone(), Some("yes"), Some(0.2), None)), 'c');
        assert_eq!(outcome("roc_auc", &rec(class, Some("no"), Some(0.9), None)), 'i');
    }

    #[test]
    fn references_of_each_target_kind() {
        assert_eq!(references(&json!({"answers": ["a", "b"]})), vec!["a", "b"]);
        assert_eq!(references(&json!({"references": ["x"]})), vec!["x"]);
        assert_eq!(references(&json!({"label": 1, "name": "yes"})), vec!["yes"]);
        assert_eq!(references(&json!({"answer": "dog"})), vec!["dog"]);
        assert!(references(&Value::Null).is_empty());
    }

    #[test]
    fn hint_quotes_paths_for_the_shell() {
        let h = changed_view_hint(Path::new("results/base"), Path::new("my runs/it's"));
        assert!(h.contains("report --results results/base 'my runs/it'\\''s' --out DIR"), "{h}");
    }
}
