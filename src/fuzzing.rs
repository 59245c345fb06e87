//! Entry points for fuzzing the harness's inputs: any bytes must give a result or an error, never a panic.
//! Used by the cargo-fuzz targets in `fuzz/` (libFuzzer, nightly) and by the seeded mutation test
//! `tests/fuzz_inputs.rs` that runs in the suite with a fixed budget.
//!
//! Each entry point writes the bytes into one file of a [`Workspace`] (a private copy of the demo data and of
//! committed results folders) and drives the code that reads that file the way the CLI does: benchmark
//! YAML parsing, validation and loading, dataset annotation loaders and request building, `samples.jsonl` /
//! `run.json` / `summary.json` readers, and `report`, `merge` and `compare` over a results folder.

use crate::benchmark::Benchmark;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A private copy of the inputs that fuzzing mutates: `data/demo`, the demo benchmarks (paths rewritten to
/// the copy), `prompts/` and `tests/fixtures/results/tiny-gptneox-demo/` of the repository at `repo`.
pub struct Workspace {
    pub dir: PathBuf,
    repo: PathBuf,
}

/// The dataset files of the demo benchmarks, each read by one loader.
pub const DATASET_FILES: &[(&str, &str)] = &[
    ("vqa_val_questions.json", "demo_vqa"),
    ("vqa_val_annotations.json", "demo_vqa"),
    ("vqa_train_questions.json", "demo_vqa"),
    ("karpathy_coco.json", "demo_coco"),
    ("captions_test_refs.json", "demo_coco"),
    ("memes_dev.jsonl", "demo_hateful"),
    ("videoqa_test.json", "demo_videoqa"),
];

/// The files of a results folder.
pub const RESULTS_FILES: &[&str] = &["samples.jsonl", "run.json", "summary.json", "summary.csv"];

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_tree(&s, &d)?;
        } else if e.file_type()?.is_file() {
            std::fs::copy(&s, &d)?;
        }
    }
    Ok(())
}

impl Workspace {
    /// Copies the inputs of the checkout `repo` into `dir` (which should be empty).
    pub fn create(repo: &Path, dir: &Path) -> Result<Workspace> {
        copy_tree(&repo.join("data/demo"), &dir.join("data/demo"))?;
        copy_tree(&repo.join("prompts"), &dir.join("prompts"))?;
        copy_tree(&repo.join("tests/fixtures/results/tiny-gptneox-demo"), &dir.join("tests/fixtures/results/tiny-gptneox-demo"))?;
        copy_tree(&repo.join("benchmarks"), &dir.join("benchmarks"))?;
        // A variant of each demo benchmark that skips bad records, so mutated records reach request building.
        for (_, name) in DATASET_FILES {
            let text = std::fs::read_to_string(dir.join("benchmarks").join(format!("{name}.yaml")))?;
            let skip = text.replacen("  layout: ", "  on_bad_record: skip\n  layout: ", 1);
            std::fs::write(dir.join("benchmarks").join(format!("{name}_skip.yaml")), skip)?;
        }
        Ok(Workspace { dir: dir.to_path_buf(), repo: repo.to_path_buf() })
    }

    pub fn benchmark(&self, name: &str) -> PathBuf {
        self.dir.join("benchmarks").join(format!("{name}.yaml"))
    }

    /// The pristine content of a workspace file, from the checkout.
    pub fn original(&self, rel: &Path) -> Result<Vec<u8>> {
        Ok(std::fs::read(self.repo.join(rel))?)
    }

    fn restore(&self, rel: &Path) {
        if let Ok(b) = self.original(rel) {
            let _ = std::fs::write(self.dir.join(rel), b);
        }
    }
}

/// How far an input got: 0 refused when parsed, 1 parsed and validated, 2 its data loaded, 3 requests built.
pub type Depth = u8;

/// Builds up to 3 requests of every (shot, trial) of a loaded benchmark (RICES benchmarks stop at the
/// missing embeddings, an error).
fn exercise(bench: &Benchmark) -> Depth {
    let mut depth = 2;
    for &shot in &bench.spec.shots {
        for trial in 0..bench.spec.trials.seeds.len().min(2) {
            if bench.requests(shot, trial, Some(3)).is_ok() {
                depth = 3;
            }
        }
    }
    depth
}

/// A benchmark file: parse, validate, load its splits, build requests.
pub fn benchmark_yaml(ws: &Workspace, data: &[u8]) -> Depth {
    let path = ws.dir.join("benchmarks/fuzz.yaml");
    if std::fs::write(&path, data).is_err() || crate::benchmark::BenchmarkSpec::from_file(&path).is_err() {
        return 0;
    }
    match Benchmark::load(&path) {
        Ok(b) => exercise(&b),
        Err(_) => 1,
    }
}

/// One dataset file (`DATASET_FILES[which % len]`) replaced by `data`, then its benchmark loaded.
pub fn dataset_file(ws: &Workspace, which: usize, data: &[u8]) -> Depth {
    let (file, bench) = DATASET_FILES[which % DATASET_FILES.len()];
    let rel = Path::new("data/demo").join(file);
    let mut depth = 0;
    if std::fs::write(ws.dir.join(&rel), data).is_ok() {
        for name in [bench.to_string(), format!("{bench}_skip")] {
            if let Ok(b) = Benchmark::load(&ws.benchmark(&name)) {
                depth = depth.max(exercise(&b));
            }
        }
    }
    ws.restore(&rel);
    depth
}

/// One file of a results folder (`RESULTS_FILES[which % len]` of `tests/fixtures/results/tiny-gptneox-demo/<run>`) replaced by
/// `data`; then the readers, `report`, `compare` (against the pristine baseline) and `merge` (the folder as
/// a one-shard run) over it.
/// Returns how many of the six consumers accepted the folder.
pub fn results_file(ws: &Workspace, run: &str, which: usize, data: &[u8]) -> usize {
    let file = RESULTS_FILES[which % RESULTS_FILES.len()];
    let folder = ws.dir.join("results/fuzz").join(run);
    let _ = std::fs::remove_dir_all(ws.dir.join("results/fuzz"));
    if copy_tree(&ws.dir.join("tests/fixtures/results/tiny-gptneox-demo").join(run), &folder).is_err() || std::fs::write(folder.join(file), data).is_err() {
        return 0;
    }
    let mut ok = 0;
    ok += crate::engine::read_records(&folder.join("samples.jsonl"), false).is_ok() as usize;
    ok += crate::report::discover_runs(&folder).and_then(|runs| runs.iter().map(|r| r.records().map(|v| v.len())).sum::<Result<usize>>()).is_ok() as usize;
    let opts = crate::report::render::ReportOptions { out: ws.dir.join("results/fuzz-report"), references: ws.dir.join("no-references"), samples: crate::report::render::SamplesMode::Off };
    ok += crate::report::render::report(std::slice::from_ref(&folder), &opts).is_ok() as usize;
    let cfg = crate::report::compare::CompareConfig { resamples: 50, ..Default::default() };
    ok += crate::report::compare::compare(&ws.dir.join("tests/fixtures/results/tiny-gptneox-demo").join(run), &folder, &cfg).is_ok() as usize;
    ok += crate::report::compare::compare(&folder, &ws.dir.join("tests/fixtures/results/tiny-gptneox-demo").join(run), &cfg).is_ok() as usize;
    ok += crate::report::merge::merge(std::slice::from_ref(&folder), &ws.dir.join("results/fuzz-merged"), None).is_ok() as usize;
    ok
}
