//! Cross-attention media inputs of the decoder (export/CONTRACT.md, "Cross-attention cache").
//!
//! Contract 3 models compute, once per media item, each gated cross-attention layer's `to_kv` projection of
//! the media latents (`xattn_kv.onnx`); the decoder takes those tensors (`xattn_kv_{i}`) instead of the
//! latents, so no decoder call ever recomputes them. A prefill computes them for the distinct media of its
//! batch; the decode steps of its rows reuse the last media's (the only one a generated token can attend
//! to), held per row in [`CrossRows`] — an opaque part of the decoding state.
//!
//! Contract <= 2 models have no such graph: their decoder takes `vision_latents` and recomputes the keys and
//! values in every call (the "recompute path", kept so that old exports still run unchanged).

use crate::model::device_kv::RowGather;
use crate::model::flamingo::EncodedMedia;
use crate::model::session::Component;
use crate::model::tensors::{self, FloatBuf, FloatType};
use anyhow::{anyhow, Result};
use ort::value::DynTensor;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The projected keys/values of one media item: per gated layer `[L, W]`, row-major, in the graphs' element type
/// (float16 for a `dtype: fp16` model).
#[derive(Debug)]
pub(crate) struct MediaKv {
    pub layers: Vec<FloatBuf>,
}

/// What a decoder call gets for the media of its rows (`[B, T, L, ·]` row-major, zero-padded slots).
#[derive(Debug, Clone)]
pub(crate) enum DecoderMedia {
    /// `vision_latents` `[B, T, L, Dv]` (contract <= 2).
    Latents(Arc<Vec<f32>>, usize),
    /// `xattn_kv_{i}` `[B, T, L, W]` per gated layer (contract 3), in the graphs' element type.
    Kv(Arc<Vec<FloatBuf>>, usize),
    /// The same tensors already in the decoder device's memory (`--io-binding`: the decode steps' input,
    /// uploaded once and reused while the rows' media are the same).
    Device(Arc<Vec<DynTensor>>),
}

/// Per row, the projected keys/values its decode steps attend to (the row's last media; `None`: no media).
/// Empty for contract <= 2 models, whose decode steps pass the last media's latents instead.
#[derive(Debug, Clone, Default)]
pub(crate) struct CrossRows(pub Vec<Option<Arc<MediaKv>>>);

impl CrossRows {
    pub fn select(&self, rows: &[usize]) -> CrossRows {
        if self.0.is_empty() {
            return CrossRows::default();
        }
        CrossRows(rows.iter().map(|&r| self.0[r].clone()).collect())
    }
}

/// The `xattn_kv.onnx` session and what the manifest says about it.
pub(crate) struct XattnKv {
    pub component: Component,
    /// Gated decoder layers (`xattn_kv_{i}`), in order.
    pub layers: Vec<usize>,
    pub width: usize,
    /// Element type of `xattn_kv_{i}`.
    pub ty: FloatType,
    /// Media per call: bounds the transient output (`media × layers × L × W` floats).
    pub chunk: usize,
    /// The last decode-step input built and the rows it was built from (decode steps reuse it).
    last: Option<(Vec<Option<Arc<MediaKv>>>, DecoderMedia)>,
    /// `--io-binding`: copies the decode-step input to the decoder device once (an identity row gather).
    pub device: Option<RowGather>,
}

fn same_rows(a: &[Option<Arc<MediaKv>>], b: &[Option<Arc<MediaKv>>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            (None, None) => true,
            _ => false,
        })
}

impl XattnKv {
    pub fn new(component: Component, layers: Vec<usize>, width: usize, ty: FloatType) -> XattnKv {
        XattnKv { component, layers, width, ty, chunk: 32, last: None, device: None }
    }

    /// Names of the decoder inputs, in layer order.
    pub fn input_names(layers: &[usize]) -> Vec<String> {
        layers.iter().map(|i| format!("xattn_kv_{i}")).collect()
    }

