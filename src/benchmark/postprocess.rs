//! Post-processing of generated text before scoring (OpenFlamingo's rules, PROTOCOL §3).
//!
//! OK-VQA: `ok_vqa_openflamingo` cuts as `vqa_openflamingo`, then stems every word as OpenFlamingo does
//! (manual OK-VQA table, WordNet verb lemmas for `-ing` words, `inflection.singularize` for plural nouns):
//! see [`super::okvqa`].

use super::spec::PostprocessKind;
use anyhow::Result;

/// OF VQA: cut at the first of `Question`, `Answer`, `Short`; then at the first `", "`.
pub fn vqa_openflamingo(text: &str) -> String {
    let cut = ["Question", "Answer", "Short"].iter().filter_map(|m| text.find(m)).min().unwrap_or(text.len());
    let t = &text[..cut];
    match t.find(", ") {
        Some(i) => t[..i].to_string(),
        None => t.to_string(),
    }
}

/// OF captioning: cut at the first `Output`, then remove double quotes.
pub fn caption_openflamingo(text: &str) -> String {
    let t = match text.find("Output") {
        Some(i) => &text[..i],
        None => text,
    };
    t.replace('"', "")
}

/// Apply the benchmark's post-processing. Fails only where [`prepare`] would have (OK-VQA without nltk's
/// models).
pub fn apply(kind: PostprocessKind, text: &str) -> Result<String> {
    Ok(match kind {
        PostprocessKind::None => text.to_string(),
        PostprocessKind::VqaOpenflamingo => vqa_openflamingo(text),
        PostprocessKind::OkVqaOpenflamingo => super::okvqa::postprocess(text)?,
        PostprocessKind::CaptionOpenflamingo => caption_openflamingo(text),
        PostprocessKind::Strip => text.trim().to_string(),
    })
}

/// Loads what a post-processing needs (OK-VQA: nltk's tagger and Punkt models), so that a missing file stops a run
/// before any work, with the fix.
pub fn prepare(kind: PostprocessKind) -> Result<()> {
    if kind == PostprocessKind::OkVqaOpenflamingo {
        super::okvqa::models()?;
    }
    Ok(())
}
