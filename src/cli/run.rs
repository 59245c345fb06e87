//! `flamingo-eval run`: evaluate a model on a benchmark over shot counts and trials.

use crate::benchmark::overrides::{Limit, SpecOverrides};
use crate::cli::common::{deprecated, BootstrapArgs, RuntimeArgs, SeedArgs};
use crate::engine::progress::{ProgressMode, ProgressSlot, SweepProgress};
use crate::engine::run::Shard;
use crate::engine::{run, RunConfig};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
  3  the results folder is in use by another run (its PID and host are named); nothing was touched
With several benchmarks (--benchmark a.yaml,b.yaml), each runs in turn into its own folder, a failing one does
not stop the others, and the exit status is the worst of theirs (each is listed at the end).";

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RunArgs {
    /// The exported model directory (holds model.yaml).
    #[arg(long)]
    pub model: PathBuf,
    /// Benchmark file(s) (benchmarks/*.yaml): repeat the flag or give a comma list to run several, one
    /// results folder each (see --out); the exit status is the worst of them.
    #[arg(long, required = true, value_delimiter = ',', value_name = "FILE")]
    pub benchmark: Vec<PathBuf>,
    /// Another prompt template for the benchmark(s): a bundled name (openflamingo_vqa, idefics_vqa, …) or a
    /// prompts/*.yaml file, e.g. a model family's own wording; the benchmark file is used unchanged.
    #[arg(long, value_name = "NAME|FILE")]
    pub template: Option<PathBuf>,
    /// Shot counts to sweep, e.g. 0,4,8,16,32 (default: the benchmark's).
    #[arg(long, value_delimiter = ',')]
    pub shots: Option<Vec<usize>>,
    /// Number of trials to run: the first N trial seeds (default: all of them).
    #[arg(long, value_name = "N")]
    pub num_trials: Option<usize>,
    /// Deprecated spelling of --num-trials.
    #[arg(long = "trials", hide = true, conflicts_with = "num_trials", value_name = "N")]
    pub trials_deprecated: Option<usize>,
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Generation settings overriding the benchmark's `generation:`, e.g. max_new_tokens=10,num_beams=1
    /// (keys: max_new_tokens, num_beams, length_penalty, min_new_tokens; recorded in run.json).
    #[arg(long = "gen", value_name = "KEY=VALUE,...")]
    pub gen: Vec<String>,
    /// Evaluate at most N samples per shot count and trial, or a fraction of them (0.1 or 10%: rounded up,
    /// at least 1); the first ones in the trial's evaluation order.
    #[arg(long, value_name = "N|FRACTION")]
    pub limit: Option<Limit>,
    /// Requests handled together.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Output folder (default: results/<benchmark name>-<model name>). With several benchmarks, the folder
    /// that holds one <benchmark name>-<model name> folder per benchmark (default: results).
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
    /// No progress bars or progress lines (one line per finished shot/trial).
    #[arg(long, short)]
    pub quiet: bool,
    /// When stderr is not a terminal (CI logs, Slurm output): print a progress line every this many seconds
    /// (0: after every batch).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub progress_interval: f64,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
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

/// The generation overrides of every `--gen` flag, in order.
pub fn gen_overrides(items: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for g in items {
        out.extend(crate::benchmark::overrides::parse_gen_items(g)?);
    }
    Ok(out)
}

/// One benchmark of the command: its file, where its results go, and how it ended.
struct Planned {
    file: PathBuf,
    out: PathBuf,
}

pub fn run_cmd(args: RunArgs) -> Result<ExitCode> {
    let shard = resolve_shard(args.shard.as_deref(), args.shard_count, &|k| std::env::var(k).ok())?;
    if let Some(s) = shard {
        eprintln!("shard {}/{}: evaluating the samples whose query index is {} modulo {}", s.index, s.count, s.index, s.count);
    }
    let num_trials = match (args.num_trials, args.trials_deprecated) {
        (Some(n), _) => Some(n),
        (None, Some(n)) => {
            deprecated("--trials N", "--num-trials N");
            Some(n)
        }
        (None, None) => None,
    };
    if !args.progress_interval.is_finite() || args.progress_interval < 0.0 {
        bail!("--progress-interval {}: expected a number of seconds, 0 or more", args.progress_interval);
    }
    let overrides = SpecOverrides { seeds: args.seeds.seeds(), generation: gen_overrides(&args.gen)? };
    let several = args.benchmark.len() > 1;
    if several && args.demos.is_some() {
        bail!("--demos pins the demonstrations of one benchmark: run the benchmarks one at a time with their own pins file");
    }
    // Every benchmark file is parsed before any work: the folder names need the benchmark names, and a
    // broken file is reported now rather than after hours of the others.
    let manifest = crate::model::Manifest::load(&args.model)?;
    if several || args.out.is_none() {
        // Both names become one folder name: plain names only.
        crate::benchmark::paths::check_plain_name(&manifest.name, &format!("{}: name", args.model.join("model.yaml").display()))?;
    }
    let mut planned: Vec<std::result::Result<Planned, (PathBuf, anyhow::Error)>> = Vec::new();
    let mut names: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for file in &args.benchmark {
        let spec = match crate::benchmark::spec::BenchmarkSpec::from_file(file) {
            Ok(s) => s,
            Err(e) if several => {
                eprintln!("error: {e:#}");
                planned.push(Err((file.clone(), e)));
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(prev) = names.insert(spec.name.clone(), file.clone()) {
            bail!(
                "{} and {} are both named `{}`: their results would share the folder {}-{}; give the benchmarks distinct names",
                prev.display(),
                file.display(),
                spec.name,
                spec.name,
                manifest.name
            );
        }
        let folder = format!("{}-{}", spec.name, manifest.name);
        let out = match (&args.out, several) {
            (Some(o), false) => o.clone(),
            (Some(o), true) => o.join(folder),
            (None, _) => PathBuf::from("results").join(folder),
        };
        // Shards of one run live side by side under its folder; `flamingo-eval merge` joins them there.
        let out = match shard {
            Some(s) => out.join(format!("shard-{}-of-{}", s.index, s.count)),
            None => out,
        };
        planned.push(Ok(Planned { file: file.clone(), out }));
    }
    let mode = if args.quiet { ProgressMode::Off } else { ProgressMode::Auto };
    let sweep = SweepProgress::new(mode, Duration::from_secs_f64(args.progress_interval), vec![0; planned.len()]);
    let config_for = |index: usize, p: &Planned| RunConfig {
        model_dir: args.model.clone(),
        benchmark: p.file.clone(),
        shots: args.shots.clone(),
        trials: num_trials,
        limit: None,
        sample_limit: args.limit.clone(),
        batch_size: args.batch_size,
        out: p.out.clone(),
        runtime: args.runtime.options(),
        quiet: args.quiet,
        fail_fast: args.fail_fast,
        bootstrap: args.bootstrap.config(None),
        shard,
        demos: args.demos.clone().map(|path| crate::benchmark::pinned::PinsConfig { path, fallback: args.demos_fallback }),
        rices_cache: args.rices_cache,
        max_error_rate: args.max_error_rate,
        retry_errors: args.retry_errors,
        overrides: overrides.clone(),
        progress: Some(ProgressSlot { sweep: sweep.clone(), index }),
        template: args.template.clone(),
    };
    if several && !args.quiet {
        // The overall count covers every benchmark from the start (each one is loaded once more for it;
        // a benchmark that cannot be loaded counts 0 and fails when its turn comes).
        for (index, p) in planned.iter().enumerate() {
            if let Ok(p) = p {
                if let Ok(n) = crate::engine::run::planned_samples(&config_for(index, p)) {
                    sweep.estimate(index, n);
                }
            }
        }
    }
    let mut outcomes: Vec<(PathBuf, String, u8)> = Vec::new();
    for (index, p) in planned.iter().enumerate() {
        let p = match p {
            Ok(p) => p,
            Err((file, e)) => {
                outcomes.push((file.clone(), format!("error: {e:#}"), 2));
                continue;
            }
        };
        if several {
            sweep.println(&format!("== benchmark {}/{}: {} → {}", index + 1, planned.len(), p.file.display(), p.out.display()));
        }
        let config = config_for(index, p);
        let (code, note) = match run_one(&config, args.max_error_rate) {
            Ok(code) => (code, if code == 0 { "ok".to_string() } else { "failed (see above)".to_string() }),
            Err(e) if !several => {
                sweep.finish();
                return Err(e);
            }
            Err(e) => {
                sweep.drop_benchmark(index);
                // (the message names the benchmark file)
                sweep.println(&format!("error: {e:#}"));
                (crate::cli::error_code(&e), format!("error: {e:#}"))
            }
        };
        outcomes.push((p.file.clone(), format!("{note} ({})", p.out.display()), code));
    }
    sweep.finish();
    let worst = outcomes.iter().map(|o| o.2).max().unwrap_or(0);
    if several {
        println!("{} benchmark(s):", outcomes.len());
        for (file, note, code) in &outcomes {
            println!("  [exit {code}] {}: {note}", file.display());
        }
    }
    Ok(ExitCode::from(worst))
}

/// Runs one benchmark and prints its table and status; the exit status of that benchmark alone.
fn run_one(config: &RunConfig, max_error_rate: Option<f64>) -> Result<u8> {
    let out = &config.out;
    let summary = match run(config) {
        Ok(s) => s,
        // A sample failure under --fail-fast: the run did start (exit 1, not a configuration error).
        Err(e) if e.downcast_ref::<crate::engine::outcome::FailFast>().is_some() => {
            eprintln!("error: {e:#}");
            return Ok(1);
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
    let outcome = crate::engine::outcome::assess(&summary, max_error_rate);
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
        return Ok(1);
    }
    Ok(0)
}
