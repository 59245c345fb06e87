//! `flamingo-eval export`: test-server submission files (VQAv2 test-dev, VizWiz) from a results folder.

use crate::report::export::{export, ExportFormat};
use crate::report::write_atomic;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Which server's format.
    #[arg(value_enum)]
    pub format: ExportFormat,
    /// The results folder.
    #[arg(long, value_name = "DIR", required_unless_present = "results_positional", conflicts_with = "results_positional")]
    pub results: Option<PathBuf>,
    /// Deprecated: the results folder as a positional argument (use --results).
    #[arg(hide = true, value_name = "DIR")]
    pub results_positional: Option<PathBuf>,
    /// The split's questions file; every question in it must have a prediction (VQAv2: the official
    /// questions json; VizWiz: test.json or the VQA-format questions file).
    #[arg(long)]
    pub questions: PathBuf,
    /// Shot count to export.
    #[arg(long)]
    pub shot: usize,
    /// Trial index to export (0-based).
    #[arg(long, default_value_t = 0)]
    pub trial: usize,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let results = crate::cli::common::results_folders(args.results.as_slice(), args.results_positional.as_slice());
    let results = results.first().ok_or_else(|| anyhow::anyhow!("give the results folder with --results DIR"))?;
    let (json, n) = export(results, args.format, args.shot, args.trial, &args.questions)?;
    write_atomic(&args.out, json.as_bytes())?;
    println!("{n} answer(s) written to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
