//! The Flamingo model API the rest of the harness uses: encode media once, prefill prompts, decode with a
//! KV cache, generate (greedy / beam) and score candidate continuations.
//!
//! Everything here speaks token ids, media handles and log-probabilities; the ONNX Runtime details stay in
//! [`super::session`] and [`super::runtime`].

use crate::model::manifest::Manifest;
use crate::model::preprocess::{decode_image_file, preprocess};
use crate::model::runtime::{Optimization, ProviderReport, RuntimeOptions};
use crate::model::search::{Search, SearchParams, Step};
use crate::model::device_kv::{KvMemory, RowGather};
use crate::model::kv::{KvCache, KvTensor};
use crate::model::session::{Component, DType, OutputBinding, TensorSpec};
use crate::model::tensors::{self, FloatType};
use crate::model::tokenizer::Tokenizer;
use crate::model::xattn::{CrossRows, DecoderMedia, MediaKv, XattnKv};
use anyhow::{anyhow, bail, Context, Result};
use ort::session::SessionInputValue;
use ort::value::TensorRef;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One media item of a prompt: an image, or the frames of a video (in time order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Media {
    Image(PathBuf),
    Frames(Vec<PathBuf>),
}

impl Media {
    fn files(&self) -> &[PathBuf] {
        match self {
            Media::Image(p) => std::slice::from_ref(p),
            Media::Frames(f) => f,
        }
    }
}

/// The encoded form of one media item, shared by every prompt that shows it.
#[derive(Debug)]
pub struct EncodedMedia {
    /// Perceiver latents `[L, Dv]`, row-major.
    pub latents: Vec<f32>,
    /// Projected CLIP embedding `[E]` (unnormalised; the mean over frames for a video).
    pub embedding: Vec<f32>,
}

/// A tokenised prompt with its media in `<image>` order.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub ids: Vec<u32>,
    pub media: Vec<Arc<EncodedMedia>>,
}

/// Counters for the run's provenance and benchmarks.
#[derive(Debug, Default, Clone)]
pub struct ModelStats {
    pub vision_calls: usize,
    pub images_encoded: usize,
    pub media_cache_hits: usize,
    pub perceiver_calls: usize,
    pub decoder_calls: usize,
    pub vision_time: Duration,
    pub perceiver_time: Duration,
    /// Language decoder calls, including (contract 3) the cross-attention key/value graph's.
    pub decoder_time: Duration,
    /// Calls of the cross-attention key/value graph (contract 3) and their share of `decoder_time`.
    pub xattn_kv_calls: usize,
    pub xattn_kv_time: Duration,
    /// `--io-binding`: KV cache row selections done on the decoder's device (their time is in `decoder_time`).
    pub kv_device_gathers: usize,
    pub preprocess_time: Duration,
    /// Creating the three ONNX Runtime sessions (graph loading and optimisation).
    pub session_time: Duration,
}

impl ModelStats {
    /// Time spent inside ONNX Runtime: session creation and every model call.
    pub fn ort_time(&self) -> Duration {
        self.session_time + self.vision_time + self.perceiver_time + self.decoder_time
    }
}

/// Result of generating for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated token ids, without the stop token.
    pub tokens: Vec<u32>,
    /// Decoded text (special tokens skipped).
    pub text: String,
    /// Sum of the generated tokens' log-probabilities (the beam score when `length_penalty` is 0).
    pub score: f32,
}

/// Per-token log-probabilities of one candidate continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateScore {
    pub token_logprobs: Vec<f32>,
}

impl CandidateScore {
    pub fn sum(&self) -> f64 {
        self.token_logprobs.iter().map(|&v| v as f64).sum()
    }
    pub fn mean(&self) -> f64 {
        if self.token_logprobs.is_empty() {
            0.0
        } else {
            self.sum() / self.token_logprobs.len() as f64
        }
    }
}

pub struct FlamingoModel {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub tokenizer: Tokenizer,
    vision: Component,
    perceiver: Component,
    decoder: Component,
    /// Contract 3: the graph computing the decoder's cached cross-attention keys/values (None: recompute path).
    xattn: Option<XattnKv>,
    cache: HashMap<[u8; 32], Arc<EncodedMedia>>,
    /// Content hash per file, remembered with the file's size and modification time so a file shown by many
    /// prompts is read and hashed once.
    file_keys: std::sync::Mutex<HashMap<PathBuf, (u64, Option<std::time::SystemTime>, [u8; 32])>>,
    /// The last `[B, T, L, Dv]` latents batch and the media rows it was built from: decode steps of the same
    /// rows reuse it instead of re-gathering every image's latents per step.
    latents_cache: Option<(Vec<Vec<Arc<EncodedMedia>>>, Arc<Vec<f32>>, usize)>,
    pub stats: ModelStats,
    /// How many images go through the vision encoder in one call.
    pub vision_batch: usize,
    /// How many candidate continuations are scored in one decoder call.
    pub candidate_chunk: usize,
    /// How generation prompts of different lengths share decoder calls.
    pub batching: super::Batching,
    /// `RuntimeOptions::io_binding`: decoder calls through ONNX Runtime's IoBinding, the KV cache stays in the
    /// decoder device's memory and its rows are selected there by this gather.
    kv_gather: Option<RowGather>,
}

