//! `flamingo-eval run`: evaluate a model on a benchmark over shot counts and trials.

use crate::cli::common::RuntimeArgs;
use crate::engine::{run, RunConfig};
use crate::metrics::BootstrapConfig;
use crate::engine::run::Shard;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `run`'s exit status means (also in `run --help`).
pub const EXIT_CODES: &str = "\
Exit status:
  0  every (shot, trial) of the sweep has scored samples, and no error share is above --max-error-rate
     (samples that failed without failing the run are counted in the summary line and in summary.json)
  1  the run finished, but a (shot, trial) has no scored sample (all its samples failed, or none was left
     to evaluate), or its share of failed samples is above --max-error-rate; or --fail-fast stopped it at a
     failed sample. The first errors are printed; the results written so far stay resumable
  2  nothing was evaluated: a usage, configuration, data or model error found before any work (or an I/O
     error), named in the message
  3  the results folder is in use by another run (its PID and host are named); nothing was touched";

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RunArgs {
    /// The exported model directory (holds model.yaml).
    #[arg(long)]
    pub model: PathBuf,
    /// The benchmark file (benchmarks/*.yaml).
    #[arg(long)]
    pub benchmark: PathBuf,
    /// Another prompt template (prompts/*.yaml) for this benchmark, e.g. a model family's own wording
    /// (prompts/idefics_vqa.yaml); the benchmark file is used unchanged.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
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
    /// Fail the run (exit 1) when more than this fraction of a (shot, trial)'s samples failed, e.g. 0 or 0.01
    /// (default: failed samples are reported; only a (shot, trial) with no scored sample fails the run).
    #[arg(long, value_name = "FRACTION")]
    pub max_error_rate: Option<f64>,
    /// On resume, recompute the samples that failed before (default: keep their error records unless the
    /// files they were computed from changed).
    #[arg(long)]
    pub retry_errors: bool,
    /// No progress bars (one line per finished shot/trial), for CI logs.
    #[arg(long, short)]
    pub quiet: bool,
    /// Bootstrap resamples for confidence intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap_resamples: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 0)]
    pub bootstrap_seed: u64,
    /// Evaluate shard I of N (0-based): the samples whose query-split index is I modulo N. Default: from
    /// SLURM_ARRAY_TASK_ID and --shard-count / FLAMINGO_EVAL_SHARDS, else SLURM_ARRAY_TASK_COUNT (Slurm job
    /// arrays numbered from 0), or Kubernetes
    /// JOB_COMPLETION_INDEX with --shard-count / FLAMINGO_EVAL_SHARDS. Join shards with `flamingo-eval merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Shard count for an Indexed Job (which gives only JOB_COMPLETION_INDEX) or a Slurm array retried by
    /// single indices; env FLAMINGO_EVAL_SHARDS.
    #[arg(long, value_name = "N")]
    pub shard_count: Option<usize>,
    /// Pin the demonstrations: a JSON/JSONL file of {sample_id, shot, trial, demo_ids, text_only_demo_ids}
    /// records (an earlier run's samples.jsonl works). See README, "Pinned demonstrations".
    #[arg(long, value_name = "FILE")]
    pub demos: Option<PathBuf>,
    /// With --demos: samples the file does not cover get the benchmark's own selection (default: error).
    #[arg(long, requires = "demos")]
    pub demos_fallback: bool,
    /// RICES embedding cache: `fill` computes what is missing (default); `require` only reads it and
    /// refuses a missing or stale cache (shards of a cluster run, after `flamingo-eval prepare`).
    #[arg(long, value_name = "fill|require", default_value = "fill")]
    pub rices_cache: crate::benchmark::rices::CachePolicy,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Parses `I/N` (0 <= I < N).
pub fn parse_shard(text: &str) -> Result<Shard> {
    let bad = || anyhow!("--shard {text}: expected I/N with 0 <= I < N, e.g. --shard 0/4 (shards are numbered from 0)");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let index: usize = i.trim().parse().map_err(|_| bad())?;
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// The shard to run: `--shard` wins, then a Slurm job array, then a Kubernetes Indexed Job.
pub fn resolve_shard(flag: Option<&str>, shard_count: Option<usize>, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
    if let Some(s) = flag {
        return parse_shard(s).map(Some);
    }
    let num = |name: &str| -> Result<Option<usize>> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| anyhow!("${name}={v:?} is not a number")),
        }
    };
    let count_from_env = || -> Result<Option<usize>> { Ok(shard_count.or(num("FLAMINGO_EVAL_SHARDS")?)) };
    if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        // An explicit count (--shard-count, FLAMINGO_EVAL_SHARDS) wins over the array's size: a failed task
        // resubmitted alone (`sbatch --array=I`) is an array of one task, still shard I of N.
        if let Some(count) = count_from_env()? {
            return parse_shard(&format!("{id}/{count}")).map(Some);
        }
        let count = num("SLURM_ARRAY_TASK_COUNT")?;
        let count = count.ok_or_else(|| anyhow!("SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT: pass --shard I/N or --shard-count N"))?;
        if let Some(min) = num("SLURM_ARRAY_TASK_MIN")? {
            if min != 0 {
                bail!("this Slurm job array starts at {min}: submit it as --array=0-{} so task ids are shard indices, or pass --shard I/N", count - 1);
            }
        }
        return parse_shard(&format!("{id}/{count}")).map(Some);
    }
    if let Some(id) = num("JOB_COMPLETION_INDEX")? {
        let count = count_from_env()?.ok_or_else(|| {
            anyhow!("JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but the shard count is not: pass --shard-count N (= .spec.completions) or set FLAMINGO_EVAL_SHARDS")
        })?;
        return parse_shard(&format!("{id}/{count}")).map(Some);
    }
    Ok(None)
}

