//! `flamingo-eval slurm`: turns a run command into three Slurm jobs chained by dependencies — `prepare`
//! (check benchmark and model, fill the RICES embedding cache once), a job array of N shards (each
//! `run --shard I/N --rices-cache require`, requeued on preemption, resuming), and `merge` — writes their
//! scripts (plus `submit.sh`) into a folder and prints the sbatch commands; `--submit` submits them.
//!
//! The scripts `cd` to the directory the launcher ran in (benchmark and model paths stay as given, so records
//! match an unsharded `run` with the same arguments) and can be resubmitted later by hand (a
//! failed shard: `sbatch --array=I shards.sbatch`, then `sbatch merge.sbatch`). See docs/cluster.md.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// The benchmark file (benchmarks/*.yaml).
    #[arg(long)]
    pub benchmark: PathBuf,
    /// The exported model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Number of shards (array tasks).
    #[arg(long)]
    pub shards: usize,
    /// Another prompt template for every shard (run --template NAME|FILE): a bundled name or a prompts/*.yaml
    /// file; checked against the benchmark's dataset layout now, written into the shard script as given.
    #[arg(long, value_name = "NAME|FILE")]
    pub template: Option<PathBuf>,
    /// Shot counts (default: the benchmark's).
    #[arg(long, value_delimiter = ',')]
    pub shots: Option<Vec<usize>>,
    /// Number of trials: the first N trial seeds (run --num-trials; default: all of them).
    #[arg(long, value_name = "N")]
    pub num_trials: Option<usize>,
    /// Deprecated spelling of --num-trials.
    #[arg(long = "trials", hide = true, conflicts_with = "num_trials", value_name = "N")]
    pub trials_deprecated: Option<usize>,
    /// Evaluate at most N samples per shot count and trial, or a fraction of them (run --limit).
    #[arg(long, value_name = "N|FRACTION")]
    pub limit: Option<crate::benchmark::overrides::Limit>,
    /// Requests handled together (run --batch-size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// The run's folder (default: results/<benchmark name>-<model name>); shards go to OUT/shard-I-of-N.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the job scripts go (default: OUT/slurm).
    #[arg(long)]
    pub scripts: Option<PathBuf>,
    /// Slurm partition (#SBATCH --partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm account (#SBATCH --account).
    #[arg(long)]
    pub account: Option<String>,
    /// GPUs per task for prepare and the shards (#SBATCH --gpus-per-task); also selects --device cuda:0.
    #[arg(long)]
    pub gpus_per_task: Option<usize>,
    /// CPUs per task (#SBATCH --cpus-per-task).
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Memory per node for prepare and the shards (#SBATCH --mem), e.g. 32G.
    #[arg(long)]
    pub mem: Option<String>,
    /// Time limit of one shard (#SBATCH --time), e.g. 08:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// Time limit of prepare and of merge (default: the shards').
    #[arg(long)]
    pub prepare_time: Option<String>,
    /// Run at most this many shards at once (--array=0-(N-1)%M).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// More `run` flags for every shard, e.g. --run-arg=--demos=pins.jsonl (repeatable).
    #[arg(long = "run-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub run_args: Vec<String>,
    /// More #SBATCH lines for all three jobs, e.g. --sbatch-arg=--qos=high (repeatable).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// --device for prepare and the shards (default: cuda:0 with --gpus-per-task, else cpu).
    #[arg(long)]
    pub device: Option<String>,
    /// ONNX Runtime intra-op threads (run --threads; default: the CPUs per task, when given).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The flamingo-eval binary the jobs run (default: this one).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Submit the three jobs (sbatch, chained with --dependency=afterok) instead of only printing.
    #[arg(long)]
    pub submit: bool,
}

/// A word quoted for bash.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
}

/// The three job scripts and the submit script, as text.
#[derive(Debug, Clone)]
pub struct JobScripts {
    pub prepare: String,
    pub shards: String,
    pub merge: String,
    pub submit: String,
}

struct Resolved {
    bin: PathBuf,
    model: PathBuf,
    benchmark: PathBuf,
    out: PathBuf,
    scripts: PathBuf,
    workdir: PathBuf,
    device: String,
    name: String,
    /// The cache folder prepare fills and the shards read (exported in every script).
    cache: PathBuf,
}

