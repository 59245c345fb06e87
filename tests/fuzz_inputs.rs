//! Seeded mutation fuzzing of every input the harness reads (the same entry points as the cargo-fuzz
//! targets in fuzz/, `flamingo_eval::fuzzing`): benchmark YAML, dataset annotation files, results files
//! under report / compare / merge, and a results folder resumed by `run`. Fixed budget (a fixed number of
//! inputs from a fixed seed, so every run tries the same inputs); any panic fails the test and is saved
//! under the temp folder for replay.

mod common;

use common::*;
use flamingo_eval::fuzzing::{self, Workspace, DATASET_FILES, RESULTS_FILES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

const TOKENS: &[&str] = &[
    "..", "../../", "/etc/passwd", "null", "-1", "0", "1e999", "18446744073709551616", "-9223372036854775809", "\"\"", "{}", "[]",
    "NaN", "true", "\u{0}", "é", "${HOME}", "${FUZZ_UNSET_VARIABLE}", "${", "~", ": ", "- ", "*a", "&a ", "!!binary", "\t", "\n", "{image_id:0999}",
    "{image_id", "<image>", "<|endofchunk|>", "\"question_id\": 1", "\"answers\": []", "[[[[[[[[", "]]]]", "\\u0000", "\"\\ud800\"",
];

/// One to four random edits of `input` (bit flips, interesting bytes and tokens, deletions, duplications,
/// truncation, splices from `other`).
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let n = v.len().max(1);
        let at = rng.random_range(0..n).min(v.len());
        match rng.random_range(0..8) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                let set = b"\0\xff\"{}[]:,\n\\-./ 9";
                v[i] = set[rng.random_range(0..set.len())];
            }
            2 => {
                let end = (at + rng.random_range(1..64)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let end = (at + rng.random_range(1..256)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            4 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            5 => {
                // Replace the word at `at` with a token (structure-preserving more often than byte edits).
                let start = v[..at].iter().rposition(|b| b.is_ascii_whitespace() || b"\",:{}[]".contains(b)).map_or(0, |i| i + 1);
                let end = v[at..].iter().position(|b| b.is_ascii_whitespace() || b"\",:{}[]".contains(b)).map_or(v.len(), |i| at + i);
                let t = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                v.splice(start..end.max(start), t.iter().copied());
            }
            6 => v.truncate(at),
            _ if !other.is_empty() => {
                let s = rng.random_range(0..other.len());
                let e = (s + rng.random_range(1..512)).min(other.len());
                v.splice(at..at, other[s..e].iter().copied());
            }
            _ => {}
        }
    }
    v
}

