//! `flamingo-eval benchmarks`: find the benchmarks (`list`), check benchmark files without a model
//! (`validate`), and print every key a benchmark file may have (`keys`, read off the parser).

use crate::benchmark::schema::benchmark_keys;
use crate::benchmark::spec::{layout_name, resolve_path, BenchmarkSpec, DemoMethod, Layout, RicesEncoder};
use crate::benchmark::{template, Benchmark};
use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum BenchmarksCommand {
    /// One line per benchmark file of a folder: name, task, metric, dataset layout, and the environment
    /// variables its paths use (set or not).
    List(ListArgs),
    /// Check benchmark files without a model: schema, template, every path, the datasets (record counts),
    /// media files, and the demonstration pools against the shot counts. Exit 1 when a file is invalid.
    Validate(ValidateArgs),
    /// Every key a benchmark file may have, with its value kind (read off the parser; see docs/benchmarks.md).
    Keys(KeysArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Folder of benchmark files (default: the bundled benchmarks/ folder).
    pub dir: Option<PathBuf>,
    /// One JSON object per benchmark instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Benchmark files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: BenchmarksCommand) -> Result<ExitCode> {
    match cmd {
        BenchmarksCommand::List(a) => list(&a),
        BenchmarksCommand::Validate(a) => validate_files(&a.files),
        BenchmarksCommand::Keys(a) => keys(&a),
    }
}

/// The bundled benchmarks folder: `benchmarks/` of the checkout the executable lives in, else of the source
/// tree it was built from.
pub fn bundled_dir() -> PathBuf {
    if let Some(root) = crate::model::runtime::project_root() {
        let d = root.join("benchmarks");
        if d.is_dir() {
            return d;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benchmarks")
}

/// One `${VAR}` use in a benchmark file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvUse {
    pub name: String,
    /// The key whose value uses it (`dataset.query.images`).
    pub key: String,
    /// `${VAR:-default}`: the default applies when the variable is unset.
    pub has_default: bool,
    pub set: bool,
}

/// The `${VAR}` / `${VAR:-default}` uses of a benchmark file's text, by key, in file order.
pub fn env_uses(text: &str) -> Vec<EnvUse> {
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(text) else { return vec![] };
    let re = regex::Regex::new(r"\$\{([A-Za-z0-9_]+)(:-[^}]*)?\}").expect("valid regex");
    let mut out = Vec::new();
    fn walk(v: &serde_yaml::Value, key: &str, re: &regex::Regex, out: &mut Vec<EnvUse>) {
        match v {
            serde_yaml::Value::String(s) => {
                for c in re.captures_iter(s) {
                    let name = c[1].to_string();
                    let set = std::env::var(&name).is_ok_and(|v| !v.is_empty());
                    out.push(EnvUse { name, key: key.to_string(), has_default: c.get(2).is_some(), set });
                }
            }
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    let k = k.as_str().unwrap_or("?");
                    walk(v, &if key.is_empty() { k.to_string() } else { format!("{key}.{k}") }, re, out);
                }
            }
            serde_yaml::Value::Sequence(s) => {
                for v in s {
                    walk(v, key, re, out);
                }
            }
            _ => {}
        }
    }
    walk(&doc, "", &re, &mut out);
    out
}

