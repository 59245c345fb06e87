//! `flamingo-eval prepare`: the work a run needs done once before its shards start, run as its own job
//! (`flamingo-eval slurm` chains it before the shard array). It checks that the benchmark and the model load,
//! and for a RICES benchmark fills the content-keyed embedding cache (demonstration and query split, through
//! the model's vision encoder or the benchmark's CLIP ONNX encoder), so that shards run with
//! `--rices-cache require` only read it: the images are embedded once per run, not once per shard.
//!
//! With `--out DIR` it writes `DIR/prepare.json` (what was checked, the cache files, embeddings computed).

use crate::benchmark::spec::RicesEncoder;
use crate::benchmark::Benchmark;
use crate::cli::common::RuntimeArgs;
use anyhow::{anyhow, Result};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// The benchmark file (benchmarks/*.yaml).
    #[arg(long)]
    pub benchmark: PathBuf,
    /// The exported model directory: checked, and its vision encoder embeds the images of a RICES benchmark
    /// with `encoder: model` (needed then; optional for `encoder: clip_onnx` and random selection).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Write `prepare.json` into this folder (usually the run's --out folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Serialize)]
pub struct CacheFile {
    pub split: &'static str,
    pub file: String,
    pub images: usize,
    pub computed: usize,
}

#[derive(Debug, Serialize)]
pub struct RicesReport {
    pub encoder: String,
    pub cache_dir: String,
    pub files: Vec<CacheFile>,
    /// Distinct images embedded now (0 when the cache already held both splits).
    pub embeddings_computed: usize,
    /// Distinct images whose embeddings were already in the cache.
    pub embeddings_read: usize,
}

#[derive(Debug, Serialize)]
pub struct PrepareReport {
    pub benchmark: String,
    pub benchmark_file: String,
    pub benchmark_sha256: String,
    pub model: Option<String>,
    pub model_manifest_sha256: Option<String>,
    pub query_samples: usize,
    pub demo_samples: usize,
    /// None when the benchmark does not select demonstrations by RICES (nothing to precompute).
    pub rices: Option<RicesReport>,
    pub seconds: f64,
}

/// Loads and checks the benchmark and model and fills the RICES cache; returns what it did.
pub fn prepare(args: &PrepareArgs) -> Result<PrepareReport> {
    let t0 = Instant::now();
    let mut bench = Benchmark::load(&args.benchmark)?;
    let opts = args.runtime.options();
    let mut model = match &args.model {
        Some(dir) => Some(crate::model::FlamingoModel::load(dir, &opts)?),
        None => None,
    };
    if let Some(m) = &model {
        crate::cli::common::report_providers(&m.providers());
    }
    let rices = if bench.uses_rices() {
        if bench.spec.demo_selection.encoder == RicesEncoder::Model && model.is_none() {
            return Err(anyhow!(
                "{}: RICES with `encoder: model` embeds images with the evaluated model's vision encoder: pass --model DIR",
                args.benchmark.display()
            ));
        }
        crate::engine::run::prepare_rices(&mut bench, model.as_mut(), &opts)?;
        let index = bench.rices_index().ok_or_else(|| anyhow!("RICES index missing after preparation"))?;
        let files: Vec<CacheFile> = [("demos", &index.demo_cache), ("query", &index.query_cache)]
            .into_iter()
            .map(|(split, c)| CacheFile { split, file: c.file.display().to_string(), images: c.images, computed: c.computed })
            .collect();
        let computed = index.embeddings_computed();
        let total: usize = files.iter().map(|f| f.images).sum();
        Some(RicesReport {
            encoder: format!("{:?}", bench.spec.demo_selection.encoder).to_lowercase(),
            cache_dir: bench.cache_dir.display().to_string(),
            files,
            embeddings_computed: computed,
            embeddings_read: total - computed,
        })
    } else {
        None
    };
    let (model_name, model_sha) = match &args.model {
        Some(dir) => (Some(crate::model::Manifest::load(dir)?.name), Some(crate::hashing::sha256_file_hex(&dir.join("model.yaml"))?)),
        None => (None, None),
    };
    drop(model.take());
    Ok(PrepareReport {
        benchmark: bench.spec.name.clone(),
        benchmark_file: args.benchmark.display().to_string(),
        benchmark_sha256: crate::hashing::sha256_file_hex(&args.benchmark)?,
        model: model_name,
        model_manifest_sha256: model_sha,
        query_samples: bench.query.len(),
        demo_samples: bench.demos.len(),
        rices,
        seconds: (t0.elapsed().as_secs_f64() * 1e3).round() / 1e3,
    })
}

pub fn run(args: PrepareArgs) -> Result<ExitCode> {
    let report = prepare(&args)?;
    match &report.rices {
        Some(r) => {
            for f in &r.files {
                println!("RICES {} split: {} distinct image(s), {} embedded now, cache {}", f.split, f.images, f.computed, f.file);
            }
            println!("RICES: {} embedding(s) computed, {} read from the cache ({})", r.embeddings_computed, r.embeddings_read, r.cache_dir);
        }
        None => println!("{}: no RICES selection, nothing to precompute", report.benchmark),
    }
    println!(
        "prepared {} ({} query, {} demonstration sample(s)){} in {:.1}s",
        report.benchmark,
        report.query_samples,
        report.demo_samples,
        report.model.as_deref().map(|m| format!(" for {m}")).unwrap_or_default(),
        report.seconds
    );
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).map_err(|e| anyhow!("cannot create {}: {e}", out.display()))?;
        let path = out.join("prepare.json");
        crate::report::write_atomic(&path, (serde_json::to_string_pretty(&report)? + "\n").as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