fn resolve(args: &SlurmArgs) -> Result<Resolved> {
    if args.shards == 0 {
        bail!("--shards must be at least 1");
    }
    // Configuration errors now, not in N queued jobs.
    let spec = crate::benchmark::spec::BenchmarkSpec::from_file(&args.benchmark)?;
    if let Some(t) = &args.template {
        // what `run --template` will do in each shard (resolved from the directory the scripts `cd` to)
        let value = t.to_string_lossy();
        let found = crate::benchmark::template::resolve_template(&value, Path::new(".")).map_err(|e| anyhow!("--template {value}: {e:#}"))?;
        let tpl = crate::benchmark::template::PromptTemplate::from_file(&found)?;
        tpl.check_fields(crate::benchmark::datasets::layout_fields(spec.dataset.layout))
            .map_err(|e| anyhow!("--template {value}: {e:#}"))?;
    }
    let manifest = crate::model::Manifest::load(&args.model)?;
    let out = match &args.out {
        Some(o) => o.clone(),
        None => PathBuf::from("results").join(format!("{}-{}", spec.name, manifest.name)),
    };
    let out = absolute(&out)?;
    let cache = absolute(&spec.cache_dir(args.benchmark.parent().unwrap_or(Path::new(".")))?)?;
    let scripts = absolute(&args.scripts.clone().unwrap_or_else(|| out.join("slurm")))?;
    let bin = match &args.bin {
        Some(b) => absolute(b)?,
        None => std::env::current_exe().context("cannot find the running flamingo-eval binary: pass --bin")?,
    };
    let device = args.device.clone().unwrap_or_else(|| if args.gpus_per_task.unwrap_or(0) > 0 { "cuda:0".into() } else { "cpu".into() });
    Ok(Resolved {
        bin,
        // As given (the scripts `cd` to this directory first): records name media files by the benchmark
        // path, so the shards' samples.jsonl then equals that of `run` with the same arguments, byte for byte.
        model: args.model.clone(),
        benchmark: args.benchmark.clone(),
        out,
        scripts,
        workdir: std::env::current_dir()?,
        device,
        name: format!("{}-{}", spec.name, manifest.name),
        cache,
    })
}

fn header(args: &SlurmArgs, r: &Resolved, stage: &str, compute: bool, time: Option<&str>) -> String {
    let mut h = String::from("#!/usr/bin/env bash\n");
    h += &format!("# Written by `flamingo-eval slurm` for {} ({} shards); see docs/cluster.md.\n", r.name, args.shards);
    let mut line = |s: String| {
        h += "#SBATCH ";
        h += &s;
        h.push('\n');
    };
    line(format!("--job-name={}", sh_quote(&format!("fe-{stage}-{}", r.name))));
    let log = if stage == "shards" { "shard-%A_%a.out".to_string() } else { format!("{stage}-%j.out") };
    line(format!("--output={}", sh_quote(&r.scripts.join("logs").join(log).display().to_string())));
    if let Some(p) = &args.partition {
        line(format!("--partition={}", sh_quote(p)));
    }
    if let Some(a) = &args.account {
        line(format!("--account={}", sh_quote(a)));
    }
    if let Some(t) = time {
        line(format!("--time={}", sh_quote(t)));
    }
    if compute {
        if let Some(g) = args.gpus_per_task.filter(|&g| g > 0) {
            line(format!("--gpus-per-task={g}"));
        }
        if let Some(m) = &args.mem {
            line(format!("--mem={}", sh_quote(m)));
        }
    }
    line("--ntasks=1".into());
    if let Some(c) = args.cpus_per_task {
        line(format!("--cpus-per-task={c}"));
    }
    if stage != "merge" {
        line("--requeue".into());
    }
    for a in &args.sbatch_args {
        line(sh_quote(a));
    }
    h += "set -euo pipefail\n";
    h += &format!("cd {}\n", sh_quote(&r.workdir.display().to_string()));
    // prepare fills this cache and the shards read it: one folder, which every node must see
    h += &format!("export FLAMINGO_EVAL_CACHE={}\n", sh_quote(&r.cache.display().to_string()));
    h
}

/// `run` / `prepare` refuse a CUDA device without a usable provider by default (no silent CPU fallback).
fn device_flags(r: &Resolved) -> String {
    format!("--device {}", sh_quote(&r.device))
}

