//! The model's tokenizer (`tokenizer.json`, Hugging Face format) and its special tokens.

use crate::model::manifest::Manifest;
use anyhow::{anyhow, bail, Result};
use std::path::Path;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub image_id: u32,
    pub endofchunk_id: u32,
    pub pad_id: u32,
    pub eos_id: u32,
}

impl Tokenizer {
    pub fn load(path: &Path, manifest: &Manifest) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow!("{}: could not load tokenizer: {e}", path.display()))?;
        let st = &manifest.special_tokens;
        for (text, id) in [("<image>", st.image), ("<|endofchunk|>", st.endofchunk)] {
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
        Ok(Tokenizer { inner, image_id: st.image, endofchunk_id: st.endofchunk, pad_id: st.pad, eos_id: st.eos })
    }

    /// Token ids of a prompt, as `tokenizer(text)` does in Python (the tokenizer's own post-processor decides
    /// about BOS; OpenFlamingo's GPT-NeoX and MPT tokenizers add none).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| anyhow!("tokenizer failed on {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of a continuation tokenised on its own, without special tokens (OpenFlamingo's ranking).
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| anyhow!("tokenizer failed on {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes generated tokens, skipping special tokens (as OpenFlamingo's eval does).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| anyhow!("tokenizer could not decode {ids:?}: {e}"))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
