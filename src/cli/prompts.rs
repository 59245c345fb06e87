//! `flamingo-eval prompts`: print the exact prompts, demonstration ids and media order of a benchmark
//! without running the language model.

use crate::benchmark::{Benchmark, Media};
use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PromptsArgs {
    /// Benchmark file (benchmarks/*.yaml).
    #[arg(long)]
    pub benchmark: PathBuf,
    /// Shot count (default: every shot count of the benchmark).
    #[arg(long)]
    pub shots: Option<usize>,
    /// Trial index (0-based; default: every trial).
    #[arg(long)]
    pub trial: Option<usize>,
    /// Print at most this many samples per (shot, trial).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Model directory: only needed for RICES demonstration selection (image embeddings).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Print one JSON object per request instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub runtime: crate::cli::common::RuntimeArgs,
}

pub fn run(args: PromptsArgs) -> Result<ExitCode> {
    let mut bench = Benchmark::load(&args.benchmark)?;
    for s in bench.skipped_summaries() {
        eprintln!("warning: {s}");
    }
    if bench.uses_rices() {
        let opts = args.runtime.options();
        let mut model = match &args.model {
            Some(dir) => Some(crate::model::FlamingoModel::load(dir, &opts)?),
            None => None,
        };
        crate::engine::run::prepare_rices(&mut bench, model.as_mut(), &opts)?;
    }
    let shots = match args.shots {
        Some(s) => vec![s],
        None => bench.spec.shots.clone(),
    };
    let trials: Vec<usize> = match args.trial {
        Some(t) => vec![t],
        None => (0..bench.spec.trials.seeds.len()).collect(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for &shot in &shots {
        for &trial in &trials {
            let set = bench.requests(shot, trial, args.limit)?;
            for s in &set.skipped {
                eprintln!("warning: skipped {s}");
            }
            for r in &set.requests {
                if args.json {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                    continue;
                }
                writeln!(out, "=== {} | sample {} | shots {} | trial {} (seed {}) ===", bench.spec.name, r.sample_id, shot, trial, r.trial_seed)?;
                if !r.demo_ids.is_empty() {
                    writeln!(out, "demos: {}", r.demo_ids.join(", "))?;
                }
                if !r.text_only_demo_ids.is_empty() {
                    writeln!(out, "text-only demos: {}", r.text_only_demo_ids.join(", "))?;
                }
                writeln!(out, "media:")?;
                for (i, m) in r.media.iter().enumerate() {
                    match m {
                        Media::Image(p) => writeln!(out, "  [{i}] image {}", p.display())?,
                        Media::Video(f) => writeln!(
                            out,
                            "  [{i}] video, {} frames: {} .. {}",
                            f.len(),
                            f.first().map(|p| p.display().to_string()).unwrap_or_default(),
                            f.last().map(|p| p.display().to_string()).unwrap_or_default()
                        )?,
                    }
                }
                writeln!(out, "prompt:\n{}\n", r.prompt)?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
