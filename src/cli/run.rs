//! `flamingo-eval run`: evaluate a model on a benchmark over shot counts and trials.

use crate::cli::common::RuntimeArgs;
use crate::engine::{run, RunConfig};
use crate::metrics::BootstrapConfig;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The exported model directory (holds model.yaml).
    #[arg(long)]
    pub model: PathBuf,
    /// The benchmark file (benchmarks/*.yaml).
    #[arg(long)]
    pub benchmark: PathBuf,
    /// Shot counts to sweep, e.g. 0,4,8,16,32 (default: the benchmark's).
    #[arg(long, value_delimiter = ',')]
    pub shots: Option<Vec<usize>>,
    /// Number of trials (seeds) to run (default: all the benchmark lists).
    #[arg(long)]
    pub trials: Option<usize>,
    /// Evaluate at most N samples per shot count and trial.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Requests handled together.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Output folder (default: results/<benchmark name>-<model name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop at the first sample that cannot be processed (default: record its error and go on).
    #[arg(long)]
    pub fail_fast: bool,
    /// No progress bars (one line per finished shot/trial), for CI logs.
    #[arg(long, short)]
    pub quiet: bool,
    /// Bootstrap resamples for confidence intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap_resamples: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 0)]
    pub bootstrap_seed: u64,
    /// Pin the demonstrations: a JSON/JSONL file of {sample_id, shot, trial, demo_ids, text_only_demo_ids}
    /// records (an earlier run's samples.jsonl works). See README, "Pinned demonstrations".
    #[arg(long, value_name = "FILE")]
    pub demos: Option<PathBuf>,
    /// With --demos: samples the file does not cover get the benchmark's own selection (default: error).
    #[arg(long, requires = "demos")]
    pub demos_fallback: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub fn run_cmd(args: RunArgs) -> Result<ExitCode> {
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let bench = crate::benchmark::spec::BenchmarkSpec::from_file(&args.benchmark)?;
            let manifest = crate::model::Manifest::load(&args.model)?;
            PathBuf::from("results").join(format!("{}-{}", bench.name, manifest.name))
        }
    };
    let config = RunConfig {
        model_dir: args.model.clone(),
        benchmark: args.benchmark.clone(),
        shots: args.shots.clone(),
        trials: args.trials,
        limit: args.limit,
        batch_size: args.batch_size,
        out: out.clone(),
        runtime: args.runtime.options(),
        quiet: args.quiet,
        fail_fast: args.fail_fast,
        bootstrap: BootstrapConfig { resamples: args.bootstrap_resamples, seed: args.bootstrap_seed, confidence: 0.95 },
        demos: args.demos.clone().map(|path| crate::benchmark::pinned::PinsConfig { path, fallback: args.demos_fallback }),
    };
    let summary = run(&config)?;
    print!("{}", crate::engine::run::format_table(&summary));
    let p = &summary.provenance;
    println!(
        "{} sample(s) evaluated ({} resumed) in {:.1}s; {:.0}% of the time inside ONNX Runtime; {} vision-encoder call(s), {} image(s) encoded",
        p.samples_evaluated_this_invocation, p.samples_resumed, p.times.total_s, 100.0 * p.times.ort_share,
        p.vision_encoder_calls, p.images_encoded
    );
    println!("results: {}/summary.json, summary.csv, samples.jsonl", out.display());
    Ok(ExitCode::SUCCESS)
}
