//! `flamingo-eval prompts`: print the exact prompts, demonstration ids and media order of a benchmark
//! without running the language model.

use crate::benchmark::pinned::DemoPins;
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
    /// Shot counts, e.g. 0,4 (default: every shot count of the benchmark).
    #[arg(long, value_delimiter = ',')]
    pub shots: Option<Vec<usize>>,
    /// Another prompt template for this benchmark (as `run --template`): a bundled name or a file.
    #[arg(long, value_name = "NAME|FILE")]
    pub template: Option<PathBuf>,
    /// Trial index (0-based; default: every trial).
    #[arg(long)]
    pub trial: Option<usize>,
    #[command(flatten)]
    pub seeds: crate::cli::common::SeedArgs,
    /// Print at most N samples per (shot, trial), or a fraction of them (0.1 or 10%, rounded up), as `run --limit`.
    #[arg(long, value_name = "N|FRACTION")]
    pub limit: Option<crate::benchmark::overrides::Limit>,
    /// Model directory: only needed for RICES demonstration selection (image embeddings).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Print one JSON object per request instead of text.
    #[arg(long)]
    pub json: bool,
    /// Pinned demonstrations (as `run --demos`): print the prompts this file describes.
    #[arg(long, value_name = "FILE")]
    pub demos: Option<PathBuf>,
    /// With --demos: samples the file does not cover get the benchmark's own selection (default: error).
    #[arg(long, requires = "demos")]
    pub demos_fallback: bool,
    #[command(flatten)]
    pub runtime: crate::cli::common::RuntimeArgs,
}

pub fn run(args: PromptsArgs) -> Result<ExitCode> {
    let mut bench = Benchmark::load(&args.benchmark)?;
    if let Some(t) = &args.template {
        bench.set_template(t)?;
    }
    let overrides = crate::benchmark::overrides::SpecOverrides { seeds: args.seeds.seeds(), generation: vec![] };
    crate::benchmark::overrides::apply(&mut bench.spec, &overrides).map_err(|e| anyhow::anyhow!("{}: {e:#}", args.benchmark.display()))?;
    for s in bench.skipped_summaries() {
        eprintln!("warning: {s}");
    }
    let shots = match &args.shots {
        Some(s) => s.clone(),
        None => bench.spec.shots.clone(),
    };
    let trials: Vec<usize> = match args.trial {
        Some(t) => vec![t],
        None => (0..bench.spec.trials.seeds.len()).collect(),
    };
    let limit: Option<usize> = match &args.limit {
        Some(l) => Some(l.resolve(bench.eval_indices(0)?.len())),
        None => None,
    };
    // Pins are validated against the benchmark and the printed sweep before anything else.
    let pins = match &args.demos {
        Some(path) => {
            let pins = DemoPins::load(path, &bench)?;
            let cov = pins.coverage(&bench, &shots, &trials, limit)?;
            pins.check_coverage(&cov, args.demos_fallback)?;
            if let Some(note) = pins.fallback_note(&bench, &cov) {
                eprintln!("note: {note}");
            }
            let needs_selection = !cov.missing.is_empty();
            Some((pins, needs_selection))
        }
        None => None,
    };
    // RICES embeddings are only needed where the benchmark selects demonstrations itself.
    if bench.uses_rices() && pins.as_ref().map_or(true, |(_, needs)| *needs) {
        let opts = args.runtime.options();
        let mut model = match &args.model {
            Some(dir) => Some(crate::model::FlamingoModel::load(dir, &opts)?),
            None => None,
        };
        crate::engine::run::prepare_rices(&mut bench, model.as_mut(), &opts)?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for &shot in &shots {
        for &trial in &trials {
            let set = match &pins {
                None => bench.requests(shot, trial, limit)?,
                Some((p, _)) => {
                    let mut idx = bench.eval_indices(trial)?;
                    if let Some(l) = limit {
                        idx.truncate(l);
                    }
                    bench.requests_pinned(shot, trial, &idx, p, args.demos_fallback)?.set
                }
            };
            for s in &set.skipped {
                eprintln!("warning: skipped {s}");
            }
            for r in &set.requests {
                if let Some(e) = &r.error {
                    // `run` records this on the sample instead of evaluating it.
                    eprintln!("warning: shot {shot} trial {trial}: {e}");
                }
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
                for (j, m) in r.ensemble.iter().enumerate() {
                    let ids = if m.demo_ids.is_empty() { &m.text_only_demo_ids } else { &m.demo_ids };
                    writeln!(out, "ensemble order {} of {}: {} (prompt below is order 1)", j + 2, r.ensemble.len() + 1, ids.join(", "))?;
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
