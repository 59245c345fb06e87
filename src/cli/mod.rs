//! The `flamingo-eval` command line: flags are declared here and in one file per subcommand;
//! each subcommand file turns its flags into calls on the library and prints the result.

pub mod common;
pub mod model;
pub mod score;
pub mod prompts;
pub mod run;

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
    /// Evaluate a model on a benchmark: every shot count and trial, results under results/.
    Run(run::RunArgs),
    /// Inspect an exported model directory.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Generate text for a prompt with images (try a model by hand).
    Generate(model::GenerateArgs),
    /// Score prediction files with the official metrics (VQA, captions, classification, video QA).
    Score(score::ScoreArgs),
    /// Print the exact prompts, demonstration ids and media order of a benchmark (no model run).
    Prompts(prompts::PromptsArgs),
}

/// Entry point used by the binary: parses flags, runs, and maps errors to a readable message
/// and exit code (2 for usage/configuration errors unless a subcommand chooses otherwise).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Run(args) => run::run_cmd(args),
        Command::Model(cmd) => model::run_model(cmd),
        Command::Generate(args) => model::run_generate(args),
        Command::Score(args) => score::run(args),
        Command::Prompts(args) => prompts::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
