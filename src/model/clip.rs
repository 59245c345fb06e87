//! A separate CLIP image encoder exported to ONNX, for RICES retrieval with another encoder than the
//! evaluated model's (OpenFlamingo's RICES uses ViT-L/14 `encode_image`).
//!
//! The graph takes one float32 input `[N,3,H,W]` (any name) and returns the projected embedding `[N,E]` (the
//! output named `image_embedding` or `image_embeds` if present, else the first rank-2 output). Images get the
//! standard CLIP preprocessing at the input's size (224 when the size is dynamic).

use crate::model::manifest::Preprocess;
use crate::model::preprocess::{decode_image_file, preprocess};
use crate::model::runtime::{create_session, RuntimeOptions};
use anyhow::{anyhow, bail, Result};
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

pub struct ClipImageEncoder {
    session: Session,
    input: String,
    output: String,
    pub preprocess: Preprocess,
    file_sha256: String,
    path: PathBuf,
}

impl ClipImageEncoder {
    pub fn load(path: &Path, opts: &RuntimeOptions) -> Result<ClipImageEncoder> {
        if !path.exists() {
            bail!("{}: CLIP image encoder ONNX file not found (demo_selection.clip_onnx)", path.display());
        }
        let file_sha256 = crate::hashing::sha256_file_hex(path)?;
        let (session, _) = create_session(path, "clip_image_encoder", opts)?;
        let inputs = session.inputs();
        if inputs.len() != 1 {
            bail!("{}: a CLIP image encoder must have exactly one input (pixels [N,3,H,W]), found {}", path.display(), inputs.len());
        }
        let shape = inputs[0].dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
        if shape.len() != 4 {
            bail!("{}: input '{}' must be [N,3,H,W], found rank {}", path.display(), inputs[0].name(), shape.len());
        }
        if shape[2] > 0 && shape[3] > 0 && shape[2] != shape[3] {
            bail!(
                "{}: input '{}' takes {}x{} images; CLIP preprocessing makes square crops (H = W)",
                path.display(),
                inputs[0].name(),
                shape[2],
                shape[3]
            );
        }
        let size = if shape[2] > 0 { shape[2] as u32 } else if shape[3] > 0 { shape[3] as u32 } else { 224 };
        let outs: Vec<(String, usize)> = session
            .outputs()
            .iter()
            .map(|o| (o.name().to_string(), o.dtype().tensor_shape().map(|s| s.len()).unwrap_or(0)))
            .collect();
        let output = outs
            .iter()
            .find(|(n, _)| n == "image_embedding" || n == "image_embeds")
            .or_else(|| outs.iter().find(|(_, r)| *r == 2))
            .map(|(n, _)| n.clone())
            .ok_or_else(|| anyhow!("{}: no [N,E] embedding output among {:?}", path.display(), outs))?;
        Ok(ClipImageEncoder {
            input: inputs[0].name().to_string(),
            session,
            output,
            preprocess: Preprocess::clip(size),
            file_sha256,
            path: path.to_path_buf(),
        })
    }

    pub fn cache_key(&self) -> String {
        format!("clip_onnx:{}:size{}", self.file_sha256, self.preprocess.image_size)
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
            if e == 0 {
                bail!("{}: empty embedding output", self.path.display());
            }
            out.extend(data.chunks(e).map(|c| c.to_vec()));
        }
        Ok(out)
    }
}
