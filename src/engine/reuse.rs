//! What a resumed run may reuse. A record of `samples.jsonl` is reused only while everything it was computed
//! from is unchanged: its request (prompt text, demonstration ids, media paths, trial seed and the target it
//! is scored against, all stored in the record) and the content of every media file it shows (the SHA-256 in
//! `media_sha256`). The model, benchmark file and template are checked once per folder (`run.json`). A stale
//! record is dropped from the file before its sample is recomputed, so the file never holds two records of
//! one sample; at the end the file is put back in request order, so it is byte-identical to an uninterrupted
//! run.
//!
//! Cost: each distinct media file is hashed once per invocation (streamed, in parallel), remembered with its
//! size and modification time.

use crate::benchmark::PromptRequest;
use crate::engine::records::SampleRecord;
use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

pub type Key = (usize, usize, String);

/// SHA-256 of media files, each computed once (re-computed if the file's size or mtime changes).
#[derive(Default)]
pub struct DigestCache {
    map: Mutex<HashMap<PathBuf, (u64, Option<SystemTime>, Option<String>)>>,
    /// Files hashed (for provenance and tests).
    pub hashed: std::sync::atomic::AtomicUsize,
}

impl DigestCache {
    /// Hex SHA-256 of a file; None when it cannot be read (the sample's error says why).
    pub fn digest(&self, path: &Path) -> Option<String> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        let (len, mtime) = (meta.len(), meta.modified().ok());
        if let Some((l, m, d)) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
            if *l == len && *m == mtime && mtime.is_some() {
                return d.clone();
            }
        }
        let d = crate::hashing::sha256_file_hex(path).ok();
        self.hashed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_path_buf(), (len, mtime, d.clone()));
        d
    }

    /// The media digests of each request (distinct files hashed in parallel, once).
    pub fn for_requests(&self, requests: &[PromptRequest]) -> Vec<Vec<Option<String>>> {
        let mut distinct: Vec<&PathBuf> = requests.iter().flat_map(|r| r.media_sources.iter()).collect();
        distinct.sort();
        distinct.dedup();
        let digests: HashMap<&PathBuf, Option<String>> = distinct.par_iter().map(|p| (*p, self.digest(p))).collect();
        requests.iter().map(|r| r.media_sources.iter().map(|p| digests[p].clone()).collect()).collect()
    }
}

/// Why a record is not reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stale {
    /// A media file's content changed (replaced or repaired image, re-encoded video).
    Media,
    /// The annotations it is scored against changed.
    Target,
    /// The prompt, the demonstrations, the media paths or the trial seed changed.
    Request,
    /// The record carries no media digests (written by an older flamingo-eval).
    NoDigest,
    /// The record is a failure and `--retry-errors` was given.
    RetryError,
}

impl Stale {
    fn describe(self) -> &'static str {
        match self {
            Stale::Media => "a media file changed",
            Stale::Target => "the annotations changed",
            Stale::Request => "the prompt or demonstrations changed",
            Stale::NoDigest => "no media digests (written by an older flamingo-eval)",
            Stale::RetryError => "failed before (--retry-errors)",
        }
    }
}

/// Whether `old` can stand for `new` (the record this run would write before the model runs).
pub fn verdict(old: &SampleRecord, new: &SampleRecord, retry_errors: bool) -> Option<Stale> {
    if old.media_sha256.is_empty() && !new.media_sha256.is_empty() {
        return Some(Stale::NoDigest);
    }
    if old.prompt != new.prompt
        || old.demo_ids != new.demo_ids
        || old.text_only_demo_ids != new.text_only_demo_ids
        || old.media != new.media
        || old.trial_seed != new.trial_seed
    {
        return Some(Stale::Request);
    }
    if old.media_sha256 != new.media_sha256 {
        return Some(Stale::Media);
    }
    if old.target != new.target {
        return Some(Stale::Target);
    }
    // A failure that happened before the model ran (a media problem) is recomputed whenever its cause may
    // have gone: that is the digest check above. Any other failure is kept unless asked to retry.
    if old.error.is_some() && (retry_errors || new.error.as_ref().is_some_and(|e| Some(e) != old.error.as_ref())) {
        return Some(if retry_errors { Stale::RetryError } else { Stale::Request });
    }
    None
}

