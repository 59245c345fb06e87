//! `flamingo-eval report`: Markdown + HTML report, shot-scaling plots and the sample browser of one or several
//! results folders.

use crate::report::render::{default_out, report, ReportOptions, SamplesMode};
use crate::report::samples::DEFAULT_MAX_RECORDS;
use anyhow::{anyhow, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Results folders (of `run` or `merge`), or folders holding several of them.
    #[arg(long, num_args = 1.., value_name = "DIR", required_unless_present = "results_positional")]
    pub results: Vec<PathBuf>,
    /// Deprecated: results folders as positional arguments (use --results).
    #[arg(hide = true, value_name = "DIR")]
    pub results_positional: Vec<PathBuf>,
    /// Output folder for report.md, report.html, shot_scaling_*.svg/png and the sample browser (samples.html,
    /// report_samples/) (default: the one results folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder of published numbers (*.yaml) to put beside matching runs.
    #[arg(long, default_value = "results/reference")]
    pub reference: PathBuf,
    /// Write the sample browser (samples.html) whatever the number of records. Default: written when the
    /// reported runs hold at most 20000 records in all.
    #[arg(long, conflicts_with = "no_samples")]
    pub samples: bool,
    /// Do not write the sample browser.
    #[arg(long)]
    pub no_samples: bool,
}

pub fn run(mut args: ReportArgs) -> Result<ExitCode> {
    args.results = crate::cli::common::results_folders(&args.results, &args.results_positional);
    let out = args.out.clone().or_else(|| default_out(&args.results)).ok_or_else(|| {
        anyhow!("several results folders given: say where the report goes with --out DIR")
    })?;
    let samples = if args.samples {
        SamplesMode::On
    } else if args.no_samples {
        SamplesMode::Off
    } else {
        SamplesMode::Auto
    };
    debug_assert_eq!(DEFAULT_MAX_RECORDS, 20_000, "the --samples help text states the limit");
    let outcome = report(&args.results, &ReportOptions { out, references: args.reference, samples })?;
    for f in &outcome.files {
        println!("{}", f.display());
    }
    for n in &outcome.notes {
        eprintln!("note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}
