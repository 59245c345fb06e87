//! `model.yaml`: the manifest of an exported model directory (see `export/CONTRACT.md`).
//!
//! Parsing is strict: unknown keys and missing keys are errors that name the file and the key, so a
//! manifest written for another contract version can never be half-understood.
//!
//! The runtime never looks at `lang.family` (free text for reports): what it does comes only from explicit
//! fields (`lang.uses_position_ids`, `tokenizer.add_bos` + `special_tokens.bos`,
//! `tokenizer.clean_up_tokenization_spaces`, ...). Version-1 manifests still load, with their version-1
//! meaning (see [`upgrade_v1`]).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The contract versions this runtime implements.
pub const SUPPORTED_CONTRACT_VERSIONS: &[u32] = &[1, 2, 3, 4];

/// The version the exporter writes today for fp32 models (the default); `--dtype fp16|bf16` exports are version 4.
pub const CURRENT_CONTRACT_VERSION: u32 = 3;

/// The contract version that added `dtype` (half precision).
pub const DTYPE_CONTRACT_VERSION: u32 = 4;

/// The precision of a model's weights and graphs (contract 4 `dtype`; absent = fp32). CONTRACT.md "Precision".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModelDType {
    /// float32 graphs.
    #[default]
    Fp32,
    /// float16 graphs: every float input/output float16 except `pixels`, `image_embedding`, `logits`.
    Fp16,
    /// bfloat16-rounded weights in float32 graphs (float32 I/O and compute).
    Bf16,
}