/// The scripts for `args` (writes nothing).
/// Returns the scripts, their folder, the run's folder and the cache folder.
pub fn job_scripts(args: &SlurmArgs) -> Result<(JobScripts, PathBuf, PathBuf, PathBuf)> {
    let r = resolve(args)?;
    let q = |p: &Path| sh_quote(&p.display().to_string());
    let n = args.shards;
    let threads = args.threads.or(args.cpus_per_task).map(|t| format!(" --threads {t}")).unwrap_or_default();
    let prepare_time = args.prepare_time.as_deref().or(args.time.as_deref());

    let mut prepare = header(args, &r, "prepare", true, prepare_time);
    prepare += &format!(
        "exec {} prepare --benchmark {} --model {} --out {} {}{threads}\n",
        q(&r.bin), q(&r.benchmark), q(&r.model), q(&r.out), device_flags(&r)
    );

    let mut shards = header(args, &r, "shards", true, args.time.as_deref());
    let array = match args.max_parallel {
        Some(m) => format!("0-{}%{m}", n - 1),
        None => format!("0-{}", n - 1),
    };
    // the array line goes with the other #SBATCH lines (before `set`)
    shards = shards.replacen("set -euo pipefail\n", &format!("#SBATCH --array={array}\nset -euo pipefail\n"), 1);
    let mut run_flags = String::new();
    if let Some(t) = &args.template {
        run_flags += &format!(" --template {}", q(t));
    }
    if let Some(s) = &args.shots {
        run_flags += &format!(" --shots {}", s.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
    }
    let num_trials = args.num_trials.or(args.trials_deprecated);
    if args.num_trials.is_none() && args.trials_deprecated.is_some() {
        crate::cli::common::deprecated("--trials N", "--num-trials N");
    }
    if let Some(t) = num_trials {
        run_flags += &format!(" --num-trials {t}");
    }
    if let Some(l) = &args.limit {
        run_flags += &format!(" --limit {}", sh_quote(&l.to_string()));
    }
    if let Some(b) = args.batch_size {
        run_flags += &format!(" --batch-size {b}");
    }
    for a in &args.run_args {
        run_flags += &format!(" {}", sh_quote(a));
    }
    shards += &format!(
        ": \"${{SLURM_ARRAY_TASK_ID:?run this script as a job array: sbatch --array={array} $0}}\"\n\
         # the shard count is explicit, so one index resubmitted alone (sbatch --array=I) is still shard I of {n}\n\
         exec {} run --benchmark {} --model {} --out {} --shard \"$SLURM_ARRAY_TASK_ID/{n}\" --rices-cache require --quiet {}{threads}{run_flags}\n",
        q(&r.bin), q(&r.benchmark), q(&r.model), q(&r.out), device_flags(&r)
    );

    let mut merge = header(args, &r, "merge", false, prepare_time);
    merge += &format!(
        "shards=()\nfor ((i = 0; i < {n}; i++)); do shards+=({}/shard-\"$i\"-of-{n}); done\n\
         exec {} merge --results \"${{shards[@]}}\" --out {} --benchmark {}\n",
        q(&r.out), q(&r.bin), q(&r.out), q(&r.benchmark)
    );

    let dir = q(&r.scripts);
    let submit = format!(
        "#!/usr/bin/env bash\n\
         # Submits prepare → shards (array) → merge, chained with --dependency=afterok. Written by `flamingo-eval slurm`.\n\
         set -euo pipefail\n\
         cd {dir}\n\
         mkdir -p logs\n\
         P=$(sbatch --parsable prepare.sbatch); P=${{P%%;*}}\n\
         A=$(sbatch --parsable --dependency=afterok:$P shards.sbatch); A=${{A%%;*}}\n\
         M=$(sbatch --parsable --dependency=afterok:$A --kill-on-invalid-dep=yes merge.sbatch); M=${{M%%;*}}\n\
         echo \"prepare $P, shards $A (array {array}), merge $M\"\n"
    );
    Ok((JobScripts { prepare, shards, merge, submit }, r.scripts, r.out, r.cache))
}

/// Job ids of a submission.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Submitted {
    pub prepare: String,
    pub shards: String,
    pub merge: String,
}

fn sbatch(dir: &Path, args: &[String]) -> Result<String> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| anyhow!("cannot run sbatch ({e}): is Slurm installed and on PATH? Without --submit the scripts are only written"))?;
    if !out.status.success() {
        bail!("sbatch {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch {} printed no job id: {:?}", args.join(" "), text.trim());
    }
    Ok(id)
}

pub fn run(args: SlurmArgs) -> Result<ExitCode> {
    let (scripts, dir, out, cache) = job_scripts(&args)?;
    std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in [
        ("prepare.sbatch", &scripts.prepare),
        ("shards.sbatch", &scripts.shards),
        ("merge.sbatch", &scripts.merge),
        ("submit.sh", &scripts.submit),
    ] {
        let path = dir.join(name);
        crate::report::write_atomic(&path, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let n = args.shards;
    println!("job scripts in {}:", dir.display());
    println!("  sbatch --parsable prepare.sbatch                                  # → P");
    println!("  sbatch --parsable --dependency=afterok:$P shards.sbatch            # → A (array 0-{})", n - 1);
    println!("  sbatch --dependency=afterok:$A --kill-on-invalid-dep=yes merge.sbatch");
    println!("(or run {}/submit.sh); results: {}", dir.display(), out.display());
    println!("cache (RICES embeddings; must be on storage every node sees): {}", cache.display());
    if !args.submit {
        return Ok(ExitCode::SUCCESS);
    }
    let p = sbatch(&dir, &["prepare.sbatch".into()])?;
    let a = sbatch(&dir, &[format!("--dependency=afterok:{p}"), "shards.sbatch".into()])?;
    let m = sbatch(&dir, &[format!("--dependency=afterok:{a}"), "--kill-on-invalid-dep=yes".into(), "merge.sbatch".into()])?;
    let sub = Submitted { prepare: p.clone(), shards: a.clone(), merge: m.clone() };
    crate::report::write_atomic(&dir.join("jobs.json"), (serde_json::to_string_pretty(&sub)? + "\n").as_bytes())?;
    println!("submitted: prepare {p}, shards {a} (array 0-{}), merge {m}; ids in {}", n - 1, dir.join("jobs.json").display());
    println!(
        "a failed shard I: `cd {} && sbatch --array=I shards.sbatch` (it resumes), then `sbatch --dependency=afterok:<that job> merge.sbatch`",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
