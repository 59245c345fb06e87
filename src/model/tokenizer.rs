//! The model's tokenizer (`tokenizer.json`, Hugging Face format) and its special tokens.
//!
//! What is added around the text is decided by `model.yaml`, never by a family name: a prompt row is
//! `[bos] + text` when `tokenizer.add_bos` (as Hugging Face's LLaMA tokenizer does for OpenFlamingo's eval:
//! left padding, then BOS, then the text), else just the text; candidate continuations are the text alone.
//! Decoding skips special tokens and, when `tokenizer.clean_up_tokenization_spaces`, applies transformers'
//! clean-up (what `batch_decode` does in OpenFlamingo's eval).

use crate::model::manifest::{Manifest, PromptFormat};
use anyhow::{anyhow, bail, Result};
use std::path::Path;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub image_id: u32,
    pub endofchunk_id: u32,
    pub pad_id: u32,
    pub eos_id: u32,
    /// Generation ends at any of these (`special_tokens`: endofchunk, and end_of_utterance when present).
    pub stop_ids: Vec<u32>,
    /// Prepended to every prompt (`tokenizer.add_bos`), else `None`.
    pub prompt_bos: Option<u32>,
    /// `tokenizer.clean_up_tokenization_spaces`.
    pub clean_up_spaces: bool,
    /// How `<image>` markers are written (`prompt_format`; OpenFlamingo's when absent).
    pub format: PromptFormat,
}

impl Tokenizer {
    pub fn load(path: &Path, manifest: &Manifest) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow!("{}: could not load tokenizer: {e}", path.display()))?;
        let st = &manifest.special_tokens;
        let format = manifest.prompt_format();
        let eou = st.end_of_utterance.map(|id| (crate::model::manifest::END_OF_UTTERANCE, id));
        for (text, id) in [("<image>", st.image), (format.endofchunk_text.as_str(), st.endofchunk)].into_iter().chain(eou) {
            match inner.token_to_id(text) {
                Some(found) if found == id => {}
                Some(found) => bail!(
                    "{}: token {text} has id {found} but model.yaml says {id}; the manifest and tokenizer belong to \
                     different exports",
                    path.display()
                ),
                None => bail!("{}: the tokenizer has no {text} token (model.yaml expects id {id})", path.display()),
            }
        }
        for (key, text) in [("image_open", &format.image_open), ("image_close", &format.image_close)] {
            if !text.is_empty() && inner.token_to_id(text).is_none() {
                bail!(
                    "{}: model.yaml's prompt_format.{key} is {text:?}, which is not a token of this tokenizer; the \
                     manifest and tokenizer belong to different exports",
                    path.display()
                );
            }
        }
        let prompt_bos = if manifest.tokenizer.add_bos { st.bos } else { None };
        if let Some(id) = prompt_bos {
            if inner.id_to_token(id).is_none() {
                bail!(
                    "{}: model.yaml's special_tokens.bos is {id}, which this tokenizer does not have; the manifest and \
                     tokenizer belong to different exports",
                    path.display()
                );
            }
        }
        let tok = Tokenizer {
            inner,
            image_id: st.image,
            endofchunk_id: st.endofchunk,
            pad_id: st.pad,
            eos_id: st.eos,
            stop_ids: st.stop_tokens(),
            prompt_bos,
            clean_up_spaces: manifest.tokenizer.clean_up_tokenization_spaces,
            format,
        };
        tok.check_post_processor(path)?;
        Ok(tok)
    }

    /// The tokenizer's own post-processor (what `tokenizer(text)` adds in Python) must add either nothing or
    /// exactly what model.yaml says; anything else means the manifest and tokenizer.json disagree.
    fn check_post_processor(&self, path: &Path) -> Result<()> {
        let probe = "a photo";
        let with = self.inner.encode(probe, true).map_err(|e| anyhow!("{}: tokenizer failed: {e}", path.display()))?;
        let plain = self.encode_continuation(probe)?;
        let ours = self.encode(probe)?;
        let with = with.get_ids();
        if with != &plain[..] && with != &ours[..] {
            bail!(
                "{}: tokenizer.json's post-processor turns {probe:?} into {with:?}, but model.yaml (tokenizer.add_bos \
                 {}, special_tokens.bos {:?}) gives {ours:?}; the manifest and the tokenizer disagree about special \
                 tokens around a prompt: re-export the model",
                path.display(),
                self.prompt_bos.is_some(),
                self.prompt_bos
            );
        }
        Ok(())
    }

    /// Token ids of a prompt row: BOS first when model.yaml's `tokenizer.add_bos` says so, then the text —
    /// with its `<image>` markers written as `prompt_format` says — tokenised without the tokenizer's own
    /// special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let text = crate::model::prompt_format::render(text, &self.format);
        let text = text.as_str();
        let enc = self.inner.encode(text, false).map_err(|e| anyhow!("tokenizer failed on {text:?}: {e}"))?;
        Ok(self.prompt_bos.into_iter().chain(enc.get_ids().iter().copied()).collect())
    }

    /// Token ids of a continuation tokenised on its own, without special tokens and without BOS
    /// (OpenFlamingo's ranking: `tokenizer(class_name, add_special_tokens=False)`).
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| anyhow!("tokenizer failed on {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes generated tokens as OpenFlamingo's eval does (`batch_decode(..., skip_special_tokens=True)`):
    /// special tokens skipped, then transformers' clean-up when the manifest enables it.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let text = self.inner.decode(ids, true).map_err(|e| anyhow!("tokenizer could not decode {ids:?}: {e}"))?;
        Ok(if self.clean_up_spaces { clean_up_tokenization(&text) } else { text })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// transformers 4.33's `clean_up_tokenization`: removes the space before `.` `?` `!` `,` and English
/// contractions, and joins ` ' `. The replacements run in this order, each over the whole string, left to
/// right without overlaps (Python's `str.replace`, which `str::replace` matches).
pub fn clean_up_tokenization(text: &str) -> String {
    const RULES: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    let mut out = text.to_string();
    for (from, to) in RULES {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean_up_tokenization;

    #[test]
    fn clean_up_follows_the_replacement_order() {
        assert_eq!(clean_up_tokenization("it ' s"), "it's");
        assert_eq!(clean_up_tokenization("a , b . c ? d !"), "a, b. c? d!");
        assert_eq!(clean_up_tokenization("I 'm sure they 're here , we 've seen it"), "I'm sure they're here, we've seen it");
        assert_eq!(clean_up_tokenization("do n't"), "don't");
        // Each rule runs once over the whole string: no re-scan of what a replacement produced.
        assert_eq!(clean_up_tokenization("a  . b"), "a . b");
        assert_eq!(clean_up_tokenization("isn ' t"), "isn't");
        assert_eq!(clean_up_tokenization(" ' 's"), "''s");
        assert_eq!(clean_up_tokenization(" ' ' "), "'' ");
        assert_eq!(clean_up_tokenization("  ."), " .");
        assert_eq!(clean_up_tokenization("no change"), "no change");
    }
}
