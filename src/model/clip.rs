//! A separate CLIP image encoder exported to ONNX, for RICES retrieval with another encoder than the
//! evaluated model's (OpenFlamingo's RICES uses open_clip ViT-L-14 `encode_image`).
//!
//! `demo_selection.clip_onnx` names either
//! * a folder written by `export/export_clip.py`: `clip.yaml` (format below) + `clip_image_encoder.onnx`. The
//!   graph's hash is checked and images get the preprocessing recorded in `clip.yaml` (read off open_clip's own
//!   transform at export); or
//! * a single ONNX file (any other exporter): one float32 input `[N,3,H,W]` (any name), the projected
//!   embedding `[N,E]` as the output named `image_embedding` or `image_embeds` if present, else the first
//!   rank-2 output; images get OpenAI CLIP's preprocessing at the input's size (224 when the size is dynamic).
//!
//! ```yaml
//! clip_format_version: 1
//! exporter_version: "0.1.0"
//! opset: 17
//! name: "ViT-L-14"
//! source: {model_config_sha256, weights_sha256, weights_format: torchscript | state_dict, quick_gelu, open_clip_version}
//! component: {file: clip_image_encoder.onnx, sha256: "…"}     # input pixels [N,3,S,S], output image_embedding [N,E]
//! preprocess: {image_size, resize, interpolation, crop, mean, std}   # as in model.yaml
//! embed_dim: 768
//! ```

use crate::model::manifest::Preprocess;
use crate::model::preprocess::{decode_image_file, preprocess};
use crate::model::runtime::{create_session, RuntimeOptions};
use anyhow::{anyhow, bail, Result};
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use rayon::prelude::*;
use serde::Deserialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The `clip.yaml` format versions this runtime reads.
pub const SUPPORTED_CLIP_FORMAT_VERSIONS: &[u32] = &[1];
pub const CLIP_MANIFEST: &str = "clip.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipManifest {
    pub clip_format_version: u32,
    pub exporter_version: String,
    pub opset: u32,
    pub name: String,
    pub source: ClipSource,
    pub component: ClipComponent,
    pub preprocess: Preprocess,
    pub embed_dim: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipSource {
    pub model_config_sha256: String,
    pub weights_sha256: String,
    pub weights_format: String,
    pub quick_gelu: bool,
    pub open_clip_version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipComponent {
    pub file: String,
    pub sha256: String,
}

impl ClipManifest {
    /// Reads and checks `DIR/clip.yaml`.
    pub fn load(dir: &Path) -> Result<ClipManifest> {
        let path = dir.join(CLIP_MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow!(
                "could not read {}: {e}; a clip_onnx folder must hold the clip.yaml written by export/export_clip.py \
                 (or point demo_selection.clip_onnx at a single .onnx file)",
                path.display()
            )
        })?;
        let value: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: invalid CLIP encoder manifest: {e}", path.display()))?;
        if let Some(v) = value.get("clip_format_version").and_then(|v| v.as_u64()) {
            if !SUPPORTED_CLIP_FORMAT_VERSIONS.iter().any(|&s| s as u64 == v) {
                bail!(
                    "{}: clip_format_version {v} is not supported by this flamingo-eval (supported: {:?}); re-export \
                     with the matching export/export_clip.py or upgrade flamingo-eval",
                    path.display(),
                    SUPPORTED_CLIP_FORMAT_VERSIONS
                );
            }
        }
        let m: ClipManifest =
            serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: invalid CLIP encoder manifest: {e}", path.display()))?;
        if m.embed_dim == 0 || m.preprocess.image_size == 0 || m.preprocess.std.contains(&0.0) {
            bail!("{}: embed_dim and preprocess.image_size must be positive and preprocess.std non-zero", path.display());
        }
        Ok(m)
    }
}

pub struct ClipImageEncoder {
    session: Session,
    input: String,
    output: String,
    pub preprocess: Preprocess,
    /// The folder's manifest, when loaded from an export_clip folder.
    pub manifest: Option<ClipManifest>,
    file_sha256: String,
    path: PathBuf,
}