/// The decoding state of a batch of rows after a prefill.
#[derive(Debug)]
pub(crate) struct RowsState {
    pub kv: KvCache,
    /// Attention mask over the cached positions, per row.
    pub mask: Vec<Vec<i64>>,
    /// Number of real (non-padding) tokens seen so far, per row.
    pub real_len: Vec<usize>,
    /// Media of each row (the decode-step media index is `media.len()`).
    pub media: Vec<Vec<Arc<EncodedMedia>>>,
    /// Whether tokens after the prompt attend to the row's most recent media: what the prompt's last token
    /// attends to (false after an EOS with `cross_attention.media_reset_after_eos`, or without media).
    pub attends: Vec<bool>,
    /// Contract 3: the cross-attention keys/values the decode steps of each row use (opaque; empty otherwise).
    pub cross: CrossRows,
}

impl RowsState {
    /// A new state whose row `i` is row `rows[i]` of this one; a device-resident cache (`--io-binding`) is
    /// selected on its device by `gather`.
    pub fn select_rows(&self, rows: &[usize], gather: Option<&mut RowGather>) -> Result<RowsState> {
        Ok(RowsState {
            kv: self.kv.select_rows(rows, gather)?,
            mask: rows.iter().map(|&r| self.mask[r].clone()).collect(),
            real_len: rows.iter().map(|&r| self.real_len[r]).collect(),
            media: rows.iter().map(|&r| self.media[r].clone()).collect(),
            attends: rows.iter().map(|&r| self.attends[r]).collect(),
            cross: self.cross.select(rows),
        })
    }

    /// Like [`Self::select_rows`], but reuses this state's caches: rows are rearranged in place (nothing is
    /// copied when `rows` selects every row in order).
    pub fn into_rows(self, rows: &[usize], gather: Option<&mut RowGather>) -> Result<RowsState> {
        let RowsState { kv, mask, real_len, media, attends, cross } = self;
        Ok(RowsState {
            kv: kv.into_selected_rows(rows, gather)?,
            mask: rows.iter().map(|&r| mask[r].clone()).collect(),
            real_len: rows.iter().map(|&r| real_len[r]).collect(),
            media: rows.iter().map(|&r| media[r].clone()).collect(),
            attends: rows.iter().map(|&r| attends[r]).collect(),
            cross: cross.select(rows),
        })
    }
}

fn verify_hash(path: &Path, expected: &str) -> Result<()> {
    let got = crate::hashing::sha256_file_hex(path)?;
    if !expected.eq_ignore_ascii_case(&got) {
        bail!(
            "{}: sha256 {got} does not match model.yaml ({expected}); the file was modified or belongs to another export",
            path.display()
        );
    }
    Ok(())
}

impl FlamingoModel {
    /// Loads a model directory: manifest, tokenizer and the three sessions, each checked against the contract.
    pub fn load(dir: &Path, opts: &RuntimeOptions) -> Result<FlamingoModel> {
        let manifest = Manifest::load(dir)?;
        let c = &manifest.components;
        let files = manifest.files(dir);
        for (p, _) in &files {
            if !p.exists() {
                bail!(
                    "{}: component file missing (named in {}); re-export the model with export/export_openflamingo.py",
                    p.display(),
                    dir.join("model.yaml").display()
                );
            }
        }
        // Hash the (large) files in parallel; report the first mismatch in component order.
        let checks: Vec<Result<()>> = files.par_iter().map(|(p, sha)| verify_hash(p, sha)).collect();
        checks.into_iter().collect::<Result<Vec<()>>>()?;
        let tokenizer = Tokenizer::load(&manifest.component_path(dir, &c.tokenizer), &manifest)?;
        let t_sessions = Instant::now();
        let f32s = |n: &str, s: &str| TensorSpec::new(n, DType::F32, s);
        let i64s = |n: &str, s: &str| TensorSpec::new(n, DType::I64, s);
        // The tensors whose element type model.yaml's `dtype` decides (float16 for fp16; CONTRACT.md "Precision").
        let float_type = manifest.dtype().graph_float();
        let fl = |n: &str, s: &str| TensorSpec::new(n, DType::float(float_type), s);
        let optim = if float_type == FloatType::F16 { Optimization::Full } else { Optimization::Standard };
        let vision = Component::load(
            "vision_encoder",
            &manifest.component_path(dir, &c.vision_encoder),
            &[f32s("pixels", "[N,3,H,W]")],
            &[fl("patch_tokens", "[N,P,Dv]"), f32s("image_embedding", "[N,E]")],
            opts,
            optim,
        )?;
        let perceiver = Component::load(
            "perceiver",
            &manifest.component_path(dir, &c.perceiver),
            &[fl("patch_tokens", "[B,T,F,P,Dv]")],
            &[fl("latents", "[B,T,L,Dv]")],
            opts,
            optim,
        )?;
        let mut dec_in = vec![
            i64s("input_ids", "[B,S]"),
            i64s("attention_mask", "[B,Pk+S]"),
            i64s("media_index", "[B,S]"),
            i64s("logits_keep", "[1]"),
        ];
        // Contract 3: cached cross-attention keys/values per gated layer; else the latents (recompute path).
        let xattn = match (&manifest.cross_attn_cache, &c.xattn_kv) {
            (Some(x), Some(comp)) => {
                let names = XattnKv::input_names(&x.layers);
                let outs: Vec<TensorSpec> = names.iter().map(|n| fl(n, "[B,T,L,W]")).collect();
                dec_in.extend(outs.iter().cloned());
                let component =
                    Component::load("xattn_kv", &manifest.component_path(dir, comp), &[fl("latents", "[B,T,L,Dv]")], &outs, opts, optim)?;
                Some(XattnKv::new(component, x.layers.clone(), x.width, float_type))
            }
            _ => {
                dec_in.push(fl("vision_latents", "[B,T,L,Dv]"));
                None
            }
        };
        if manifest.lang.uses_position_ids {
            dec_in.push(i64s("position_ids", "[B,S]"));
        }
        let mut dec_out = vec![f32s("logits", "[B,K,V]")];
        for i in 0..manifest.lang.n_layers {
            dec_in.push(fl(&format!("past_key_{i}"), "[B,H,Pk,Dh]"));
            dec_in.push(fl(&format!("past_value_{i}"), "[B,H,Pk,Dh]"));
            dec_out.push(fl(&format!("present_key_{i}"), "[B,H,Pk+S,Dh]"));
            dec_out.push(fl(&format!("present_value_{i}"), "[B,H,Pk+S,Dh]"));
        }
        let decoder = Component::load("lang_decoder", &manifest.component_path(dir, &c.lang_decoder), &dec_in, &dec_out, opts, optim)?;
        // --io-binding: the KV cache stays where the decoder runs (device_kv)
        let mut xattn = xattn;
        let kv_gather = if opts.io_binding {
            let memory = KvMemory::for_provider(opts.device, &decoder.provider.provider);
            // and so do the decode steps' cross-attention keys/values (contract 3)
            if let Some(x) = xattn.as_mut() {
                x.device = Some(RowGather::new(x.layers.len(), float_type, memory, opts)?);
            }
            Some(RowGather::new(2 * manifest.lang.n_layers, float_type, memory, opts)?)
        } else {
            None
        };
        let session_time = t_sessions.elapsed();
        Ok(FlamingoModel {
            dir: dir.to_path_buf(),
            manifest,
            tokenizer,
            vision,
            perceiver,
            decoder,
            xattn,
            cache: HashMap::new(),
            file_keys: Default::default(),
            latents_cache: None,
            stats: ModelStats { session_time, ..ModelStats::default() },
            // On CPU, ViT throughput per image drops with large batches (measured on ViT-B/16 at 2 threads:
            // 0.25 s/image at 1-8 images, 0.31 at 32); a GPU wants large batches.
            vision_batch: if matches!(opts.device, crate::model::runtime::Device::Cpu) { 8 } else { 32 },
            candidate_chunk: 64,
            batching: opts.batching,
            kv_gather,
        })
    }

