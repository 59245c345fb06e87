//! `flamingo-eval tokenize ptb`: show what the caption metrics see. Reads captions one per line (a file or
//! stdin), tokenizes them as one stream exactly as pycocoevalcap's Java PTB tokenizer does over its
//! temporary file, and prints one line of tokens per input line.

use crate::metrics::ptb::{filter_punctuation, ptb_tokenize_lines};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum TokenizeCommand {
    /// PTB tokens as pycocoevalcap 1.2 hands them to BLEU/ROUGE-L/CIDEr (lower-cased, punctuation removed).
    Ptb(PtbArgs),
}

#[derive(Args, Debug)]
pub struct PtbArgs {
    /// Text file with one caption per line (UTF-8); `-` or nothing reads stdin.
    pub input: Option<PathBuf>,
    /// Print the Java tokenizer's tokens before pycocoevalcap's punctuation filter.
    #[arg(long)]
    pub unfiltered: bool,
}

pub fn run(cmd: TokenizeCommand) -> Result<ExitCode> {
    match cmd {
        TokenizeCommand::Ptb(args) => run_ptb(args),
    }
}

fn run_ptb(args: PtbArgs) -> Result<ExitCode> {
    let (name, bytes) = match &args.input {
        Some(p) if p.as_os_str() != "-" => {
            (p.display().to_string(), std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?)
        }
        _ => {
            let mut b = Vec::new();
            std::io::stdin().read_to_end(&mut b).context("cannot read stdin")?;
            ("<stdin>".to_string(), b)
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            bail!("{name}: line {line} is not valid UTF-8 (byte offset {at}); convert the file to UTF-8");
        }
    };
    // a final newline ends the last line rather than starting an empty one
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lines: Vec<&str> = if text.is_empty() { Vec::new() } else { body.split('\n').collect() };
    let tokens = ptb_tokenize_lines(&lines);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for toks in &tokens {
        let line = if args.unfiltered { toks.join(" ") } else { filter_punctuation(toks) };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
