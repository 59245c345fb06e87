//! Prompt text from a template, a query sample and its demonstrations (OpenFlamingo's construction).
//!
//! `prompt = prefix + Σ_demo (render(demo) + separator) + render(query)` (`prefix`: the template's
//! instruction, usually empty). With `shots == 0` and the
//! `text_only_demos` zero-shot policy, the demonstrations' text is kept but every media marker in the
//! demonstration part is removed, and only the query's media is passed (OF; PROTOCOL §1). OF's 0-shot
//! classification still passes the two demonstration images although the text has one `<image>`: that
//! bug is deliberately not reproduced. The media list always matches the markers in the final text,
//! in order.

use super::datasets::{MediaRef, Sample};
use super::template::{render_into, PromptTemplate};
use anyhow::{bail, Context, Result};

/// A built prompt: the exact text, and the samples whose media fill its markers, in order.
#[derive(Debug, Clone)]
pub struct BuiltPrompt {
    pub text: String,
    pub media: Vec<MediaRef>,
}

/// Build the prompt for `query` with `demos` (in prompt order). `text_only` makes the demonstrations
/// text-only (the zero-shot policy).
pub fn build_prompt(t: &PromptTemplate, query: &Sample, demos: &[&Sample], text_only: bool) -> Result<BuiltPrompt> {
    let mut text = t.prefix.clone();
    let mut media = Vec::with_capacity(demos.len() + 1);
    for d in demos {
        render_into(&mut text, &t.demo, |f| d.field(f)).with_context(|| format!("demonstration {}", d.id))?;
        text.push_str(&t.separator);
        if !text_only {
            media.push(d.media.clone());
        }
    }
    if text_only {
        text = text.replace(&t.media_marker, "");
    }
    render_into(&mut text, &t.query, |f| query.field(f)).with_context(|| format!("query {}", query.id))?;
    media.push(query.media.clone());
    let markers = text.matches(t.media_marker.as_str()).count();
    if markers != media.len() {
        bail!(
            "sample {}: the prompt has {markers} `{}` markers but {} media items (does a question or demonstration text contain the marker?)",
            query.id,
            t.media_marker,
            media.len()
        );
    }
    Ok(BuiltPrompt { text, media })
}