    /// The declared shape of a component's input or output tensor (-1 for a dynamic dimension), as the graph
    /// states it; for the consistency checks of [`super::checks`].
    pub fn tensor_shape(&self, component: &str, tensor: &str) -> Option<Vec<i64>> {
        let c = [Some(&self.vision), Some(&self.perceiver), Some(&self.decoder), self.xattn.as_ref().map(|x| &x.component)]
            .into_iter()
            .flatten()
            .find(|c| c.name == component)?;
        let s = &c.session;
        s.inputs()
            .iter()
            .map(|o| (o.name(), o.dtype()))
            .chain(s.outputs().iter().map(|o| (o.name(), o.dtype())))
            .find(|(n, _)| *n == tensor)
            .and_then(|(_, t)| t.tensor_shape().map(|sh| sh.iter().copied().collect()))
    }

    /// Element type of the graphs' dtype-dependent float tensors (KV cache, cross-attention keys/values).
    pub fn float_type(&self) -> FloatType {
        self.manifest.dtype().graph_float()
    }

    /// Which execution provider each component runs on.
    pub fn providers(&self) -> Vec<ProviderReport> {
        let mut out = vec![self.vision.provider.clone(), self.perceiver.provider.clone(), self.decoder.provider.clone()];
        out.extend(self.xattn.as_ref().map(|x| x.component.provider.clone()));
        out
    }

    /// Preprocessed pixels `[3,S,S]` of one image file.
    pub fn preprocess_file(&self, path: &Path) -> Result<Vec<f32>> {
        let img = decode_image_file(path)?;
        Ok(preprocess(&img, &self.manifest.preprocess))
    }

    /// Runs the vision encoder on preprocessed pixels (`n` images): (patch tokens `[n,P,Dv]`, embeddings `[n,E]`).
    pub fn run_vision(&mut self, pixels: &[f32], n: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let s = self.manifest.preprocess.image_size as i64;
        let t = Instant::now();
        let input = TensorRef::from_array_view((vec![n as i64, 3, s, s], pixels)).map_err(|e| anyhow!("{e}"))?;
        let out = self.vision.run(vec![(Cow::from("pixels"), SessionInputValue::from(input))])?;
        let v = &self.manifest.vision;
        let patches = tensors::output_f32(&out, "patch_tokens", &[n, v.num_patches, v.width])?;
        let emb = tensors::output_f32(&out, "image_embedding", &[n, v.embed_dim])?;
        drop(out);
        self.stats.vision_calls += 1;
        self.stats.images_encoded += n;
        self.stats.vision_time += t.elapsed();
        Ok((patches, emb))
    }

    /// Runs the perceiver on `b` media of `f` frames each: patch tokens `[b,1,f,P,Dv]` → latents `[b,L,Dv]`.
    pub fn run_perceiver(&mut self, patches: &[f32], b: usize, f: usize) -> Result<Vec<f32>> {
        let p = self.manifest.vision.num_patches as i64;
        let d = self.manifest.vision.width as i64;
        let t = Instant::now();
        let input = tensors::input_from_f32(vec![b as i64, 1, f as i64, p, d], patches, self.float_type())?;
        let out = self.perceiver.run(vec![(Cow::from("patch_tokens"), input)])?;
        let lat = tensors::output_f32(&out, "latents", &[b, 1, self.manifest.perceiver.num_latents, d as usize])?;
        drop(out);
        self.stats.perceiver_calls += 1;
        self.stats.perceiver_time += t.elapsed();
        Ok(lat)
    }

