//! `flamingo-eval report`: Markdown + HTML report and shot-scaling plots of one or several results folders.

use crate::report::render::{default_out, report, ReportOptions};
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
    /// Output folder for report.md, report.html and shot_scaling_*.svg/png (default: the one results folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder of published numbers (*.yaml) to put beside matching runs.
    #[arg(long, default_value = "results/reference")]
    pub reference: PathBuf,
}

pub fn run(mut args: ReportArgs) -> Result<ExitCode> {
    args.results = crate::cli::common::results_folders(&args.results, &args.results_positional);
    let out = args.out.clone().or_else(|| default_out(&args.results)).ok_or_else(|| {
        anyhow!("several results folders given: say where the report goes with --out DIR")
    })?;
    let outcome = report(&args.results, &ReportOptions { out, references: args.reference })?;
    for f in &outcome.files {
        println!("{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
