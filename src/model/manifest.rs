//! `model.yaml`: the manifest of an exported model directory (see `export/CONTRACT.md`).
//!
//! Parsing is strict: unknown keys and missing keys are errors that name the file and the key, so a
//! manifest written for another contract version can never be half-understood.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The contract versions this runtime implements.
pub const SUPPORTED_CONTRACT_VERSIONS: &[u32] = &[1];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub contract_version: u32,
    pub exporter_version: String,
    pub opset: u32,
    pub name: String,
    pub source: Source,
    pub components: Components,
    pub preprocess: Preprocess,
    pub vision: Vision,
    pub perceiver: Perceiver,
    pub lang: Lang,
    pub special_tokens: SpecialTokens,
    pub tokenizer: TokenizerSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub checkpoint_sha256: String,
    pub open_flamingo_version: String,
    pub open_clip_version: String,
    pub patch_tokens_ln_post: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    pub vision_encoder: Component,
    pub perceiver: Component,
    pub lang_decoder: Component,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CropMode {
    Center,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LmFamily {
    GptNeox,
    Mpt,
}

impl LmFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            LmFamily::GptNeox => "gpt_neox",
            LmFamily::Mpt => "mpt",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lang {
    pub family: LmFamily,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSettings {
    pub add_bos: bool,
    pub padding_side: PaddingSide,
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
        let manifest: Manifest = serde_yaml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: invalid manifest: {e}", path.display()))?;
        manifest.validate(&path)?;
        Ok(manifest)
    }

    /// Every file of the model directory with its expected SHA-256: components and their external data.
    pub fn files(&self, dir: &Path) -> Vec<(PathBuf, String)> {
        let c = &self.components;
        [&c.vision_encoder, &c.perceiver, &c.lang_decoder, &c.tokenizer]
            .into_iter()
            .flat_map(|comp| {
                std::iter::once((dir.join(&comp.file), comp.sha256.clone()))
                    .chain(comp.external_data.iter().map(|x| (dir.join(&x.file), x.sha256.clone())))
            })
            .collect()
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let c = &self.components;
        for (key, comp) in [("vision_encoder", &c.vision_encoder), ("perceiver", &c.perceiver), ("lang_decoder", &c.lang_decoder)] {
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
        let uses = self.lang.family == LmFamily::GptNeox;
        if self.lang.uses_position_ids != uses {
            bail!(
                "{}: lang.uses_position_ids is {} but family {} {} position ids",
                path.display(),
                self.lang.uses_position_ids,
                self.lang.family.as_str(),
                if uses { "needs" } else { "does not use" }
            );
        }
        Ok(())
    }

    /// Path of a component file inside the model directory.
    pub fn component_path(&self, dir: &Path, component: &Component) -> PathBuf {
        dir.join(&component.file)
    }
}