impl ModelDType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelDType::Fp32 => "fp32",
            ModelDType::Fp16 => "fp16",
            ModelDType::Bf16 => "bf16",
        }
    }
    /// Element type of the graphs' dtype-dependent float tensors.
    pub fn graph_float(&self) -> crate::model::tensors::FloatType {
        match self {
            ModelDType::Fp16 => crate::model::tensors::FloatType::F16,
            ModelDType::Fp32 | ModelDType::Bf16 => crate::model::tensors::FloatType::F32,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub contract_version: u32,
    pub exporter_version: String,
    pub opset: u32,
    /// Version 4: the precision of the weights and graphs. Absent (versions 1-3): fp32; required in version 4.
    #[serde(default)]
    pub dtype: Option<ModelDType>,
    pub name: String,
    pub source: Source,
    pub components: Components,
    pub preprocess: Preprocess,
    pub vision: Vision,
    pub perceiver: Perceiver,
    pub lang: Lang,
    pub special_tokens: SpecialTokens,
    pub tokenizer: TokenizerSettings,
    /// Version 3 (IDEFICS): where the gated cross-attention sits and what a token without an image gets.
    /// Absent (versions 1 and 2): OpenFlamingo's placement and semantics ([`CrossAttention::openflamingo`]).
    #[serde(default)]
    pub cross_attention: Option<CrossAttention>,
    /// Version 3 (IDEFICS): how images and the end of a demonstration are written in the prompt text.
    /// Absent: `<image>` as is, `<|endofchunk|>` ([`PromptFormat::openflamingo`]).
    #[serde(default)]
    pub prompt_format: Option<PromptFormat>,
    /// Contract 3: the decoder takes each gated cross-attention layer's projected media keys/values
    /// (`xattn_kv_{i}`, computed once per media by `components.xattn_kv`) instead of `vision_latents`.
    /// Absent: the decoder recomputes them from `vision_latents` in every call (contract <= 2).
    #[serde(default)]
    pub cross_attn_cache: Option<CrossAttnCache>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossAttnCache {
    /// Decoder layers with a gated cross-attention block, increasing: the graphs' `xattn_kv_{i}` tensors.
    pub layers: Vec<usize>,
    /// Last axis of `xattn_kv_{i}`: `2 * heads * dim_head` (keys, then values).
    pub width: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub checkpoint_sha256: String,
    pub open_flamingo_version: String,
    pub open_clip_version: String,
    pub patch_tokens_ln_post: bool,
    /// Recorded only: the seed the exporter drew the LM-head rows of OpenFlamingo's added tokens from, when no
    /// published file holds them (LLaMA-based v1 models); absent when every weight came from the files.
    #[serde(default)]
    pub added_head_seed: Option<u64>,
    /// Version 3, recorded only: the transformers version the graphs were exported with (IDEFICS).
    #[serde(default)]
    pub transformers_version: Option<String>,
    /// Recorded only: the exporter preset (`--preset NAME`, a published model) this export was made with; absent
    /// for `--config` exports. Reports put published numbers beside a run by it (with the checkpoint hash),
    /// never by `name`.
    #[serde(default)]
    pub preset: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    pub vision_encoder: Component,
    pub perceiver: Component,
    pub lang_decoder: Component,
    /// Contract 3, with `cross_attn_cache`: latents -> per-layer cross-attention keys/values.
    #[serde(default)]
    pub xattn_kv: Option<Component>,
    pub tokenizer: Component,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub file: String,
    pub sha256: String,
    /// The graph's tensors, when it keeps them outside the protobuf (graphs over 2 GiB): `<file>.data`.
    #[serde(default)]
    pub external_data: Option<ExternalData>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalData {
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    Nearest,
    Bilinear,
    Bicubic,
    Lanczos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    ShortestSide,
    /// Version 3: resize to exactly `image_size × image_size`, aspect ratio not kept (IdeficsImageProcessor).
    Exact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CropMode {
    Center,
    /// Version 3: no crop (with `resize: exact`).
    None,
}

/// What happens to an alpha channel (and to non-RGB modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlphaMode {
    /// Pillow `convert("RGB")` after the resize (open_clip): the image is resized premultiplied, alpha dropped.
    #[default]
    Drop,
    /// Version 3 (IdeficsImageProcessor's `convert_to_rgb`): every non-RGB image is converted to RGBA and
    /// composited onto white (Pillow `alpha_composite`) BEFORE the resize, which then sees RGB.
    CompositeWhite,
}

/// Which vision tokens the vision graph hands the perceiver (informational: the graph does it; checked
/// against `num_patches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClsToken {
    /// OpenFlamingo: the grid's patch tokens only.
    #[default]
    Dropped,
    /// Version 3 (IDEFICS): CLS first, then the grid (`num_patches` = grid² + 1).
    Kept,
}

/// What `image_embedding` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingKind {
    /// The CLIP image embedding (`ln_post(CLS) @ proj`): usable for RICES (`encoder: model`).
    #[default]
    Projected,
    /// Version 3 (IDEFICS, no projection head): the pooled CLS state, not a CLIP embedding; RICES with
    /// `encoder: model` is refused (use `encoder: clip_onnx`).
    Pooled,
}

/// Where the gated cross-attention blocks are and what a token that attends to no media gets (version 3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrossAttention {
    /// Only `before_layer` exists: the block runs before decoder layer i (informational: the graph does it).
    pub position: CrossAttnPosition,
    /// Blocks sit before layers `first_layer + k * lang.cross_attn_every_n_layers` (OpenFlamingo: n - 1,
    /// IDEFICS: 0). Informational (the graph does it), validated.
    pub first_layer: usize,
    /// What a token with media index 0 gets.
    pub no_media: NoMedia,
    /// A token after an EOS (`special_tokens.eos`) attends to no media until the next `<image>` (IDEFICS'
    /// `image_attention_mask`); the EOS itself still attends to the current one.
    pub media_reset_after_eos: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossAttnPosition {
    BeforeLayer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoMedia {
    /// Zero cross-attention output (OpenFlamingo; IDEFICS with transformers >= 4.36).
    Zero,
    /// Compatibility mode of transformers <= 4.35's IDEFICS: a uniform average over every media slot the
    /// row is given. The runtime then gives each row exactly its own media (rows with different media counts
    /// are never batched) and, after the prompt, all of them when the last prompt token attends to none.
    UniformAllMedia,
}

impl CrossAttention {
    pub fn openflamingo(every_n: usize) -> CrossAttention {
        CrossAttention {
            position: CrossAttnPosition::BeforeLayer,
            first_layer: every_n.saturating_sub(1),
            no_media: NoMedia::Zero,
            media_reset_after_eos: false,
        }
    }
}

/// How the prompt text is written around images (version 3). The runtime rewrites every `<image>` marker.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PromptFormat {
    /// The text of `special_tokens.endofchunk` in `tokenizer.json` (templates end demonstrations with it).
    pub endofchunk_text: String,
    /// Written before / after each `<image>` (IDEFICS: `<fake_token_around_image>`); "" = nothing.
    pub image_open: String,
    pub image_close: String,
    /// Two images with nothing between them share one token: `open <image> close <image> close`.
    pub share_between_adjacent_images: bool,
    /// Strip spaces (only U+0020) at both ends of every text piece between markers (IdeficsProcessor strips
    /// each text item).
    pub strip_text_around_images: bool,
}

impl PromptFormat {
    pub fn openflamingo() -> PromptFormat {
        PromptFormat {
            endofchunk_text: "<|endofchunk|>".into(),
            image_open: String::new(),
            image_close: String::new(),
            share_between_adjacent_images: false,
            strip_text_around_images: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    pub image_size: u32,
    pub resize: ResizeMode,
    pub interpolation: Interpolation,
    pub crop: CropMode,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Version 3; absent = `drop`.
    #[serde(default)]
    pub alpha: AlphaMode,
}

impl Preprocess {
    /// OpenAI CLIP's preprocessing at `size` px: shortest side, bicubic, centre crop, CLIP mean/std.
    pub fn clip(size: u32) -> Preprocess {
        Preprocess {
            image_size: size,
            resize: ResizeMode::ShortestSide,
            interpolation: Interpolation::Bicubic,
            crop: CropMode::Center,
            mean: [0.48145466, 0.4578275, 0.40821073],
            std: [0.26862954, 0.26130258, 0.27577711],
            alpha: AlphaMode::Drop,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vision {
    pub patch_size: u32,
    pub num_patches: usize,
    pub width: usize,
    pub embed_dim: usize,
    /// Version 3; absent = `dropped`.
    #[serde(default)]
    pub cls_token: ClsToken,
    /// Version 3; absent = `projected`.
    #[serde(default)]
    pub image_embedding: EmbeddingKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Perceiver {
    pub num_latents: usize,
    pub depth: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub max_frames: usize,
    pub frame_embeddings: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lang {
    /// Informational (reports, `model inspect`): the runtime never branches on it.
    pub family: String,
    pub n_layers: usize,
    pub n_heads: usize,
    pub head_dim: usize,
    pub hidden: usize,
    pub vocab_size: usize,
    pub max_positions: usize,
    pub uses_position_ids: bool,
    pub cross_attn_every_n_layers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialTokens {
    pub image: u32,
    pub endofchunk: u32,
    pub pad: u32,
    pub eos: u32,
    pub bos: Option<u32>,
    /// Version 3: the id of `<end_of_utterance>`, the end of a turn of a chat-tuned model (IDEFICS instruct).
    /// Generation also stops at it (the model card's stop condition). Absent: no such token.
    #[serde(default)]
    pub end_of_utterance: Option<u32>,
}

/// The text of [`SpecialTokens::end_of_utterance`] in `tokenizer.json` (and in prompt templates).
pub const END_OF_UTTERANCE: &str = "<end_of_utterance>";

impl SpecialTokens {
    /// The tokens that end a generated sequence: `endofchunk`, and `end_of_utterance` when the model has one.
    pub fn stop_tokens(&self) -> Vec<u32> {
        let mut v = vec![self.endofchunk];
        v.extend(self.end_of_utterance.filter(|&e| e != self.endofchunk));
        v
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSettings {
    /// Every prompt row starts with `special_tokens.bos` (after the left padding, before the text), as a
    /// Hugging Face tokenizer with `add_bos_token` does; candidate continuations never get it.
    pub add_bos: bool,
    pub padding_side: PaddingSide,
    /// Apply transformers' `clean_up_tokenization` to decoded text (what `batch_decode` does when the
    /// tokenizer's `clean_up_tokenization_spaces` is on). Version 2; a version-1 manifest means `false`.
    pub clean_up_tokenization_spaces: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingSide {
    Left,
}

impl Manifest {
    /// Reads and validates `DIR/model.yaml`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join("model.yaml");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "could not read {}: a model directory must contain the model.yaml manifest written by \
                 export/export_openflamingo.py",
                path.display()
            )
        })?;
        let mut value: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: invalid manifest: {e}", path.display()))?;
        let version = value.get("contract_version").and_then(|v| v.as_u64());
        if let Some(v) = version {
            // Before the keys: a manifest of another version fails on its version, not on a key it renamed.
            if !SUPPORTED_CONTRACT_VERSIONS.iter().any(|&s| s as u64 == v) {
                bail!(
                    "{}: contract_version {v} is not supported by this flamingo-eval (supported: {:?}); re-export \
                     the model with the matching exporter or upgrade flamingo-eval",
                    path.display(),
                    SUPPORTED_CONTRACT_VERSIONS
                );
            }
        }
        let parsed = if version == Some(1) {
            upgrade_v1(&mut value, &path)?;
            serde_yaml::from_value(value)
        } else {
            serde_yaml::from_str(&text) // keeps line numbers in its errors
        };
        let manifest: Manifest = parsed.map_err(|e| anyhow::anyhow!("{}: invalid manifest: {e}", path.display()))?;
        manifest.validate(&path)?;
        manifest.validate_v3(&value_keys(&text), &path)?;
        if version == Some(1) {
            eprintln!(
                "warning: {}: contract_version 1 manifest: generated text is decoded without transformers' \
                 clean_up_tokenization_spaces (the version-1 meaning), which OpenFlamingo's eval applies; re-export \
                 with the current exporter (contract version {CURRENT_CONTRACT_VERSION}) to decode as it does",
                path.display()
            );
        }
        Ok(manifest)
    }

    /// Every file of the model directory with its expected SHA-256: components and their external data.
    pub fn files(&self, dir: &Path) -> Vec<(PathBuf, String)> {
        let c = &self.components;
        [Some(&c.vision_encoder), Some(&c.perceiver), Some(&c.lang_decoder), c.xattn_kv.as_ref(), Some(&c.tokenizer)]
            .into_iter()
            .flatten()
            .flat_map(|comp| {
                std::iter::once((dir.join(&comp.file), comp.sha256.clone()))
                    .chain(comp.external_data.iter().map(|x| (dir.join(&x.file), x.sha256.clone())))
            })
            .collect()
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let c = &self.components;
        let graphs = [("vision_encoder", Some(&c.vision_encoder)), ("perceiver", Some(&c.perceiver)), ("lang_decoder", Some(&c.lang_decoder)), ("xattn_kv", c.xattn_kv.as_ref())];
        for (key, comp) in graphs.into_iter().filter_map(|(k, c)| c.map(|c| (k, c))) {
            if let Some(x) = &comp.external_data {
                // ONNX Runtime reads the location written in the graph (which is hashed): it must be this file.
                if x.file != format!("{}.data", comp.file) {
                    bail!(
                        "{}: components.{key}.external_data.file is {:?}; the exporter writes {:?}",
                        path.display(),
                        x.file,
                        format!("{}.data", comp.file)
                    );
                }
            }
        }
        if !SUPPORTED_CONTRACT_VERSIONS.contains(&self.contract_version) {
            bail!(
                "{}: contract_version {} is not supported by this flamingo-eval (supported: {:?}); \
                 re-export the model with the matching exporter or upgrade flamingo-eval",
                path.display(),
                self.contract_version,
                SUPPORTED_CONTRACT_VERSIONS
            );
        }
        if self.source.patch_tokens_ln_post {
            bail!(
                "{}: source.patch_tokens_ln_post is true: the vision encoder applies ln_post to the patch tokens \
                 (open_clip >= 2.23 behaviour), but OpenFlamingo was trained without it; re-export with the \
                 exporter's compensation",
                path.display()
            );
        }
        let checks: [(&str, usize); 10] = [
            ("vision.num_patches", self.vision.num_patches),
            ("vision.width", self.vision.width),
            ("vision.embed_dim", self.vision.embed_dim),
            ("lang.head_dim", self.lang.head_dim),
            ("perceiver.num_latents", self.perceiver.num_latents),
            ("perceiver.max_frames", self.perceiver.max_frames),
            ("lang.n_layers", self.lang.n_layers),
            ("lang.n_heads", self.lang.n_heads),
            ("lang.vocab_size", self.lang.vocab_size),
            ("lang.max_positions", self.lang.max_positions),
        ];
        for (key, value) in checks {
            if value == 0 {
                bail!("{}: {key} must be positive", path.display());
            }
        }
        if self.preprocess.image_size == 0 {
            bail!("{}: preprocess.image_size must be positive", path.display());
        }
        if self.preprocess.std.iter().any(|s| *s == 0.0) {
            bail!("{}: preprocess.std must not contain 0", path.display());
        }
        if self.lang.family.trim().is_empty() {
            bail!("{}: lang.family must be a non-empty name (informational; e.g. the LM's model_type)", path.display());
        }
        if self.lang.cross_attn_every_n_layers == 0 || self.lang.cross_attn_every_n_layers > self.lang.n_layers {
            bail!(
                "{}: lang.cross_attn_every_n_layers is {}; it must be between 1 and lang.n_layers ({})",
                path.display(),
                self.lang.cross_attn_every_n_layers,
                self.lang.n_layers
            );
        }
        self.validate_cross_attn_cache(path)?;
        match (self.contract_version >= DTYPE_CONTRACT_VERSION, self.dtype) {
            (false, Some(d)) => bail!(
                "{}: dtype ({}) is a contract version 4 key, but contract_version is {}; re-export the model with \
                 `--dtype {}` (the exporter writes contract_version 4 for it)",
                path.display(),
                d.as_str(),
                self.contract_version,
                d.as_str()
            ),
            (true, None) => bail!(
                "{}: contract_version {} needs dtype (fp32 | fp16 | bf16): the precision of the graphs; re-export \
                 the model with export/export_openflamingo.py",
                path.display(),
                self.contract_version
            ),
            _ => {}
        }
        let v = self.lang.vocab_size;
        let st = &self.special_tokens;
        for (key, id) in [
            ("image", Some(st.image)),
            ("endofchunk", Some(st.endofchunk)),
            ("pad", Some(st.pad)),
            ("eos", Some(st.eos)),
            ("bos", st.bos),
            ("end_of_utterance", st.end_of_utterance),
        ] {
            if let Some(id) = id {
                if id as usize >= v {
                    bail!(
                        "{}: special_tokens.{key} is {id}, outside the LM head's {v} rows (lang.vocab_size); the \
                         manifest does not belong to this model",
                        path.display()
                    );
                }
            }
        }
        if self.tokenizer.add_bos && st.bos.is_none() {
            bail!(
                "{}: tokenizer.add_bos is true but special_tokens.bos is null: the runtime would not know which \
                 token to prepend; set special_tokens.bos to the tokenizer's BOS id (re-export)",
                path.display()
            );
        }
        Ok(())
    }

    /// The precision of the model (`dtype`; fp32 before contract 4).
    pub fn dtype(&self) -> ModelDType {
        self.dtype.unwrap_or_default()
    }

    /// The cross-attention settings: the version-3 section, or OpenFlamingo's (versions 1 and 2).
    pub fn cross_attention(&self) -> CrossAttention {
        self.cross_attention.clone().unwrap_or_else(|| CrossAttention::openflamingo(self.lang.cross_attn_every_n_layers))
    }

    /// The prompt format: the version-3 section, or OpenFlamingo's (versions 1 and 2).
    pub fn prompt_format(&self) -> PromptFormat {
        self.prompt_format.clone().unwrap_or_else(PromptFormat::openflamingo)
    }

    /// Version-3 keys: refused in older manifests (they would change the meaning of a v1/v2 file), checked
    /// for consistency otherwise.
    fn validate_v3(&self, present: &[String], path: &Path) -> Result<()> {
        if self.contract_version < 3 {
            for key in V3_KEYS {
                if present.iter().any(|k| k == key) {
                    bail!(
                        "{}: {key} is a contract version 3 key, but contract_version is {}; re-export the model \
                         (or set contract_version: 3)",
                        path.display(),
                        self.contract_version
                    );
                }
            }
            for (key, bad) in [
                ("preprocess.resize: exact", self.preprocess.resize == ResizeMode::Exact),
                ("preprocess.crop: none", self.preprocess.crop == CropMode::None),
            ] {
                if bad {
                    bail!("{}: {key} needs contract_version 3 (it is {})", path.display(), self.contract_version);
                }
            }
        }
        match (self.preprocess.resize, self.preprocess.crop) {
            (ResizeMode::ShortestSide, CropMode::Center) | (ResizeMode::Exact, CropMode::None) => {}
            (r, c) => bail!(
                "{}: preprocess.resize {r:?} with preprocess.crop {c:?} is not a supported pipeline (shortest_side \
                 needs crop: center; exact needs crop: none)",
                path.display()
            ),
        }
        let ca = self.cross_attention();
        if ca.first_layer >= self.lang.n_layers {
            bail!(
                "{}: cross_attention.first_layer is {}; it must be below lang.n_layers ({})",
                path.display(),
                ca.first_layer,
                self.lang.n_layers
            );
        }
        let pf = self.prompt_format();
        if pf.endofchunk_text.is_empty() {
            bail!("{}: prompt_format.endofchunk_text must not be empty", path.display());
        }
        if pf.share_between_adjacent_images && (pf.image_open.is_empty() || pf.image_open != pf.image_close) {
            bail!(
                "{}: prompt_format.share_between_adjacent_images needs image_open and image_close to be the same \
                 non-empty text (got {:?} / {:?})",
                path.display(),
                pf.image_open,
                pf.image_close
            );
        }
        Ok(())
    }

    /// `cross_attn_cache` and `components.xattn_kv` (contract 3) come together, and describe real layers.
    fn validate_cross_attn_cache(&self, path: &Path) -> Result<()> {
        let (cache, comp) = (&self.cross_attn_cache, &self.components.xattn_kv);
        if self.contract_version < 3 && (cache.is_some() || comp.is_some()) {
            bail!(
                "{}: {} is a contract version 3 key, but contract_version is {}; re-export the model with the \
                 current exporter",
                path.display(),
                if cache.is_some() { "cross_attn_cache" } else { "components.xattn_kv" },
                self.contract_version
            );
        }
        match (cache, comp) {
            (None, None) => Ok(()),
            (Some(_), None) => bail!(
                "{}: cross_attn_cache is set but components.xattn_kv (the graph that computes the cached keys/values) \
                 is missing; re-export the model with export/export_openflamingo.py",
                path.display()
            ),
            (None, Some(_)) => bail!(
                "{}: components.xattn_kv is listed but cross_attn_cache (its layers and width) is missing; re-export \
                 the model with export/export_openflamingo.py",
                path.display()
            ),
            (Some(x), Some(_)) => {
                if self.cross_attention().no_media == NoMedia::UniformAllMedia {
                    bail!(
                        "{}: cross_attn_cache cannot be combined with cross_attention.no_media: uniform_all_media (the \
                         compatibility mode averages every media slot of a row, which the cached last-media keys/values \
                         do not hold); export the compatibility mode without the cache",
                        path.display()
                    );
                }
                let n = self.lang.n_layers;
                if x.layers.is_empty() || x.layers.windows(2).any(|w| w[0] >= w[1]) || x.layers.iter().any(|&i| i >= n) {
                    bail!(
                        "{}: cross_attn_cache.layers is {:?}; it must list decoder layers (0..{n}, lang.n_layers) in \
                         increasing order, at least one",
                        path.display(),
                        x.layers
                    );
                }
                if x.width == 0 || x.width % 2 != 0 {
                    bail!(
                        "{}: cross_attn_cache.width is {}; it must be a positive even number (keys then values)",
                        path.display(),
                        x.width
                    );
                }
                Ok(())
            }
        }
    }

    /// Path of a component file inside the model directory.
    pub fn component_path(&self, dir: &Path, component: &Component) -> PathBuf {
        dir.join(&component.file)
    }
}

/// Keys that only a version-3 manifest may hold.
const V3_KEYS: &[&str] = &[
    "cross_attention",
    "prompt_format",
    "source.transformers_version",
    "preprocess.alpha",
    "vision.cls_token",
    "vision.image_embedding",
    "special_tokens.end_of_utterance",
];

/// The `section.key` names present in a manifest text (two levels), for the version checks.
fn value_keys(text: &str) -> Vec<String> {
    let Ok(serde_yaml::Value::Mapping(m)) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let Some(k) = k.as_str() else { continue };
        out.push(k.to_string());
        if let serde_yaml::Value::Mapping(inner) = v {
            out.extend(inner.keys().filter_map(|x| x.as_str()).map(|x| format!("{k}.{x}")));
        }
    }
    out
}

/// Reads a version-1 manifest with its version-1 meaning, as the version-2 fields it implies:
/// * `lang.family` was one of `gpt_neox` | `mpt` and had to agree with `lang.uses_position_ids` (GPT-NeoX:
///   rotary position ids; MPT: ALiBi, none);
/// * BOS was never prepended: `tokenizer.add_bos` had to be `false` (a v1 manifest saying `true` was never
///   honoured, so it is refused rather than reinterpreted);
/// * generated text was decoded without transformers' clean-up: `clean_up_tokenization_spaces: false`
///   (OpenFlamingo's eval decodes with it on for these tokenizers, so re-export to decode exactly as it does).
fn upgrade_v1(value: &mut serde_yaml::Value, path: &Path) -> Result<()> {
    use serde_yaml::Value;
    let lang = value.get("lang");
    let family = lang.and_then(|l| l.get("family")).and_then(Value::as_str).map(str::to_string);
    let uses = lang.and_then(|l| l.get("uses_position_ids")).and_then(Value::as_bool);
    if let (Some(family), Some(uses)) = (family, uses) {
        let needs = match family.as_str() {
            "gpt_neox" => true,
            "mpt" => false,
            other => bail!(
                "{}: lang.family {other:?} is not a version-1 family (gpt_neox | mpt); a contract_version 1 \
                 manifest cannot describe it: re-export the model with the current exporter (contract version {})",
                path.display(),
                CURRENT_CONTRACT_VERSION
            ),
        };
        if uses != needs {
            bail!(
                "{}: lang.uses_position_ids is {uses} but family {family} {} position ids (contract version 1)",
                path.display(),
                if needs { "needs" } else { "does not use" }
            );
        }
    }
    if let Some(Value::Mapping(tok)) = value.get_mut("tokenizer") {
        if tok.get("add_bos").and_then(Value::as_bool) == Some(true) {
            bail!(
                "{}: tokenizer.add_bos is true in a contract_version 1 manifest, which version-1 runtimes never \
                 honoured; re-export the model with the current exporter (contract version {})",
                path.display(),
                CURRENT_CONTRACT_VERSION
            );
        }
        let key = Value::from("clean_up_tokenization_spaces");
        if tok.contains_key(&key) {
            bail!(
                "{}: tokenizer.clean_up_tokenization_spaces is a contract version 2 key, but contract_version is 1",
                path.display()
            );
        }
        tok.insert(key, Value::from(false));
    }
    Ok(())
}