/// Splits one (shot, trial)'s work — each request with the record it starts from (see `run::base_record`)
/// — into what must be computed and what `previous` already holds; records every key in `order` and every
/// decision in `report`. Returns the work to do and the keys of the stale records to drop first.
pub fn plan<T>(
    work: Vec<(T, SampleRecord)>,
    previous: &HashMap<Key, SampleRecord>,
    retry_errors: bool,
    order: &mut Order,
    report: &mut ReuseReport,
) -> (Vec<(T, SampleRecord)>, HashSet<Key>) {
    let mut todo = Vec::new();
    let mut stale = HashSet::new();
    for (r, base) in work {
        let key = base.key();
        order.push(key.clone());
        match previous.get(&key) {
            Some(old) => match verdict(old, &base, retry_errors) {
                None => report.reused += 1,
                Some(why) => {
                    report.add(why, old, &base);
                    stale.insert(key);
                    todo.push((r, base));
                }
            },
            None => todo.push((r, base)),
        }
    }
    (todo, stale)
}

/// Counts of the reuse decisions of one invocation, with an example per reason.
#[derive(Debug, Default, Clone)]
pub struct ReuseReport {
    pub reused: usize,
    pub recomputed: BTreeMap<Stale, (usize, String)>,
    /// Records of samples the sweep no longer evaluates (left out under `on_bad_record: skip`), dropped.
    pub dropped: usize,
}

impl ReuseReport {
    pub fn recomputed_total(&self) -> usize {
        self.recomputed.values().map(|v| v.0).sum()
    }

    pub fn add(&mut self, why: Stale, rec: &SampleRecord, new: &SampleRecord) {
        let e = self.recomputed.entry(why).or_insert((0, String::new()));
        e.0 += 1;
        if e.1.is_empty() {
            e.1 = example(why, rec, new);
        }
    }

    /// One line for the log, e.g. `resuming: 33 record(s) reused, 3 recomputed (a media file changed: 3, e.g. …)`.
    pub fn line(&self) -> String {
        let mut s = format!("resuming: {} record(s) reused, {} recomputed", self.reused, self.recomputed_total());
        if !self.recomputed.is_empty() {
            let parts: Vec<String> = self.recomputed.iter().map(|(k, (n, ex))| format!("{}: {n}, e.g. {ex}", k.describe())).collect();
            s.push_str(&format!(" ({})", parts.join("; ")));
        }
        if self.dropped > 0 {
            s.push_str(&format!("; {} record(s) of samples no longer evaluated dropped", self.dropped));
        }
        s
    }
}

fn example(why: Stale, old: &SampleRecord, new: &SampleRecord) -> String {
    let id = format!("sample {} shot {} trial {}", new.sample_id, new.shot, new.trial);
    match why {
        Stale::Media => {
            let i = old.media_sha256.iter().zip(&new.media_sha256).position(|(a, b)| a != b).unwrap_or(0);
            let file = new.media.get(i).and_then(|m| m.first()).cloned().unwrap_or_default();
            format!("{id}: media {i} ({file})")
        }
        _ => id,
    }
}

/// Rewrites `samples.jsonl` keeping only the lines whose key `keep` accepts, in the order `order` gives
/// (lines without an order keep theirs, after the ordered ones). Atomic (temp file + rename); nothing is
/// written when the result equals the file.
pub fn rewrite(path: &Path, keep: &dyn Fn(&Key) -> bool, order: Option<&HashMap<Key, usize>>) -> Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut lines: Vec<(usize, &[u8])> = Vec::new();
    let mut unchanged = true;
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            unchanged = false;
            continue;
        }
        let rec: SampleRecord = serde_json::from_slice(line)
            .map_err(|e| anyhow!("{}: line {}: not a sample record: {e}", path.display(), i + 1))?;
        let key = rec.key();
        if !keep(&key) {
            unchanged = false;
            continue;
        }
        let pos = order.and_then(|o| o.get(&key).copied()).unwrap_or(usize::MAX);
        if lines.last().is_some_and(|l| l.0 > pos) {
            unchanged = false;
        }
        lines.push((pos, line));
    }
    // The usual case (nothing dropped, already in order) costs no copy of the file.
    if unchanged {
        return Ok(false);
    }
    lines.sort_by_key(|l| l.0); // stable: equal positions keep file order
    let out: Vec<u8> = lines.iter().flat_map(|l| l.1.iter().copied()).collect();
    if out == bytes {
        return Ok(false);
    }
    crate::report::write_atomic(path, &out)?;
    Ok(true)
}

/// The canonical position of every (shot, trial, sample) of the sweep, in the order an uninterrupted run
/// writes them.
#[derive(Default)]
pub struct Order {
    pub pos: HashMap<Key, usize>,
}

impl Order {
    pub fn push(&mut self, key: Key) {
        let n = self.pos.len();
        self.pos.entry(key).or_insert(n);
    }
    pub fn keys(&self) -> HashSet<&Key> {
        self.pos.keys().collect()
    }
}