/// A structure-aware edit of a JSON (or JSON-lines) document: one value somewhere replaced by an interesting
/// one, or removed. Falls back to byte mutation for text that does not parse.
fn mutate_json(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    fn nodes(v: &serde_json::Value, path: String, out: &mut Vec<String>) {
        out.push(path.clone());
        match v {
            serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| nodes(x, format!("{path}/{i}"), out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| nodes(x, format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
            _ => {}
        }
    }
    let values = [
        serde_json::json!(null), serde_json::json!(-1), serde_json::json!(0), serde_json::json!(1e300), serde_json::json!(u64::MAX),
        serde_json::json!(""), serde_json::json!("../../etc/passwd"), serde_json::json!("/abs/x.jpg"), serde_json::json!([]),
        serde_json::json!({}), serde_json::json!([[1]]), serde_json::json!("x".repeat(300)), serde_json::json!(true),
        serde_json::json!({"answer": 3}), serde_json::json!("<image>"), serde_json::json!(2.5),
    ];
    let edit = |rng: &mut ChaCha8Rng, mut doc: serde_json::Value| -> serde_json::Value {
        let mut all = Vec::new();
        nodes(&doc, String::new(), &mut all);
        let at = all[rng.random_range(0..all.len())].clone();
        if rng.random_range(0..4) == 0 && !at.is_empty() {
            let (parent, key) = at.rsplit_once('/').unwrap();
            match doc.pointer_mut(parent) {
                Some(serde_json::Value::Object(o)) => {
                    o.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Some(serde_json::Value::Array(a)) => {
                    if let Ok(i) = key.parse::<usize>() {
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                }
                _ => {}
            }
        } else if let Some(slot) = doc.pointer_mut(&at) {
            *slot = values[rng.random_range(0..values.len())].clone();
        }
        doc
    };
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(input) {
        return serde_json::to_vec(&edit(rng, doc)).unwrap();
    }
    // JSON lines: edit one line.
    let text = String::from_utf8_lossy(input);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if !lines.is_empty() {
        let i = rng.random_range(0..lines.len());
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&lines[i]) {
            lines[i] = serde_json::to_string(&edit(rng, doc)).unwrap();
            return (lines.join("\n") + "\n").into_bytes();
        }
    }
    mutate(rng, input, input)
}

struct Panics {
    dir: std::path::PathBuf,
    found: Vec<String>,
    tried: usize,
    /// How many inputs reached each depth, per input kind.
    depths: std::collections::BTreeMap<(&'static str, usize), usize>,
}

impl Panics {
    fn check(&mut self, what: &'static str, input: &[u8], f: impl FnOnce() -> usize) {
        self.tried += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(d) => *self.depths.entry((what, d)).or_default() += 1,
            Err(_) => {
                let p = self.dir.join(format!("panic-{}.bin", self.found.len()));
                let _ = std::fs::write(&p, input);
                self.found.push(format!("{what}: input saved in {}", p.display()));
            }
        }
    }
}

fn seeds(ws: &Workspace, rels: &[&str]) -> Vec<Vec<u8>> {
    rels.iter().map(|r| ws.original(Path::new(r)).unwrap()).collect()
}

/// Inputs per kind are multiplied by `$FLAMINGO_EVAL_FUZZ_SCALE` (default 1) for a longer one-off run.
fn scale() -> usize {
    std::env::var("FLAMINGO_EVAL_FUZZ_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

#[test]
fn mutated_inputs_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_var("FLAMINGO_EVAL_CACHE", tmp.path().join("cache"));
    let ws = Workspace::create(&repo(), &tmp.path().join("ws")).unwrap();
    let mut panics = Panics { dir: tmp.path().to_path_buf(), found: Vec::new(), tried: 0, depths: Default::default() };
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut counts = Vec::new();

    // Benchmark YAML: every shipped benchmark as a seed.
    let mut names: Vec<String> = std::fs::read_dir(repo().join("benchmarks"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("benchmarks/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    names.sort();
    let yaml = seeds(&ws, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let n = 400 * scale();
    for i in 0..n {
        let input = mutate(&mut rng, &yaml[i % yaml.len()], &yaml[(i + 1) % yaml.len()]);
        panics.check("benchmark yaml", &input, || fuzzing::benchmark_yaml(&ws, &input) as usize);
    }
    counts.push(("benchmark YAML", n));

    // Dataset annotation files, each through its loader and request building.
    let rels: Vec<String> = DATASET_FILES.iter().map(|(f, _)| format!("data/demo/{f}")).collect();
    let data = seeds(&ws, &rels.iter().map(String::as_str).collect::<Vec<_>>());
    let n = 420 * scale();
    for i in 0..n {
        let which = i % data.len();
        let input = if i % 2 == 0 { mutate_json(&mut rng, &data[which]) } else { mutate(&mut rng, &data[which], &data[(i + 3) % data.len()]) };
        panics.check("dataset file", &input, || fuzzing::dataset_file(&ws, which, &input) as usize);
    }
    counts.push(("dataset files", n));

    // Results files under the readers, report, compare and merge.
    let runs = ["demo_vqa", "demo_coco", "demo_hateful"];
    let n = 72 * scale();
    for i in 0..n {
        let run = runs[i % runs.len()];
        let which = (i / runs.len()) % RESULTS_FILES.len();
        let seed = ws.original(&Path::new("tests/fixtures/results/tiny-gptneox-demo").join(run).join(RESULTS_FILES[which])).unwrap();
        let input = if i % 2 == 0 { mutate_json(&mut rng, &seed) } else { mutate(&mut rng, &seed, &seed) };
        panics.check("results file", &input, || fuzzing::results_file(&ws, run, which, &input));
    }
    counts.push(("results files", n));

    // A results folder resumed by `run`: mutated samples.jsonl / run.json of a real (short) run.
    let b = bench("demo_vqa");
    let base = tmp.path().join("resume-base");
    let mut c = run_config("tiny-gptneox", &b, &base);
    c.limit = Some(2);
    flamingo_eval::engine::run(&c).unwrap();
    let n = 8;
    for i in 0..n {
        let folder = tmp.path().join(format!("resume-{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        for f in ["run.json", "samples.jsonl"] {
            std::fs::copy(base.join(f), folder.join(f)).unwrap();
        }
        let f = if i % 4 == 3 { "run.json" } else { "samples.jsonl" };
        let seed = std::fs::read(base.join(f)).unwrap();
        let input = if i % 2 == 0 { mutate_json(&mut rng, &seed) } else { mutate(&mut rng, &seed, &seed) };
        std::fs::write(folder.join(f), &input).unwrap();
        let mut c = c.clone();
        c.out = folder.clone();
        panics.check("resume", &input, || {
            // Either a clear refusal, or a complete folder: every sample of the sweep once, in request order
            // (outputs edited by hand are not detected: only inputs are checked).
            let ok = flamingo_eval::engine::run(&c).is_ok();
            if ok {
                let keys = |d: &Path| flamingo_eval::engine::read_records(&d.join("samples.jsonl"), false).unwrap().iter().map(|r| r.key()).collect::<Vec<_>>();
                assert_eq!(keys(&folder), keys(&base));
            }
            ok as usize
        });
    }
    counts.push(("resumed results folders", n));
    eprintln!("fuzzed {} inputs: {counts:?}; (kind, depth reached) -> inputs: {:?}", panics.tried, panics.depths);
    assert!(panics.found.is_empty(), "{} panic(s):\n{}", panics.found.len(), panics.found.join("\n"));
}
