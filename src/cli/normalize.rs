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
    /// Generations, one per line, to what OpenFlamingo's OK-VQA post-processing makes of them (cut at
    /// Question/Answer/Short and ", ", then stemmed), before the VQA metric's normalisation.
    Okvqa(NormalizeOkvqaArgs),
}

#[derive(Args, Debug)]
pub struct NormalizeOkvqaArgs {
    /// File of generations, one per line (default: standard input).
    pub file: Option<PathBuf>,
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
    /// Apply OpenFlamingo's OK-VQA post-processing (`postprocess: ok_vqa_openflamingo`: cut, then stemming)
    /// first, as a run of an OK-VQA benchmark does. Needs nltk's tagger and Punkt models (see README).
    #[arg(long)]
    pub okvqa: bool,
}

pub fn run(args: NormalizeArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        NormalizeWhat::Vqa(a) => vqa(&a),
        NormalizeWhat::Okvqa(a) => {
            let models = crate::benchmark::okvqa::models()?;
            each_line(a.file.as_ref(), |line| Ok(crate::benchmark::okvqa::stem_with(models, &crate::benchmark::postprocess::vqa_openflamingo(line))))
        }
    }
}

/// Reads lines (stdin or a file; a final newline ends the last line) and prints `f` of each, one per line.
fn each_line(file: Option<&PathBuf>, mut f: impl FnMut(&str) -> anyhow::Result<String>) -> anyhow::Result<ExitCode> {
    let text = match file {
        Some(p) => std::fs::read(p).with_context(|| format!("could not read {}", p.display()))?,
        None => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf).context("could not read standard input")?;
            buf
        }
    };
    let source = file.map(|p| p.display().to_string()).unwrap_or_else(|| "standard input".into());
    let text = String::from_utf8(text).map_err(|e| anyhow::anyhow!("{source}: not UTF-8 text ({e})"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if !text.is_empty() {
        for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
            writeln!(out, "{}", f(line)?)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn vqa(a: &NormalizeVqaArgs) -> anyhow::Result<ExitCode> {
    if a.unanimous && a.mode != ModeArg::Official {
        anyhow::bail!("--unanimous applies to --mode official only (OpenFlamingo always normalises fully)");
    }
    let models = if a.okvqa { Some(crate::benchmark::okvqa::models()?) } else { None };
    each_line(a.file.as_ref(), |line| {
        let line = match models {
            Some(t) => crate::benchmark::okvqa::stem_with(t, &crate::benchmark::postprocess::vqa_openflamingo(line)),
            None => line.to_string(),
        };
        Ok(if a.unanimous { clean_whitespace(&line) } else { normalize_answer(&line) })
    })
}