/// `NAME (set)`, `NAME (unset: default)`, `NAME (NOT SET)`, each variable once.
fn env_summary(uses: &[EnvUse]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut parts = Vec::new();
    for u in uses {
        if seen.contains(&u.name.as_str()) {
            continue;
        }
        seen.push(&u.name);
        // A variable without a default anywhere is required.
        let required = uses.iter().any(|x| x.name == u.name && !x.has_default);
        let state = match (u.set, required) {
            (true, _) => "set",
            (false, false) => "unset: default",
            (false, true) => "NOT SET",
        };
        parts.push(format!("{} ({state})", u.name));
    }
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

fn metric_name(spec: &BenchmarkSpec) -> String {
    snake(&format!("{:?}", spec.metric.name))
}

/// `VqaAccuracy` → `vqa_accuracy` (the YAML spelling of a unit variant).
fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn list(args: &ListArgs) -> Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(bundled_dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| anyhow!("cannot read the benchmarks folder {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(anyhow!("{}: no benchmark files (*.yaml)", dir.display()));
    }
    let mut rows: Vec<[String; 6]> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let uses = env_uses(&text);
        let file = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match BenchmarkSpec::from_file(f) {
            Ok(spec) => {
                if args.json {
                    let v = serde_json::json!({
                        "file": f.display().to_string(), "name": spec.name, "task": snake(&format!("{:?}", spec.task)),
                        "metric": metric_name(&spec), "layout": layout_name(spec.dataset.layout), "env": uses,
                        "description": spec.description,
                    });
                    println!("{v}");
                    continue;
                }
                rows.push([
                    spec.name.clone(),
                    snake(&format!("{:?}", spec.task)),
                    metric_name(&spec),
                    layout_name(spec.dataset.layout).to_string(),
                    env_summary(&uses),
                    file,
                ]);
            }
            Err(e) => {
                let msg = format!("{e:#}");
                if args.json {
                    println!("{}", serde_json::json!({"file": f.display().to_string(), "error": msg}));
                    continue;
                }
                rows.push(["(invalid)".into(), "-".into(), "-".into(), "-".into(), format!("run `benchmarks validate`: {msg}"), file]);
            }
        }
    }
    if !args.json {
        let head = ["NAME", "TASK", "METRIC", "LAYOUT", "ENV VARS (paths)", "FILE"];
        let w: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0)).collect();
        let line = |r: &[&str]| {
            let mut s = String::new();
            for (i, c) in r.iter().enumerate() {
                if i == 5 {
                    s.push_str(c);
                } else {
                    s.push_str(&format!("{c:<width$}  ", width = if i == 4 { 0 } else { w[i] }));
                }
            }
            s.trim_end().to_string()
        };
        // The env column is last but one and may be long: FILE goes before it.
        let file_head = format!("{:<width$}", head[5], width = w[5]);
        println!("{}", line(&[head[0], head[1], head[2], head[3], &file_head, head[4]]));
        for r in &rows {
            let file = format!("{:<width$}", r[5], width = w[5]);
            println!("{}", line(&[&r[0], &r[1], &r[2], &r[3], &file, &r[4]]));
        }
        println!("({} benchmark file(s) in {}; `flamingo-eval benchmarks validate FILE` checks one in full)", rows.len(), dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The path-valued keys of a spec with their raw values (for existence checks).
fn path_keys(spec: &BenchmarkSpec) -> Vec<(String, String, bool)> {
    // (key, value, is_dir)
    let mut v = Vec::new();
    for (split, s) in [("dataset.query", &spec.dataset.query), ("dataset.demos", &spec.dataset.demos)] {
        let mut add = |k: &str, val: &Option<String>, dir: bool| {
            if let Some(x) = val {
                v.push((format!("{split}.{k}"), x.clone(), dir));
            }
        };
        add("questions", &s.questions, false);
        add("annotations", &s.annotations, false);
        add("images", &s.images, true);
        add("karpathy", &s.karpathy, false);
        add("references", &s.references, false);
        add("annotations_file", &s.annotations_file, false);
        add("root", &s.root, true);
        add("class_names", &s.class_names, false);
    }
    if spec.demo_selection.method == DemoMethod::Rices && spec.demo_selection.encoder == RicesEncoder::ClipOnnx {
        if let Some(c) = &spec.demo_selection.clip_onnx {
            v.push(("demo_selection.clip_onnx".into(), c.clone(), false));
        }
    }
    v
}

/// What `validate` found for one file.
#[derive(Debug, Default)]
pub struct Validation {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub facts: Vec<String>,
}

/// Checks one benchmark file as far as it can without a model.
pub fn validate(file: &Path) -> Validation {
    let mut v = Validation::default();
    let spec = match BenchmarkSpec::from_file(file) {
        Ok(s) => s,
        Err(e) => {
            v.errors.push(format!("{e:#}"));
            return v;
        }
    };
    let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    // Every unset variable without a default, with the key that needs it.
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    for u in env_uses(&text).into_iter().filter(|u| !u.set && !u.has_default) {
        match missing.iter_mut().find(|m| m.0 == u.name) {
            Some(m) => m.1.push(u.key),
            None => missing.push((u.name, vec![u.key])),
        }
    }
    let missing_vars = !missing.is_empty();
    for (name, keys) in &missing {
        v.errors.push(format!(
            "{}: environment variable `{name}` is not set (used by {}); export it (e.g. `export {name}=/data/...`) or write `${{{name}:-DEFAULT}}`",
            file.display(),
            keys.join(", ")
        ));
    }
    match template::resolve_template(&spec.template, &base) {
        Ok(p) => v.facts.push(format!("template {}", p.display())),
        Err(e) if !missing_vars => v.errors.push(format!("{}: {e:#}", file.display())),
        Err(_) => {}
    }
    let mut paths_ok = !missing_vars;
    if !missing_vars {
        for (key, value, dir) in path_keys(&spec) {
            match resolve_path(&value, &base, &key) {
                Ok(p) => {
                    let ok = if dir { p.is_dir() } else { p.is_file() };
                    if !ok {
                        paths_ok = false;
                        let what = if dir { "folder" } else { "file" };
                        let why = if p.exists() { format!("is not a {what}") } else { "does not exist".to_string() };
                        let relative = crate::benchmark::spec::substitute_env(&value, &key).is_ok_and(|v| Path::new(&v).is_relative());
                        let note = if relative {
                            format!(" (`{value}` is relative: it is resolved against the benchmark file's folder {})", base.display())
                        } else {
                            String::new()
                        };
                        v.errors.push(format!("{}: {key}: {} {why}{note}; fix the path or the variable it uses", file.display(), p.display()));
                    }
                }
                Err(e) => {
                    paths_ok = false;
                    v.errors.push(format!("{}: {e:#}", file.display()));
                }
            }
        }
    }
    if !paths_ok || !v.errors.is_empty() {
        return v;
    }
    let bench = match Benchmark::load(file) {
        Ok(b) => b,
        Err(e) => {
            v.errors.push(format!("{e:#}"));
            return v;
        }
    };
    v.facts.push(format!("{} query sample(s), {} demonstration sample(s)", bench.query.len(), bench.demos.len()));
    for s in bench.skipped_summaries() {
        v.warnings.push(s);
    }
    if let Some(w) = bench.few_answers_warning() {
        v.warnings.push(w);
    }
    // Media files of both splits (existence only; `run` also decodes them).
    for (split, data) in [("dataset.query", &bench.query), ("dataset.demos", &bench.demos)] {
        let missing: Vec<&str> = data.samples.iter().filter(|s| !s.media.path().is_file()).map(|s| s.id.as_str()).collect();
        if !missing.is_empty() {
            let first = data.samples.iter().find(|s| !s.media.path().is_file()).map(|s| s.media.path().display().to_string()).unwrap_or_default();
            let msg = format!(
                "{}: {split}: {} of {} record(s) name a media file that does not exist (e.g. sample {}: {first}); check the images/root folder and the file name pattern",
                file.display(),
                missing.len(),
                data.len(),
                missing[0]
            );
            if spec.dataset.on_bad_record == crate::benchmark::spec::BadRecordPolicy::Skip {
                v.warnings.push(format!("{msg} (on_bad_record: skip leaves them out)"));
            } else {
                v.errors.push(msg);
            }
        }
    }
    // Shot counts against the demonstration pools, for every trial seed (as `run` checks before any work).
    let n_trials = bench.spec.trials.seeds.len();
    if let Err(e) = crate::engine::preflight::check_sweep(&bench, &bench.spec.shots, n_trials, None, None, true) {
        v.errors.push(format!("shots: {e:#}"));
    } else {
        let k = bench.spec.shots.iter().map(|&s| bench.effective_shots(s)).max().unwrap_or(0);
        v.facts.push(format!(
            "shots {:?} × {n_trials} trial(s); demonstration pool {} (query_set_size {}) ≥ {k} needed",
            bench.spec.shots,
            bench.demos.len().min(bench.spec.query_set_size),
            bench.spec.query_set_size
        ));
    }
    if spec.dataset.layout == Layout::VideoQa && std::process::Command::new("ffmpeg").arg("-version").output().is_err() {
        v.warnings.push(format!("{}: the video_qa layout decodes videos with ffmpeg, which is not on PATH (scripts/ensure_ffmpeg.sh installs it)", file.display()));
    }
    if bench.uses_rices() {
        v.facts.push("RICES selection: embeddings are computed by `run` or `prepare` (not checked here)".into());
    }
    v
}

fn validate_files(files: &[PathBuf]) -> Result<ExitCode> {
    let mut bad = 0;
    for f in files {
        let v = validate(f);
        if v.errors.is_empty() {
            println!("ok: {}: {}", f.display(), v.facts.join("; "));
        } else {
            bad += 1;
            println!("INVALID: {}", f.display());
            for e in &v.errors {
                println!("  error: {e}");
            }
        }
        for w in &v.warnings {
            println!("  warning: {w}");
        }
    }
    if bad > 0 {
        eprintln!("error: {bad} of {} benchmark file(s) invalid", files.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn keys(args: &KeysArgs) -> Result<ExitCode> {
    let keys = benchmark_keys();
    if args.json {
        let v: Vec<serde_json::Value> =
            keys.iter().map(|k| serde_json::json!({"key": k.path, "kind": k.kind, "values": k.variants})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    for k in &keys {
        let vals = if k.variants.is_empty() { String::new() } else { format!(": {}", k.variants.join(" | ")) };
        println!("{:<42} {}{vals}", k.path, k.kind);
    }
    Ok(ExitCode::SUCCESS)
}
