//! Consistency of a loaded model directory beyond the contract's tensor names: the manifest's numbers
//! against its own graphs and tokenizer. Each mismatch would otherwise surface mid-run as a raw ONNX Runtime
//! error (an out-of-range token id in a Gather, a position past the graph's table). `run` refuses a model
//! with any mismatch before work starts; `model inspect` lists them all.

use crate::model::flamingo::RowsState;
use crate::model::kv::{KvCache, KvTensor};
use crate::model::tensors::FloatBuf;
use crate::model::FlamingoModel;
use crate::model::Manifest;

/// One disagreement, in words, naming the key of model.yaml and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks of model.yaml alone (no graph needed).
pub fn manifest_mismatches(m: &Manifest) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let (size, patch) = (m.preprocess.image_size as usize, m.vision.patch_size as usize);
    // vision.cls_token kept (IDEFICS): the perceiver also gets the CLS token
    let cls = (m.vision.cls_token == crate::model::manifest::ClsToken::Kept) as usize;
    if patch > 0 && (size % patch != 0 || (size / patch) * (size / patch) + cls != m.vision.num_patches) {
        out.push(Mismatch(format!(
            "preprocess.image_size {size} with vision.patch_size {patch} gives {} patches{}, but vision.num_patches is {}",
            if size % patch == 0 { ((size / patch) * (size / patch)).to_string() } else { "a fractional number of".into() },
            if cls == 1 { " + CLS (vision.cls_token: kept)" } else { "" },
            m.vision.num_patches
        )));
    }
    let v = m.lang.vocab_size;
    let st = &m.special_tokens;
    for (key, id) in [("image", Some(st.image)), ("endofchunk", Some(st.endofchunk)), ("pad", Some(st.pad)), ("eos", Some(st.eos)), ("bos", st.bos)] {
        if let Some(id) = id {
            if id as usize >= v {
                out.push(Mismatch(format!("special_tokens.{key} is {id}, outside the model's vocabulary of {v} (lang.vocab_size)")));
            }
        }
    }
    out
}

/// Every mismatch between the manifest, the tokenizer and the graphs of a loaded model. `probe_positions`
/// also runs one decoder step at the last position model.yaml promises (a KV cache of max_positions − 1
/// zero entries), which finds a `lang.max_positions` larger than the graph supports.
pub fn mismatches(model: &mut FlamingoModel, probe_positions: bool) -> Vec<Mismatch> {
    // The probes' model calls are part of loading (`run` counts them in `model_load_s`), not of the evaluation:
    // the stage times and call counts start after them.
    let stats = model.stats.clone();
    let out = mismatches_probed(model, probe_positions);
    model.stats = stats;
    out
}

fn mismatches_probed(model: &mut FlamingoModel, probe_positions: bool) -> Vec<Mismatch> {
    let mut out = manifest_mismatches(&model.manifest);
    let m = model.manifest.clone();
    let tok_file = model.dir.join(&m.components.tokenizer.file);
    let top = tokenizer_max_id(&tok_file).map(|t| t + 1).unwrap_or(0).max(model.tokenizer.vocab_size());
    if top > m.lang.vocab_size {
        out.push(Mismatch(format!(
            "the tokenizer has token ids up to {} but the model's vocabulary is {} (lang.vocab_size, the decoder's \
             logit width): those ids would index past the embedding table; {} belongs to another model",
            top - 1,
            m.lang.vocab_size,
            tok_file.display()
        )));
    }
    let fixed = |shape: &Option<Vec<i64>>, i: usize| shape.as_ref().and_then(|s| s.get(i).copied()).filter(|&d| d > 0);
    let pixels = model.tensor_shape("vision_encoder", "pixels");
    let size = m.preprocess.image_size as i64;
    for (i, what) in [(2usize, "height"), (3, "width")] {
        if let Some(d) = fixed(&pixels, i) {
            if d != size {
                out.push(Mismatch(format!(
                    "preprocess.image_size is {size} but the vision encoder graph takes images of {what} {d}; \
                     model.yaml does not belong to this vision_encoder.onnx"
                )));
            }
        }
    }
    let checks: [(&str, &str, usize, usize, &str); 4] = [
        ("vision_encoder", "patch_tokens", 1, m.vision.num_patches, "vision.num_patches"),
        ("vision_encoder", "patch_tokens", 2, m.vision.width, "vision.width"),
        ("vision_encoder", "image_embedding", 1, m.vision.embed_dim, "vision.embed_dim"),
        ("lang_decoder", "logits", 2, m.lang.vocab_size, "lang.vocab_size"),
    ];
    for (comp, tensor, i, want, key) in checks {
        if let Some(d) = fixed(&model.tensor_shape(comp, tensor), i) {
            if d as usize != want {
                out.push(Mismatch(format!("{key} is {want} but {comp}'s output '{tensor}' has {d} there")));
            }
        }
    }
    for i in 0..m.lang.n_layers.min(1) {
        let shape = model.tensor_shape("lang_decoder", &format!("past_key_{i}"));
        for (j, want, key) in [(1usize, m.lang.n_heads, "lang.n_heads"), (3, m.lang.head_dim, "lang.head_dim")] {
            if let Some(d) = fixed(&shape, j) {
                if d as usize != want {
                    out.push(Mismatch(format!("{key} is {want} but the decoder's KV cache input past_key_{i} has {d} there")));
                }
            }
        }
    }
    if probe_positions && out.is_empty() {
        if let Err(e) = probe_last_position(model) {
            out.push(Mismatch(format!(
                "lang.max_positions is {} but the decoder graph fails at that position: {}; set lang.max_positions \
                 to what the exported model supports (its max_position_embeddings / max_seq_len)",
                m.lang.max_positions,
                crate::model::runtime::strip_ansi(&format!("{e:#}")).trim()
            )));
        }
    }
    out
}

/// The largest token id a Hugging Face tokenizer.json defines (model vocabulary and added tokens).
fn tokenizer_max_id(path: &std::path::Path) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let vocab = match &v["model"]["vocab"] {
        serde_json::Value::Object(map) => map.values().filter_map(|x| x.as_u64()).max().map(|x| x as usize),
        serde_json::Value::Array(list) => list.len().checked_sub(1),
        _ => None,
    };
    let added = v["added_tokens"].as_array().and_then(|l| l.iter().filter_map(|t| t["id"].as_u64()).max()).map(|x| x as usize);
    vocab.max(added)
}

/// One decoder step for a single token at position max_positions − 1 after a zero KV cache.
fn probe_last_position(model: &mut FlamingoModel) -> anyhow::Result<()> {
    let l = &model.manifest.lang;
    let past = l.max_positions.saturating_sub(1);
    let n = l.n_heads * past * l.head_dim;
    let ty = model.float_type();
    let layers = (0..l.n_layers).map(|_| (KvTensor::Host(FloatBuf::zeros(ty, n)), KvTensor::Host(FloatBuf::zeros(ty, n)))).collect();
    let state = RowsState {
        kv: KvCache { batch: 1, len: past, heads: l.n_heads, head_dim: l.head_dim, ty, layers },
        mask: vec![vec![1; past]],
        real_len: vec![past],
        media: vec![vec![]],
        attends: vec![false],
        cross: crate::model::xattn::CrossRows(vec![None]),
    };
    let token = model.tokenizer.endofchunk_id;
    model.extend(&state, &[vec![token]]).map(|_| ())
}