    /// Runs the graph on `n` media latents `[n, 1, L, Dv]`; returns per media its [`MediaKv`].
    fn run(&mut self, latents: &[f32], n: usize, l: usize, dv: usize) -> Result<Vec<Arc<MediaKv>>> {
        let input = tensors::input_from_f32(vec![n as i64, 1, l as i64, dv as i64], latents, self.ty)?;
        let path = self.component.path.display().to_string();
        let out = self.component.run(vec![(Cow::from("latents"), input)])?;
        let per = l * self.width;
        let mut media: Vec<Vec<FloatBuf>> = (0..n).map(|_| Vec::with_capacity(self.layers.len())).collect();
        for name in Self::input_names(&self.layers) {
            let data = tensors::output_buf(&out, &name, &[n, 1, l, self.width])
                .map_err(|e| anyhow!("{path}: {e} (perceiver.num_latents, cross_attn_cache.width)"))?;
            let data = data.as_floats();
            for (j, m) in media.iter_mut().enumerate() {
                m.push(data.slice(j * per..(j + 1) * per).to_buf());
            }
        }
        Ok(media.into_iter().map(|layers| Arc::new(MediaKv { layers })).collect())
    }

    /// Keys/values of every distinct media of `rows` (by identity), computed in chunks of `self.chunk`.
    pub fn for_media(
        &mut self,
        rows: &[Vec<Arc<EncodedMedia>>],
        l: usize,
        dv: usize,
    ) -> Result<HashMap<*const EncodedMedia, Arc<MediaKv>>> {
        let mut distinct: Vec<&Arc<EncodedMedia>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for m in rows.iter().flatten() {
            if seen.insert(Arc::as_ptr(m)) {
                distinct.push(m);
            }
        }
        let mut out = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(self.chunk.max(1)) {
            let mut flat = Vec::with_capacity(chunk.len() * l * dv);
            for m in chunk {
                flat.extend_from_slice(&m.latents);
            }
            for (m, kv) in chunk.iter().zip(self.run(&flat, chunk.len(), l, dv)?) {
                out.insert(Arc::as_ptr(m), kv);
            }
        }
        Ok(out)
    }

    /// `[B, T, L, W]` per layer from per-row media (zero-padded to the longest row, at least one slot).
    pub fn batch(&self, rows: &[Vec<Arc<MediaKv>>], l: usize) -> Result<DecoderMedia> {
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let per = l * self.width;
        let layers = (0..self.layers.len())
            .map(|k| {
                let mut buf = FloatBuf::zeros(self.ty, rows.len() * t * per);
                for (r, row) in rows.iter().enumerate() {
                    for (j, m) in row.iter().enumerate() {
                        buf.write_at((r * t + j) * per, m.layers[k].as_floats())?;
                    }
                }
                Ok(buf)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderMedia::Kv(Arc::new(layers), t))
    }

    /// The decode-step input (`T = 1`, each row's last media; zeros for a row without media), reused while
    /// the rows are the same.
    pub fn decode_batch(&mut self, rows: &CrossRows, l: usize) -> Result<DecoderMedia> {
        if let Some((key, media)) = &self.last {
            if same_rows(key, &rows.0) {
                return Ok(media.clone());
            }
        }
        let per_row: Vec<Vec<Arc<MediaKv>>> = rows.0.iter().map(|m| m.iter().cloned().collect()).collect();
        let mut media = self.batch(&per_row, l)?;
        if let (Some(g), DecoderMedia::Kv(bufs, t)) = (self.device.as_mut(), &media) {
            let shape = vec![per_row.len() as i64, *t as i64, l as i64, self.width as i64];
            let host: Vec<DynTensor> = bufs.iter().map(|b| tensors::owned_tensor(shape.clone(), b.as_floats())).collect::<Result<_>>()?;
            let all: Vec<usize> = (0..per_row.len()).collect();
            let on_device = g.gather(&host.iter().collect::<Vec<_>>(), &all)?;
            media = DecoderMedia::Device(Arc::new(on_device));
        }
        self.last = Some((rows.0.clone(), media.clone()));
        Ok(media)
    }
}
