//! `flamingo-eval normalize vqa`: print, for each answer read (one per line), exactly the text the VQA
//! metric compares, so users and tests can see what the metric sees.

use crate::cli::score::ModeArg;
use crate::metrics::vqa::{clean_whitespace, normalize_answer};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Show what a metric compares: answers in, normalised answers out.
#[derive(Args, Debug)]
pub struct NormalizeArgs {
    #[command(subcommand)]
    pub what: NormalizeWhat,
}

#[derive(Subcommand, Debug)]
pub enum NormalizeWhat {
    /// VQA answers, one per line (stdin or FILE), to the form VQA accuracy compares, one per line.
    Vqa(NormalizeVqaArgs),
}

#[derive(Args, Debug)]
pub struct NormalizeVqaArgs {
    /// File of answers, one per line (default: standard input).
    pub file: Option<PathBuf>,
    /// `official` (GT-Vision-Lab vqaEval.py) or `openflamingo` (open_flamingo/eval/vqa_metric.py). Both
    /// normalise with the same steps: newline/tab to space and strip, punctuation, then lower case, number
    /// words to digits, articles dropped, contractions restored.
    #[arg(long, value_enum, default_value_t = ModeArg::Official)]
    pub mode: ModeArg,
    /// `--mode official` only: print what vqaEval.py compares when all ground-truth answers of a question
    /// are identical: then it only replaces newline/tab by a space and strips (no punctuation, case or
    /// number handling). Without this flag official mode prints the form compared when they differ.
    #[arg(long)]
    pub unanimous: bool,
}

pub fn run(args: NormalizeArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        NormalizeWhat::Vqa(a) => vqa(&a),
    }
}

fn vqa(a: &NormalizeVqaArgs) -> anyhow::Result<ExitCode> {
    if a.unanimous && a.mode != ModeArg::Official {
        anyhow::bail!("--unanimous applies to --mode official only (OpenFlamingo always normalises fully)");
    }
    let text = match &a.file {
        Some(p) => std::fs::read(p).with_context(|| format!("could not read {}", p.display()))?,
        None => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf).context("could not read standard input")?;
            buf
        }
    };
    let source = a.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "standard input".into());
    let text = String::from_utf8(text).map_err(|e| anyhow::anyhow!("{source}: not UTF-8 text ({e})"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if !text.is_empty() {
        for line in body.split('\n') {
            let shown = if a.unanimous { clean_whitespace(line) } else { normalize_answer(line) };
            writeln!(out, "{shown}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