pub fn run_cmd(args: RunArgs) -> Result<ExitCode> {
    let shard = resolve_shard(args.shard.as_deref(), args.shard_count, &|k| std::env::var(k).ok())?;
    if let Some(s) = shard {
        eprintln!("shard {}/{}: evaluating the samples whose query index is {} modulo {}", s.index, s.count, s.index, s.count);
    }
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let bench = crate::benchmark::spec::BenchmarkSpec::from_file(&args.benchmark)?;
            let manifest = crate::model::Manifest::load(&args.model)?;
            // Both names become one folder name under results/: plain names only.
            crate::benchmark::paths::check_plain_name(&manifest.name, &format!("{}: name", args.model.join("model.yaml").display()))?;
            PathBuf::from("results").join(format!("{}-{}", bench.name, manifest.name))
        }
    };
    // Shards of one run live side by side under its folder; `flamingo-eval merge` joins them there.
    let out = match shard {
        Some(s) => out.join(format!("shard-{}-of-{}", s.index, s.count)),
        None => out,
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
        shard,
        demos: args.demos.clone().map(|path| crate::benchmark::pinned::PinsConfig { path, fallback: args.demos_fallback }),
        rices_cache: args.rices_cache,
        max_error_rate: args.max_error_rate,
        retry_errors: args.retry_errors,
        template: args.template.clone(),
    };
    let summary = match run(&config) {
        Ok(s) => s,
        // A sample failure under --fail-fast: the run did start (exit 1, not a configuration error).
        Err(e) if e.downcast_ref::<crate::engine::outcome::FailFast>().is_some() => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e),
    };
    print!("{}", crate::engine::run::format_table(&summary));
    let p = &summary.provenance;
    println!(
        "{} sample(s) evaluated ({} resumed) in {:.1}s; {:.0}% of the time inside ONNX Runtime; {} vision-encoder call(s), {} image(s) encoded",
        p.samples_evaluated_this_invocation, p.samples_resumed, p.times.total_s, 100.0 * p.times.ort_share,
        p.vision_encoder_calls, p.images_encoded
    );
    println!("results: {}/summary.json, summary.csv, samples.jsonl", out.display());
    let outcome = crate::engine::outcome::assess(&summary, args.max_error_rate);
    if let Some(w) = &outcome.warning {
        println!("warning: {w}");
    }
    if outcome.failed() {
        eprintln!("error: the run failed:");
        for f in &outcome.failures {
            eprintln!("  {f}");
        }
        if !outcome.first_errors.is_empty() {
            eprintln!("first errors:");
            for e in &outcome.first_errors {
                eprintln!("  {e}");
            }
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
