//! `flamingo-eval compare`: paired comparison of two results folders, as a CI regression gate.

use crate::report::compare::{compare, CompareConfig};
use crate::report::write_atomic;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Baseline results folder (or a folder of them, one per benchmark).
    pub baseline: PathBuf,
    /// Candidate results folder (or a folder of them).
    pub candidate: PathBuf,
    /// Largest tolerated drop in metric points (metrics are ×100).
    #[arg(long, default_value_t = 0.5)]
    pub max_drop: f64,
    /// Significance level of the two-sided paired bootstrap test.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    #[command(flatten)]
    pub bootstrap: crate::cli::common::BootstrapArgs,
    #[command(flatten)]
    pub legacy_bootstrap: crate::cli::common::LegacyBootstrapArgs,
    /// Also write the Markdown summary to this file (e.g. for a pull-request comment).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Exit codes: 0 no regression, 1 significant regression beyond --max-drop (or new sample errors),
/// 2 incomparable inputs (or unreadable ones).
pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let b = args.bootstrap.config(Some(&args.legacy_bootstrap));
    let cfg = CompareConfig { max_drop: args.max_drop, alpha: args.alpha, resamples: b.resamples, seed: b.seed, confidence: b.confidence };
    let cmp = compare(&args.baseline, &args.candidate, &cfg)?;
    let md = cmp.markdown();
    print!("{md}");
    if let Some(p) = &args.markdown {
        write_atomic(p, md.as_bytes())?;
    }
    if let Some(p) = &args.junit {
        write_atomic(p, cmp.junit().as_bytes())?;
    }
    for i in &cmp.incomparable {
        eprintln!("error: {}: cannot compare: {}", i.benchmark, i.reason);
    }
    eprintln!("{}", crate::report::samples::changed_view_hint(&args.baseline, &args.candidate));
    Ok(ExitCode::from(cmp.exit_code()))
}