impl ClipImageEncoder {
    /// Loads an export_clip folder or a single ONNX file (see the module documentation).
    pub fn load(path: &Path, opts: &RuntimeOptions) -> Result<ClipImageEncoder> {
        if !path.exists() {
            bail!(
                "{}: CLIP image encoder not found (demo_selection.clip_onnx: a folder written by export/export_clip.py \
                 or an .onnx file)",
                path.display()
            );
        }
        let (onnx, manifest) = if path.is_dir() {
            let m = ClipManifest::load(path)?;
            (path.join(&m.component.file), Some(m))
        } else {
            (path.to_path_buf(), None)
        };
        if !onnx.is_file() {
            bail!("{}: the CLIP encoder graph named in {} is missing; re-export it", onnx.display(), path.join(CLIP_MANIFEST).display());
        }
        let file_sha256 = crate::hashing::sha256_file_hex(&onnx)?;
        if let Some(m) = &manifest {
            if !m.component.sha256.eq_ignore_ascii_case(&file_sha256) {
                bail!(
                    "{}: sha256 {file_sha256} does not match {} ({}); the file was modified or belongs to another export",
                    onnx.display(),
                    path.join(CLIP_MANIFEST).display(),
                    m.component.sha256
                );
            }
        }
        let (session, _) = create_session(&onnx, "clip_image_encoder", opts)?;
        let inputs = session.inputs();
        if inputs.len() != 1 {
            bail!("{}: a CLIP image encoder must have exactly one input (pixels [N,3,H,W]), found {}", onnx.display(), inputs.len());
        }
        let shape = inputs[0].dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
        if shape.len() != 4 {
            bail!("{}: input '{}' must be [N,3,H,W], found rank {}", onnx.display(), inputs[0].name(), shape.len());
        }
        let outs: Vec<(String, usize)> = session
            .outputs()
            .iter()
            .map(|o| (o.name().to_string(), o.dtype().tensor_shape().map(|s| s.len()).unwrap_or(0)))
            .collect();
        let (output, preprocess) = match &manifest {
            Some(m) => {
                let size = m.preprocess.image_size as i64;
                if (shape[2] > 0 && shape[2] != size) || (shape[3] > 0 && shape[3] != size) {
                    bail!(
                        "{}: input is {:?} but {} says preprocess.image_size {size}; the folder mixes two exports",
                        onnx.display(),
                        shape,
                        path.join(CLIP_MANIFEST).display()
                    );
                }
                if !outs.iter().any(|(n, r)| n == "image_embedding" && *r == 2) {
                    bail!("{}: no 'image_embedding' [N,E] output among {:?} (export/export_clip.py writes one)", onnx.display(), outs);
                }
                ("image_embedding".to_string(), m.preprocess.clone())
            }
            None => {
                if shape[2] > 0 && shape[3] > 0 && shape[2] != shape[3] {
                    bail!(
                        "{}: input '{}' takes {}x{} images; CLIP preprocessing makes square crops (H = W)",
                        onnx.display(),
                        inputs[0].name(),
                        shape[2],
                        shape[3]
                    );
                }
                let size = if shape[2] > 0 { shape[2] as u32 } else if shape[3] > 0 { shape[3] as u32 } else { 224 };
                let output = outs
                    .iter()
                    .find(|(n, _)| n == "image_embedding" || n == "image_embeds")
                    .or_else(|| outs.iter().find(|(_, r)| *r == 2))
                    .map(|(n, _)| n.clone())
                    .ok_or_else(|| anyhow!("{}: no [N,E] embedding output among {:?}", onnx.display(), outs))?;
                (output, Preprocess::clip(size))
            }
        };
        Ok(ClipImageEncoder { input: inputs[0].name().to_string(), session, output, preprocess, manifest, file_sha256, path: onnx })
    }

    /// Changes whenever an embedding could: the graph's hash, the output used and every preprocessing setting.
    pub fn cache_key(&self) -> String {
        let p = &self.preprocess;
        format!(
            "clip_onnx:{}:{}:size{}:{:?}:{:?}:{:?}:{:?}:{:?}",
            self.file_sha256, self.output, p.image_size, p.resize, p.interpolation, p.crop, p.mean, p.std
        )
    }

    pub fn embed(&mut self, images: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        let s = self.preprocess.image_size as i64;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(32) {
            let pixels: Vec<Vec<f32>> = chunk
                .par_iter()
                .map(|p| decode_image_file(p).map(|img| preprocess(&img, &self.preprocess)))
                .collect::<Result<_>>()?;
            let flat = pixels.concat();
            let input = TensorRef::from_array_view((vec![chunk.len() as i64, 3, s, s], &flat[..])).map_err(|e| anyhow!("{e}"))?;
            let res = self
                .session
                .run(vec![(Cow::from(self.input.as_str()), SessionInputValue::from(input))])
                .map_err(|e| anyhow!("{}: ONNX Runtime failed: {}", self.path.display(), crate::model::runtime::strip_ansi(&e.to_string())))?;
            let (shape, data) = res[self.output.as_str()].try_extract_tensor::<f32>().map_err(|e| anyhow!("{e}"))?;
            let e = *shape.last().unwrap_or(&0) as usize;
            if e == 0 || shape.len() != 2 || shape[0] != chunk.len() as i64 {
                bail!("{}: embedding output has shape {:?}, expected [{}, E]", self.path.display(), &shape[..], chunk.len());
            }
            if let Some(m) = &self.manifest {
                if e != m.embed_dim {
                    bail!("{}: embeddings have {e} values, clip.yaml says embed_dim {}", self.path.display(), m.embed_dim);
                }
            }
            out.extend(data.chunks(e).map(|c| c.to_vec()));
        }
        Ok(out)
    }
}