    /// Whether the decoder takes cached cross-attention keys/values (contract 3, `cross_attn_cache`); false:
    /// it recomputes them from the latents in every call (contract <= 2).
    pub fn cross_attn_cached(&self) -> bool {
        self.xattn.is_some()
    }

    /// Runs the cross-attention key/value graph on `n` media latents (`[n, L, Dv]`): per gated layer (in
    /// `cross_attn_cache.layers` order) `[n, L, W]`. None for a model without it; for the golden checks.
    pub fn run_xattn_kv(&mut self, latents: &[f32], n: usize) -> Result<Option<Vec<Vec<f32>>>> {
        let (l, dv) = (self.manifest.perceiver.num_latents, self.manifest.vision.width);
        let Some(x) = self.xattn.as_mut() else { return Ok(None) };
        let media: Vec<Arc<EncodedMedia>> = latents
            .chunks(l * dv)
            .take(n)
            .map(|c| Arc::new(EncodedMedia { latents: c.to_vec(), embedding: Vec::new() }))
            .collect();
        let kvs = x.for_media(std::slice::from_ref(&media), l, dv)?;
        Ok(Some(
            (0..x.layers.len())
                .map(|k| media.iter().flat_map(|m| kvs[&Arc::as_ptr(m)].layers[k].as_floats().to_f32()).collect())
                .collect(),
        ))
    }

    /// Encodes already-preprocessed single-frame images (`n` × `[3,S,S]`) without caching; used to check the
    /// model against reference pixels.
    pub fn encode_pixels(&mut self, pixels: &[f32], n: usize) -> Result<Vec<Arc<EncodedMedia>>> {
        let (patches, embs) = self.run_vision(pixels, n)?;
        let lat = self.run_perceiver(&patches, n, 1)?;
        let (l, d, e) = (self.manifest.perceiver.num_latents, self.manifest.vision.width, self.manifest.vision.embed_dim);
        Ok((0..n)
            .map(|i| {
                Arc::new(EncodedMedia {
                    latents: lat[i * l * d..(i + 1) * l * d].to_vec(),
                    embedding: embs[i * e..(i + 1) * e].to_vec(),
                })
            })
            .collect())
    }

    fn file_key(&self, path: &Path) -> Result<[u8; 32]> {
        let meta = std::fs::metadata(path).with_context(|| format!("could not read {}", path.display()))?;
        let (len, mtime) = (meta.len(), meta.modified().ok());
        if let Some((l, m, k)) = self.file_keys.lock().unwrap().get(path) {
            if *l == len && *m == mtime && mtime.is_some() {
                return Ok(*k);
            }
        }
        let key = crate::hashing::sha256_file(path)?;
        self.file_keys.lock().unwrap().insert(path.to_path_buf(), (len, mtime, key));
        Ok(key)
    }

