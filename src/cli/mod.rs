//! The `flamingo-eval` command line: flags are declared here and in one file per subcommand;
//! each subcommand file turns its flags into calls on the library and prints the result.

pub mod prompts;

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
    /// Print the exact prompts, demonstration ids and media order of a benchmark (no model run).
    Prompts(prompts::PromptsArgs),
}

/// Entry point used by the binary: parses flags, runs, and maps errors to a readable message
/// and exit code (2 for usage/configuration errors unless a subcommand chooses otherwise).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
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
