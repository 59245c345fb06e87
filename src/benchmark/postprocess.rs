//! Post-processing of generated text before scoring (OpenFlamingo's rules, PROTOCOL §3).
//!
//! OK-VQA: OF additionally lemmatises every word of the answer (nltk WordNet + `inflection`). That step
//! is NOT implemented here; `ok_vqa_openflamingo` applies the VQA rule only, so OK-VQA scores can be
//! slightly lower than OF's.

use super::spec::PostprocessKind;

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

/// Apply the benchmark's post-processing.
pub fn apply(kind: PostprocessKind, text: &str) -> String {
    match kind {
        PostprocessKind::None => text.to_string(),
        PostprocessKind::VqaOpenflamingo | PostprocessKind::OkVqaOpenflamingo => vqa_openflamingo(text),
        PostprocessKind::CaptionOpenflamingo => caption_openflamingo(text),
        PostprocessKind::Strip => text.trim().to_string(),
    }
}