    /// Encodes media (vision encoder + perceiver), each distinct content once per model instance: results are
    /// cached by the SHA-256 of the files' bytes. Errors name the file.
    pub fn encode_media(&mut self, media: &[Media]) -> Result<Vec<Arc<EncodedMedia>>> {
        let keys: Vec<[u8; 32]> = media
            .par_iter()
            .map(|m| {
                let mut h = Sha256::new();
                for f in m.files() {
                    h.update(self.file_key(f)?);
                }
                Ok(h.finalize().into())
            })
            .collect::<Result<_>>()?;
        // Distinct uncached media, first occurrence order.
        let mut todo: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            if self.cache.contains_key(k) {
                self.stats.media_cache_hits += 1;
            } else if seen.insert(*k) {
                todo.push(i);
            }
        }
        let max_frames = self.manifest.perceiver.max_frames;
        for &i in &todo {
            let nf = media[i].files().len();
            if nf == 0 {
                bail!("a video has no frames");
            }
            if nf > max_frames {
                bail!(
                    "{}: {nf} frames, but the model supports at most {max_frames} per media (perceiver.max_frames in model.yaml)",
                    media[i].files()[0].display()
                );
            }
        }
        // Preprocess all frames in parallel.
        let t = Instant::now();
        let frames: Vec<(usize, &PathBuf)> =
            todo.iter().flat_map(|&i| media[i].files().iter().map(move |f| (i, f))).collect();
        let pixels: Vec<Vec<f32>> = frames.par_iter().map(|(_, f)| self.preprocess_file(f)).collect::<Result<_>>()?;
        self.stats.preprocess_time += t.elapsed();
        // Vision encoder in batches over all frames.
        let px = pixels.first().map(|p| p.len()).unwrap_or(0);
        let (np, dv, e) = (self.manifest.vision.num_patches, self.manifest.vision.width, self.manifest.vision.embed_dim);
        let mut patches = Vec::with_capacity(frames.len() * np * dv);
        let mut embs = Vec::with_capacity(frames.len() * e);
        for chunk in pixels.chunks(self.vision_batch.max(1)) {
            let mut flat = Vec::with_capacity(chunk.len() * px);
            for p in chunk {
                flat.extend_from_slice(p);
            }
            let (p, em) = self.run_vision(&flat, chunk.len())?;
            patches.extend(p);
            embs.extend(em);
        }
        // Perceiver, grouped by frame count so each call has one F.
        let mut offsets = Vec::with_capacity(todo.len());
        let mut off = 0;
        for &i in &todo {
            offsets.push(off);
            off += media[i].files().len();
        }
        let mut by_frames: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (j, &i) in todo.iter().enumerate() {
            by_frames.entry(media[i].files().len()).or_default().push(j);
        }
        let l = self.manifest.perceiver.num_latents;
        for (nf, group) in by_frames {
            for chunk in group.chunks(self.vision_batch.max(1)) {
                let mut flat = Vec::with_capacity(chunk.len() * nf * np * dv);
                for &j in chunk {
                    flat.extend_from_slice(&patches[offsets[j] * np * dv..(offsets[j] + nf) * np * dv]);
                }
                let lat = self.run_perceiver(&flat, chunk.len(), nf)?;
                for (c, &j) in chunk.iter().enumerate() {
                    let mut emb = vec![0f32; e];
                    for fr in 0..nf {
                        for (k, v) in emb.iter_mut().enumerate() {
                            *v += embs[(offsets[j] + fr) * e + k];
                        }
                    }
                    if nf > 1 {
                        emb.iter_mut().for_each(|v| *v /= nf as f32);
                    }
                    let enc = EncodedMedia { latents: lat[c * l * dv..(c + 1) * l * dv].to_vec(), embedding: emb };
                    self.cache.insert(keys[todo[j]], Arc::new(enc));
                }
            }
        }
        Ok(keys.iter().map(|k| self.cache[k].clone()).collect())
    }

    /// Projected CLIP embeddings of image files (vision encoder only; nothing is cached, no perceiver run):
    /// what RICES retrieval needs for a whole demonstration split.
    pub fn image_embeddings(&mut self, paths: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        let e = self.manifest.vision.embed_dim;
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(self.vision_batch.max(1)) {
            let t = Instant::now();
            let pixels: Vec<Vec<f32>> = chunk.par_iter().map(|p| self.preprocess_file(p)).collect::<Result<_>>()?;
            self.stats.preprocess_time += t.elapsed();
            let flat: Vec<f32> = pixels.concat();
            let (_, emb) = self.run_vision(&flat, chunk.len())?;
            out.extend(emb.chunks(e).map(|c| c.to_vec()));
        }
        Ok(out)
    }

    /// A key that changes whenever [`Self::image_embeddings`] could change: the vision encoder file's hash and
    /// the preprocessing settings.
    pub fn embedding_key(&self) -> String {
        let p = &self.manifest.preprocess;
        format!(
            "vision_encoder:{}:size{}:{:?}:{:?}:{:?}",
            self.manifest.components.vision_encoder.sha256, p.image_size, p.interpolation, p.mean, p.std
        )
    }

    /// Tokenises a prompt and checks that its `<image>` markers match the media and that it fits the model.
    pub fn make_prompt(&self, text: &str, media: Vec<Arc<EncodedMedia>>) -> Result<Prompt> {
        let ids = self.tokenizer.encode(text)?;
        let n_img = ids.iter().filter(|&&t| t == self.tokenizer.image_id).count();
        if n_img != media.len() {
            bail!("the prompt has {n_img} <image> markers but {} media were given", media.len());
        }
        self.check_length(ids.len())?;
        Ok(Prompt { ids, media })
    }

    fn check_length(&self, n: usize) -> Result<()> {
        let max = self.manifest.lang.max_positions;
        if n > max {
            bail!("prompt is {n} tokens long, more than the model's maximum of {max} positions (lang.max_positions)");
        }
        Ok(())
    }

    /// One decoder call. `ids`, `positions` and `media_index` are `[B,S]` row-major; `mask` is `[B, Pk+S]`.
    #[allow(clippy::too_many_arguments)]
    fn decoder_step(
        &mut self,
        ids: &[i64],
        mask: &[i64],
        positions: &[i64],
        media_index: &[i64],
        media: &DecoderMedia,
        kv: &KvCache,
        batch: usize,
        keep: usize,
    ) -> Result<(Vec<f32>, KvCache)> {
        let s = ids.len() / batch;
        let total = kv.len + s;
        let (l, d) = (self.manifest.perceiver.num_latents, self.manifest.vision.width);
        let (h, dh) = (kv.heads, kv.head_dim);
        let t = Instant::now();
        let bi = batch as i64;
        let mut inputs: Vec<(Cow<str>, SessionInputValue)> = Vec::with_capacity(6 + 2 * kv.layers.len());
        // (with an IoBinding every input is owned, or ONNX Runtime's own KV tensor: tensors::input_as)
        let own = self.kv_gather.is_some();
        fn tens(shape: Vec<i64>, data: &[i64], own: bool) -> Result<SessionInputValue<'_>> {
            tensors::i64_input(shape, data, own)
        }
        inputs.push(("input_ids".into(), tens(vec![bi, s as i64], ids, own)?));
        inputs.push(("attention_mask".into(), tens(vec![bi, total as i64], mask, own)?));
        if self.manifest.lang.uses_position_ids {
            inputs.push(("position_ids".into(), tens(vec![bi, s as i64], positions, own)?));
        }
        inputs.push(("media_index".into(), tens(vec![bi, s as i64], media_index, own)?));
        let keep_arr = [keep as i64];
        inputs.push(("logits_keep".into(), tens(vec![1], &keep_arr, own)?));
        match media {
            DecoderMedia::Latents(latents, t) => inputs.push((
                "vision_latents".into(),
                match self.float_type() {
                    FloatType::F32 => tensors::input_as(vec![bi, *t as i64, l as i64, d as i64], tensors::Floats::F32(&latents[..]), own)?,
                    ty => tensors::input_from_f32(vec![bi, *t as i64, l as i64, d as i64], &latents[..], ty)?,
                },
            )),
            DecoderMedia::Kv(layers, t) => {
                let x = self.xattn.as_ref().ok_or_else(|| anyhow!("cross-attention keys/values for a model without xattn_kv"))?;
                let shape = vec![bi, *t as i64, l as i64, x.width as i64];
                for (name, data) in XattnKv::input_names(&x.layers).into_iter().zip(layers.iter()) {
                    inputs.push((name.into(), tensors::input_as(shape.clone(), data.as_floats(), own)?));
                }
            }
            DecoderMedia::Device(layers) => {
                let x = self.xattn.as_ref().ok_or_else(|| anyhow!("cross-attention keys/values for a model without xattn_kv"))?;
                for (name, t) in XattnKv::input_names(&x.layers).into_iter().zip(layers.iter()) {
                    inputs.push((name.into(), SessionInputValue::from(t)));
                }
            }
        }
        let kv_shape = vec![bi, h as i64, kv.len as i64, dh as i64];
        // Buffers can hold more rows than the cache uses (after an in-place row selection).
        let used = batch * h * kv.len * dh;
        for (i, (k, v)) in kv.layers.iter().enumerate() {
            inputs.push((format!("past_key_{i}").into(), k.input(&kv_shape, used, own)?));
            inputs.push((format!("past_value_{i}").into(), v.input(&kv_shape, used, own)?));
        }
        let n_layers = kv.layers.len();
        let ty = kv.ty;
        let vocab = self.manifest.lang.vocab_size;
        let binding = self.kv_gather.as_ref().map(|g| OutputBinding { memory: g.memory(), on_device: |n| n.starts_with("present_") });
        let on_device = binding.is_some();
        let (logits, layers) = self.decoder.run_with(inputs, binding.as_ref(), |out| {
            let logits = tensors::output_f32(out, "logits", &[batch, keep, vocab])?;
            // The caches stay in ONNX Runtime's output values (in the graph's element type): no copy until rows
            // are selected.
            let mut take = |name: String| {
                let v = out.remove(&name).ok_or_else(|| anyhow!("ONNX Runtime returned no output '{name}'"))?;
                KvTensor::from_output(v, &name, on_device)
            };
            let mut layers = Vec::with_capacity(n_layers);
            for i in 0..n_layers {
                layers.push((take(format!("present_key_{i}"))?, take(format!("present_value_{i}"))?));
            }
            Ok((logits, layers))
        })?;
        self.stats.decoder_calls += 1;
        self.stats.decoder_time += t.elapsed();
        Ok((logits, KvCache { batch, len: total, heads: h, head_dim: dh, ty, layers }))
    }

    /// With a device-resident cache, a row selection since `t` ran on the device: time inside ONNX Runtime.
    fn count_gathers(&mut self, t: Instant) {
        if let Some(g) = &self.kv_gather {
            self.stats.decoder_time += t.elapsed();
            self.stats.kv_device_gathers = g.calls;
        }
    }

    /// Flattens the media of each row into `[B, T, L, Dv]` (zero-padded to the largest T, at least 1). The last
    /// batch is kept: the decode steps of a search use the same rows again and again.
    fn latents_batch(&mut self, media: &[Vec<Arc<EncodedMedia>>]) -> (Arc<Vec<f32>>, usize) {
        if let Some((rows, lat, t)) = &self.latents_cache {
            let same = rows.len() == media.len()
                && rows.iter().zip(media).all(|(a, b)| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y)));
            if same {
                return (lat.clone(), *t);
            }
        }
        let (lat, t) = self.build_latents_batch(media);
        let lat = Arc::new(lat);
        self.latents_cache = Some((media.to_vec(), lat.clone(), t));
        (lat, t)
    }

    fn build_latents_batch(&self, media: &[Vec<Arc<EncodedMedia>>]) -> (Vec<f32>, usize) {
        let (l, d) = (self.manifest.perceiver.num_latents, self.manifest.vision.width);
        let t = media.iter().map(|m| m.len()).max().unwrap_or(0).max(1);
        let mut out = vec![0f32; media.len() * t * l * d];
        for (r, row) in media.iter().enumerate() {
            for (j, m) in row.iter().enumerate() {
                let base = (r * t + j) * l * d;
                out[base..base + l * d].copy_from_slice(&m.latents);
            }
        }
        (out, t)
    }

    /// The media inputs of a prefill and the per-row state its decode steps keep. Contract 3: each distinct
    /// media's cross-attention keys/values, computed once here (xattn_kv.onnx); else the latents.
    fn prefill_media(&mut self, media: &[Vec<Arc<EncodedMedia>>]) -> Result<(DecoderMedia, CrossRows)> {
        let (l, dv) = (self.manifest.perceiver.num_latents, self.manifest.vision.width);
        let Some(x) = self.xattn.as_mut() else {
            let (lat, t) = self.latents_batch(media);
            return Ok((DecoderMedia::Latents(lat, t), CrossRows::default()));
        };
        let t0 = Instant::now();
        let kvs = x.for_media(media, l, dv)?;
        let rows: Vec<Vec<Arc<MediaKv>>> =
            media.iter().map(|r| r.iter().map(|m| kvs[&Arc::as_ptr(m)].clone()).collect()).collect();
        let batch = x.batch(&rows, l)?;
        let cross = CrossRows(rows.iter().map(|r| r.last().cloned()).collect());
        let dt = t0.elapsed();
        self.stats.xattn_kv_calls += kvs.len().div_ceil(x.chunk.max(1));
        self.stats.xattn_kv_time += dt;
        self.stats.decoder_time += dt;
        Ok((batch, cross))
    }

    /// Prefills a batch of prompts (left-padded to the longest) and returns the state plus the logits of the
    /// last `keep` positions of every row (`[B, keep, V]`).
    pub(crate) fn prefill(&mut self, prompts: &[&Prompt], keep: usize) -> Result<(RowsState, Vec<f32>)> {
        if prompts.is_empty() {
            bail!("prefill of an empty batch");
        }
        let b = prompts.len();
        let s = prompts.iter().map(|p| p.ids.len()).max().unwrap();
        if s == 0 {
            bail!("empty prompt");
        }
        self.check_length(s)?;
        let pad = self.tokenizer.pad_id as i64;
        let img = self.tokenizer.image_id;
        let reset = self.manifest.cross_attention().media_reset_after_eos.then_some(self.tokenizer.eos_id);
        let mut ids = vec![pad; b * s];
        let mut mask = vec![0i64; b * s];
        let mut pos = vec![1i64; b * s];
        let mut midx = vec![0i64; b * s];
        let mut attends = Vec::with_capacity(b);
        for (r, p) in prompts.iter().enumerate() {
            let off = s - p.ids.len();
            let index = crate::model::prompt_format::media_index(&p.ids, img, reset);
            attends.push(index.last().is_some_and(|&m| m > 0));
            for (j, &t) in p.ids.iter().enumerate() {
                ids[r * s + off + j] = t as i64;
                mask[r * s + off + j] = 1;
                pos[r * s + off + j] = j as i64;
                midx[r * s + off + j] = index[j];
            }
        }
        let media: Vec<Vec<Arc<EncodedMedia>>> = prompts.iter().map(|p| p.media.clone()).collect();
        let (dmedia, cross) = self.prefill_media(&media)?;
        let l = &self.manifest.lang;
        let kv = KvCache::empty(b, l.n_layers, l.n_heads, l.head_dim, self.float_type());
        let (logits, kv) = self.decoder_step(&ids, &mask, &pos, &midx, &dmedia, &kv, b, keep.min(s))?;
        let state = RowsState {
            kv,
            mask: mask.chunks(s).map(|c| c.to_vec()).collect(),
            real_len: prompts.iter().map(|p| p.ids.len()).collect(),
            media,
            attends,
            cross,
        };
        Ok((state, logits))
    }

    /// Logits of the last `keep` positions of each prompt after a left-padded batch prefill (`[B, keep, V]`).
    pub fn prompt_logits(&mut self, prompts: &[&Prompt], keep: usize) -> Result<Vec<f32>> {
        Ok(self.prefill(prompts, keep)?.1)
    }

    /// Appends `tokens` (`[B, S]`, right-padded with `valid[r]` real tokens per row) to every row and returns the
    /// logits of all S positions (`[B, S, V]`) and the new state.
    pub(crate) fn extend(&mut self, state: &RowsState, tokens: &[Vec<u32>]) -> Result<(RowsState, Vec<f32>)> {
        let b = tokens.len();
        let s = tokens.iter().map(|t| t.len()).max().unwrap_or(0);
        if s == 0 {
            bail!("nothing to decode");
        }
        let total = state.kv.len + s;
        self.check_length(state.real_len.iter().map(|&r| r + s).max().unwrap_or(0))?;
        let pad = self.tokenizer.pad_id as i64;
        let mut ids = vec![pad; b * s];
        let mut mask = Vec::with_capacity(b * total);
        let mut pos = vec![1i64; b * s];
        let mut midx = vec![0i64; b * s];
        let mut new_masks = Vec::with_capacity(b);
        for (r, row) in tokens.iter().enumerate() {
            let mut m = state.mask[r].clone();
            for j in 0..s {
                let real = j < row.len();
                if real {
                    ids[r * s + j] = row[j] as i64;
                    pos[r * s + j] = (state.real_len[r] + j) as i64;
                }
                // New tokens attend to what the prompt's last token attends to: the row's most recent media,
                // passed as the only slot (or none).
                midx[r * s + j] = state.attends[r] as i64;
                m.push(real as i64);
            }
            mask.extend_from_slice(&m);
            new_masks.push(m);
        }
        // Only the last media of each row can be attended to after the prompt: pass just that one (T = 1)
        // instead of every image of a 32-shot prompt at every decode step.
        // Contract 3: that media's cached keys/values, computed at the prefill; never recomputed here.
        // (cross_attention.no_media uniform_all_media: a token that attends to none averages every slot it is
        // given, so such a row gets all its media, as in its prompt; the manifest refuses that mode together with
        // cross_attn_cache.)
        let dmedia = match &mut self.xattn {
            Some(x) => x.decode_batch(&state.cross, self.manifest.perceiver.num_latents)?,
            None => {
                let uniform = self.manifest.cross_attention().no_media == crate::model::manifest::NoMedia::UniformAllMedia;
                let last: Vec<Vec<Arc<EncodedMedia>>> = state
                    .media
                    .iter()
                    .zip(&state.attends)
                    .map(|(m, &a)| if uniform && !a { m.clone() } else { m.last().cloned().into_iter().collect() })
                    .collect();
                let (lat, t) = self.latents_batch(&last);
                DecoderMedia::Latents(lat, t)
            }
        };
        let (logits, kv) = self.decoder_step(&ids, &mask, &pos, &midx, &dmedia, &state.kv, b, s)?;
        let new_state = RowsState {
            kv,
            mask: new_masks,
            real_len: tokens.iter().zip(&state.real_len).map(|(t, &r)| r + t.len()).collect(),
            media: state.media.clone(),
            attends: state.attends.clone(),
            cross: state.cross.clone(),
        };
        Ok((new_state, logits))
    }

    /// Generates a continuation for each prompt (greedy when `num_beams == 1`, else Hugging Face-compatible beam
    /// search). Media are never re-encoded per beam.
    ///
    /// Prompts of equal token length are prefilled and decoded together (all their beams in one decoder call
    /// per step); different lengths are never padded into one call, because left padding changes ONNX
    /// Runtime's reduction order (differences of ~1e-6 in logits) and results must not depend on which
    /// prompts share a batch.
    pub fn generate(&mut self, prompts: &[&Prompt], params: &SearchParams) -> Result<Vec<Generation>> {
        params.validate()?;
        // (With cross_attention.no_media uniform_all_media a row's zero-padded media slots would be averaged
        // too: rows are then grouped by media count as well.)
        let uniform = self.manifest.cross_attention().no_media == crate::model::manifest::NoMedia::UniformAllMedia;
        let lens: Vec<usize> = prompts.iter().map(|p| p.ids.len()).collect();
        let keys: Vec<usize> = prompts.iter().map(|p| if uniform { p.media.len() } else { 0 }).collect();
        let v = self.manifest.lang.vocab_size;
        let mut out: Vec<Option<Generation>> = vec![None; prompts.len()];
        for group in super::batching::groups_within(&lens, &keys, self.batching) {
            let batch: Vec<&Prompt> = group.iter().map(|&i| prompts[i]).collect();
            let (mut state, logits) = self.prefill(&batch, 1)?;
            // All rows of all prompts of this group decode together. Equal-length batching: every row has the
            // same length at every step, so no padding is ever needed; padded batching: rows keep their left
            // padding (mask, positions and media indices are per row).
            let mut searches: Vec<(usize, Search)> =
                group.iter().map(|&i| Ok((i, Search::new(params, lens[i])?))).collect::<Result<_>>()?;
            let mut row_logits: Vec<Vec<f32>> = logits.chunks(v).map(|c| c.to_vec()).collect();
            let mut ranges: Vec<std::ops::Range<usize>> = (0..group.len()).map(|r| r..r + 1).collect();
            loop {
                let mut keep_rows = Vec::new();
                let mut tokens = Vec::new();
                let mut still = Vec::new();
                let mut new_ranges = Vec::new();
                for ((i, mut search), range) in searches.into_iter().zip(ranges) {
                    match search.advance(&row_logits[range.clone()])? {
                        Step::Done => {
                            let (tokens, score) = search.finish();
                            let text = self.tokenizer.decode(&tokens)?;
                            out[i] = Some(Generation { tokens, text, score });
                        }
                        Step::Continue { rows, tokens: t } => {
                            let start = keep_rows.len();
                            keep_rows.extend(rows.iter().map(|&r| range.start + r));
                            tokens.extend(t.iter().map(|&t| vec![t]));
                            new_ranges.push(start..keep_rows.len());
                            still.push((i, search));
                        }
                    }
                }
                if still.is_empty() {
                    break;
                }
                let t_sel = Instant::now();
                let selected = state.into_rows(&keep_rows, self.kv_gather.as_mut())?;
                self.count_gathers(t_sel);
                let (st, lg) = self.extend(&selected, &tokens)?;
                state = st;
                row_logits = lg.chunks(v).map(|c| c.to_vec()).collect();
                searches = still;
                ranges = new_ranges;
            }
        }
        Ok(out.into_iter().map(|g| g.expect("every prompt generated")).collect())
    }

    /// Log-probabilities of each candidate's tokens after the prompt. The prompt is prefilled once and its cache
    /// shared by all candidates (in chunks of `candidate_chunk`); candidates never see each other.
    pub fn score_candidates(&mut self, prompt: &Prompt, candidates: &[Vec<u32>]) -> Result<Vec<CandidateScore>> {
        let (state, logits) = self.prefill(&[prompt], 1)?;
        let v = self.manifest.lang.vocab_size;
        if let Some(c) = candidates.iter().find(|c| c.is_empty() || c.iter().any(|&t| t as usize >= v)) {
            bail!("candidate continuation {c:?} is empty or has a token id outside the model's vocabulary of {v} (lang.vocab_size)");
        }
        let first = log_softmax(&logits[..v]);
        let mut out = Vec::with_capacity(candidates.len());
        for chunk in candidates.chunks(self.candidate_chunk.max(1)) {
            // Only tokens 1.. need a forward pass: token 0 is scored by the prompt's last logits.
            let inputs: Vec<Vec<u32>> = chunk.iter().map(|c| c[..c.len().saturating_sub(1)].to_vec()).collect();
            let s = inputs.iter().map(|c| c.len()).max().unwrap_or(0);
            let rows = if s > 0 {
                let t_sel = Instant::now();
                let st = state.select_rows(&vec![0; chunk.len()], self.kv_gather.as_mut())?;
                self.count_gathers(t_sel);
                let (_, lg) = self.extend(&st, &inputs)?;
                Some(lg)
            } else {
                None
            };
            for (i, cand) in chunk.iter().enumerate() {
                let mut lp = Vec::with_capacity(cand.len());
                lp.push(first[cand[0] as usize]);
                for j in 1..cand.len() {
                    let lg = rows.as_ref().unwrap();
                    let base = (i * s + (j - 1)) * v;
                    lp.push(log_prob_at(&lg[base..base + v], cand[j] as usize));
                }
                out.push(CandidateScore { token_logprobs: lp });
            }
        }
        Ok(out)
    }
}

/// Log-softmax in the way PyTorch computes it for float32 logits (max-shifted, float accumulation widened to
/// f64 and rounded back).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let (max, lse) = max_and_lse(logits);
    logits.iter().map(|&x| (x - max) - lse).collect()
}

/// `log_softmax(logits)[t]` without materialising the whole vector (same arithmetic, same bits).
fn log_prob_at(logits: &[f32], t: usize) -> f32 {
    let (max, lse) = max_and_lse(logits);
    (logits[t] - max) - lse
}

fn max_and_lse(logits: &[f32]) -> (f32, f32) {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&x| ((x - max) as f64).exp()).sum();
    (max, sum.ln() as f32)
}
