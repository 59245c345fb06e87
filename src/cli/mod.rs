//! The `flamingo-eval` command line: flags are declared here and in one file per subcommand;
//! each subcommand file turns its flags into calls on the library and prints the result.

pub mod benchmarks;
pub mod common;
pub mod compare;
pub mod export;
pub mod merge;
pub mod report;
pub mod model;
pub mod normalize;
pub mod score;
pub mod prompts;
pub mod prepare;
pub mod run;
pub mod slurm;
pub mod tokenize;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Few-shot evaluation harness for Flamingo-style visual language models (ONNX export).
#[derive(Parser, Debug)]
#[command(name = "flamingo-eval", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate a model on one or several benchmarks: every shot count and trial, results under results/.
    Run(run::RunArgs),
    /// List the bundled benchmarks, or check benchmark files without a model.
    #[command(subcommand)]
    Benchmarks(benchmarks::BenchmarksCommand),
    /// Inspect an exported model directory.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Generate text for a prompt with images (try a model by hand).
    Generate(model::GenerateArgs),
    /// Score prediction files with the official metrics (VQA, captions, classification, video QA).
    Score(score::ScoreArgs),
    /// Print the exact prompts, demonstration ids and media order of a benchmark (no model run).
    Prompts(prompts::PromptsArgs),
    /// Markdown + HTML report with shot-scaling plots and published numbers, for results folders.
    Report(report::ReportArgs),
    /// Paired comparison of two results folders (CI gate): exit 0 ok, 1 regression, 2 incomparable.
    Compare(compare::CompareArgs),
    /// Join the shard folders of `run --shard I/N` into results identical to an unsharded run.
    Merge(merge::MergeArgs),
    /// Test-server submission files (VQAv2 test-dev, VizWiz) from a results folder.
    Export(export::ExportArgs),
    /// Print what a metric compares (`normalize vqa`: answers to the VQA metric's normalised form).
    Normalize(normalize::NormalizeArgs),
    /// Work done once before a sharded run: check benchmark and model, fill the RICES embedding cache.
    Prepare(prepare::PrepareArgs),
    /// Write (and with --submit, submit) Slurm jobs for a sharded run: prepare → shard array → merge.
    Slurm(slurm::SlurmArgs),
    /// Show what the metrics see: `tokenize ptb` prints captions as the caption metrics tokenize them.
    #[command(subcommand)]
    Tokenize(tokenize::TokenizeCommand),
}

/// Entry point used by the binary: parses flags, runs, and maps errors to a readable message
/// and exit code (2 for usage/configuration errors unless a subcommand chooses otherwise).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Run(args) => run::run_cmd(args),
        Command::Benchmarks(cmd) => benchmarks::run(cmd),
        Command::Model(cmd) => model::run_model(cmd),
        Command::Generate(args) => model::run_generate(args),
        Command::Score(args) => score::run(args),
        Command::Prompts(args) => prompts::run(args),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Export(args) => export::run(args),
        Command::Normalize(args) => normalize::run(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Slurm(args) => slurm::run(args),
        Command::Tokenize(cmd) => tokenize::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(error_code(&err))
        }
    }
}

/// The exit status of an error: 3 for a results folder held by another run (so scripts can wait and retry),
/// else 2.
pub fn error_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<crate::engine::lock::FolderInUse>().is_some() {
        return 3;
    }
    2
}
