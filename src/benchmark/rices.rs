//! RICES: retrieval-based in-context example selection (Yang et al. 2022; Flamingo; OpenFlamingo).
//!
//! Every demonstration-split image and every query image is embedded once by an [`ImageEmbedder`] (the
//! evaluated model's vision-encoder embedding output, or a separate CLIP image encoder in ONNX), rows are
//! L2-normalised, and each query takes the `k` demonstrations of highest cosine similarity over the WHOLE
//! demonstration split. The returned order puts the most similar demonstration LAST (right before the
//! query), as OF does.
//!
//! Ranking and ties (explicit and stable): demonstrations are ranked by similarity, descending; equal
//! similarity (bitwise-equal f32 scores) ranks the LOWER demonstration-split index first. The top `k` of
//! that ranking are then reversed, so among tied demonstrations the lower index ends up closer to the query.
//! Retrieval is by image: records sharing an image (several VQA questions about one picture) share one
//! embedding row, so their scores are exactly equal and the tie rule orders them by index. A demonstration
//! whose id equals the query's id (overlapping splits) is excluded. The rule is documented in README
//! ("Demonstration selection"); to reproduce another tool's order instead, pin it ([`super::pinned`]).
//!
//! Embeddings are cached on disk under `<cache>/rices/<key>.emb`. The key hashes the embedder's
//! [`ImageEmbedder::cache_key`] (which must identify weights and preprocessing) and the ordered list of
//! image paths with either their bytes (`content_hash: bytes`, default) or size + modification time
//! (`metadata`); the full key is stored in the file header and checked on load, so a stale cache is
//! never used.
//!
//! A cache miss is filled by default ([`CachePolicy::Fill`]). Cluster jobs fill the cache once in a
//! `flamingo-eval prepare` job and run their shards with [`CachePolicy::Require`]: a shard then only reads
//! it, and a missing or stale file is an error instead of N shards embedding the same images (possibly on
//! different devices, whose embeddings may differ in the last bits and so change the selection).
//!
//! Not for: running an encoder (the model layer implements [`ImageEmbedder`]).

use super::spec::ContentHash;
use anyhow::{anyhow, bail, Context, Result};
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Image embeddings from some encoder. Implemented by the model layer (vision encoder / CLIP ONNX) and by
/// fakes in tests.
pub trait ImageEmbedder {
    /// A string that changes whenever the embedding of an image could change: encoder weights (e.g. a hash
    /// of the ONNX file), preprocessing and output choice.
    fn cache_key(&self) -> String;
    /// One embedding per image, all of the same length (need not be normalised).
    fn embed(&mut self, images: &[PathBuf]) -> Result<Vec<Vec<f32>>>;
}

/// Row-major matrix of L2-normalised embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub data: Array2<f32>,
}

impl Embeddings {
    /// Normalise rows (a zero row stays zero).
    pub fn from_rows(rows: Vec<Vec<f32>>) -> Result<Embeddings> {
        let n = rows.len();
        let dim = rows.first().map(|r| r.len()).unwrap_or(0);
        let mut flat = Vec::with_capacity(n * dim);
        for (i, r) in rows.into_iter().enumerate() {
            if r.len() != dim {
                bail!("embedding {i} has length {} but the first has {dim}", r.len());
            }
            flat.extend(r);
        }
        let mut data = Array2::from_shape_vec((n, dim), flat)?;
        normalise_rows(&mut data);
        Ok(Embeddings { data })
    }
}

/// L2-normalise every row in place.
pub fn normalise_rows(m: &mut Array2<f32>) {
    for mut row in m.axis_iter_mut(Axis(0)) {
        let norm = row.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.mapv_inplace(|x| (x as f64 / norm) as f32);
        }
    }
}

/// The cache key for embedding `images` with `embedder_key`.
pub fn cache_key(embedder_key: &str, images: &[PathBuf], hash: ContentHash) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"rices-embeddings-v1\0");
    h.update(embedder_key.as_bytes());
    h.update([0]);
    h.update((images.len() as u64).to_le_bytes());
    // File digests in parallel (the key is still built in image order).
    let digests: Vec<[u8; 32]> = match hash {
        ContentHash::Bytes => images
            .par_iter()
            .map(|p| crate::hashing::sha256_file(p).with_context(|| format!("cannot read image {}", p.display())))
            .collect::<Result<_>>()?,
        ContentHash::Metadata => Vec::new(),
    };
    for (i, p) in images.iter().enumerate() {
        h.update(p.to_string_lossy().as_bytes());
        h.update([0]);
        match hash {
            ContentHash::Bytes => h.update(digests[i]),
            ContentHash::Metadata => {
                let m = std::fs::metadata(p).with_context(|| format!("cannot read image {}", p.display()))?;
                let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
                h.update(m.len().to_le_bytes());
                h.update(mtime.to_le_bytes());
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

const MAGIC: &[u8; 8] = b"FEEMB001";

fn cache_file(cache_dir: &Path, key: &str) -> PathBuf {
    cache_dir.join("rices").join(format!("{}.emb", &key[..32]))
}

/// Read a cache file; `None` when absent, unreadable or written for another key.
pub fn read_cache(path: &Path, key: &str) -> Option<Embeddings> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 8 + 4 || &bytes[..8] != MAGIC {
        return None;
    }
    let klen = u32::from_le_bytes(bytes[8..12].try_into().ok()?) as usize;
    let kend = 12 + klen;
    if bytes.get(12..kend)? != key.as_bytes() {
        return None;
    }
    let rows = u64::from_le_bytes(bytes.get(kend..kend + 8)?.try_into().ok()?) as usize;
    let dim = u64::from_le_bytes(bytes.get(kend + 8..kend + 16)?.try_into().ok()?) as usize;
    let body = bytes.get(kend + 16..)?;
    if body.len() != rows * dim * 4 {
        return None;
    }
    let flat: Vec<f32> = body.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Some(Embeddings { data: Array2::from_shape_vec((rows, dim), flat).ok()? })
}

fn write_cache(path: &Path, key: &str, e: &Embeddings) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap()).with_context(|| format!("cannot create {}", path.parent().unwrap().display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?);
        f.write_all(MAGIC)?;
        f.write_all(&(key.len() as u32).to_le_bytes())?;
        f.write_all(key.as_bytes())?;
        f.write_all(&(e.data.nrows() as u64).to_le_bytes())?;
        f.write_all(&(e.data.ncols() as u64).to_le_bytes())?;
        for x in e.data.iter() {
            f.write_all(&x.to_le_bytes())?;
        }
        f.flush()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// What a run does when an embedding cache file is missing or was written for other images or another
/// encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachePolicy {
    /// Compute the embeddings and write the cache file (the default).
    #[default]
    Fill,
    /// Only read: a miss is an error telling how to fill the cache (`flamingo-eval prepare`).
    Require,
}

impl std::str::FromStr for CachePolicy {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<CachePolicy> {
        match s {
            "fill" => Ok(CachePolicy::Fill),
            "require" => Ok(CachePolicy::Require),
            other => bail!("unknown RICES cache policy `{other}`: expected `fill` or `require`"),
        }
    }
}

/// One embedding-cache file used for a list of images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUse {
    pub file: PathBuf,
    pub images: usize,
    /// Embeddings computed now (0 when the file was read; `images` when it was filled).
    pub computed: usize,
}

/// Embed `images` (in order), using and filling the on-disk cache. Images are sent to the embedder in
/// batches of `batch` paths.
pub fn embed_cached(embedder: &mut dyn ImageEmbedder, images: &[PathBuf], cache_dir: &Path, hash: ContentHash, batch: usize) -> Result<Embeddings> {
    embed_cached_with(embedder, images, cache_dir, hash, batch, CachePolicy::Fill).map(|(e, _)| e)
}

/// [`embed_cached`] under a [`CachePolicy`], also saying which cache file was used and how many embeddings
/// were computed.
pub fn embed_cached_with(
    embedder: &mut dyn ImageEmbedder,
    images: &[PathBuf],
    cache_dir: &Path,
    hash: ContentHash,
    batch: usize,
    policy: CachePolicy,
) -> Result<(Embeddings, CacheUse)> {
    let key = cache_key(&embedder.cache_key(), images, hash)?;
    let path = cache_file(cache_dir, &key);
    if let Some(e) = read_cache(&path, &key) {
        if e.data.nrows() == images.len() {
            return Ok((e, CacheUse { file: path, images: images.len(), computed: 0 }));
        }
    }
    if policy == CachePolicy::Require {
        bail!(
            "the RICES embedding cache {} is missing or was written for other images or another encoder, and this run \
             only reads the cache (--rices-cache require). Fill it first with `flamingo-eval prepare --benchmark FILE \
             --model DIR` using the same cache folder (the benchmark's cache_dir, else $FLAMINGO_EVAL_CACHE, \
             $XDG_CACHE_HOME/flamingo-eval or ~/.cache/flamingo-eval), or run with --rices-cache fill",
            path.display()
        );
    }
    let mut rows = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let out = embedder.embed(chunk)?;
        if out.len() != chunk.len() {
            bail!("the image embedder returned {} embeddings for {} images", out.len(), chunk.len());
        }
        rows.extend(out);
    }
    let e = Embeddings::from_rows(rows)?;
    write_cache(&path, &key, &e)?;
    Ok((e, CacheUse { file: path, images: images.len(), computed: images.len() }))
}

/// Query rows per GEMM block: fixed, so results never depend on how callers batch queries.
const BLOCK: usize = 64;

/// For each query row, the `k` best demonstrations, most similar LAST.
///
/// `demos` holds one row per distinct demonstration image; `demo_image_of[d]` is the row of demonstration
/// `d` (so `demo_image_of.len()` is the number of demonstrations). `exclude[q]` is a demonstration index
/// never returned for query `q`. Fewer than `k` demonstrations available is an error.
pub fn retrieve(queries: ArrayView2<f32>, demos: ArrayView2<f32>, demo_image_of: &[u32], k: usize, exclude: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
    if queries.ncols() != demos.ncols() {
        bail!("query embeddings have {} dimensions but demonstration embeddings have {}", queries.ncols(), demos.ncols());
    }
    if exclude.len() != queries.nrows() {
        bail!("exclude list length {} != number of queries {}", exclude.len(), queries.nrows());
    }
    if k > demo_image_of.len() - exclude.iter().any(|e| e.is_some()) as usize {
        bail!("{k} demonstrations requested but the demonstration split has only {}", demo_image_of.len());
    }
    let starts: Vec<usize> = (0..queries.nrows()).step_by(BLOCK).collect();
    let out: Vec<Vec<Vec<usize>>> = starts
        .par_iter()
        .map(|&s0| {
            let s1 = (s0 + BLOCK).min(queries.nrows());
            let sims = queries.slice(s![s0..s1, ..]).dot(&demos.t());
            (s0..s1).map(|q| top_k_row(sims.row(q - s0).as_slice().unwrap(), demo_image_of, k, exclude[q])).collect()
        })
        .collect();
    Ok(out.into_iter().flatten().collect())
}

/// Best `k` demonstrations for one row of image similarities, most similar last.
fn top_k_row(sims: &[f32], demo_image_of: &[u32], k: usize, exclude: Option<usize>) -> Vec<usize> {
    // `best` is sorted best-first by (similarity desc, index asc); scanning indices in ascending order and
    // inserting only on strictly greater similarity keeps the lower index first among ties.
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return vec![];
    }
    for (d, &img) in demo_image_of.iter().enumerate() {
        if Some(d) == exclude {
            continue;
        }
        let s = sims[img as usize];
        if best.len() == k {
            if !(s > best[k - 1].0) {
                continue;
            }
            best.pop();
        }
        let pos = best.partition_point(|&(bs, _)| bs >= s);
        best.insert(pos, (s, d));
    }
    best.into_iter().rev().map(|(_, d)| d).collect()
}

/// Embeddings for the demonstration and query splits, deduplicated by image path.
#[derive(Debug, Clone)]
pub struct RicesIndex {
    pub demo_embeddings: Embeddings,
    pub demo_image_of: Vec<u32>,
    pub query_embeddings: Embeddings,
    pub query_image_of: Vec<u32>,
    /// The cache files of the demonstration and the query split, and how many embeddings were computed.
    pub demo_cache: CacheUse,
    pub query_cache: CacheUse,
}

/// Distinct paths in first-appearance order, and each item's position among them.
pub fn dedupe(paths: &[&Path]) -> (Vec<PathBuf>, Vec<u32>) {
    let mut seen = std::collections::HashMap::new();
    let mut unique = Vec::new();
    let of = paths
        .iter()
        .map(|p| {
            *seen.entry(p.to_path_buf()).or_insert_with(|| {
                unique.push(p.to_path_buf());
                (unique.len() - 1) as u32
            })
        })
        .collect();
    (unique, of)
}

impl RicesIndex {
    /// Embed (or load from cache) both splits' images.
    pub fn build(embedder: &mut dyn ImageEmbedder, demo_images: &[&Path], query_images: &[&Path], cache_dir: &Path, hash: ContentHash) -> Result<RicesIndex> {
        Self::build_with(embedder, demo_images, query_images, cache_dir, hash, CachePolicy::Fill)
    }

    /// [`Self::build`] under a cache policy.
    pub fn build_with(
        embedder: &mut dyn ImageEmbedder,
        demo_images: &[&Path],
        query_images: &[&Path],
        cache_dir: &Path,
        hash: ContentHash,
        policy: CachePolicy,
    ) -> Result<RicesIndex> {
        let (du, demo_image_of) = dedupe(demo_images);
        let (qu, query_image_of) = dedupe(query_images);
        let (demo_embeddings, demo_cache) =
            embed_cached_with(embedder, &du, cache_dir, hash, 32, policy).context("embedding the demonstration split for RICES")?;
        let (query_embeddings, query_cache) =
            embed_cached_with(embedder, &qu, cache_dir, hash, 32, policy).context("embedding the query split for RICES")?;
        if demo_embeddings.data.ncols() != query_embeddings.data.ncols() {
            return Err(anyhow!("RICES: demonstration and query embeddings differ in size"));
        }
        Ok(RicesIndex { demo_embeddings, demo_image_of, query_embeddings, query_image_of, demo_cache, query_cache })
    }

    /// Image embeddings computed while building this index (0 when both cache files were read).
    pub fn embeddings_computed(&self) -> usize {
        self.demo_cache.computed + self.query_cache.computed
    }

    /// Neighbours of the given query-split samples, most similar last.
    pub fn neighbours(&self, query_samples: &[usize], k: usize, exclude: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        let rows: Vec<usize> = query_samples.iter().map(|&q| self.query_image_of[q] as usize).collect();
        let q = self.query_embeddings.data.select(Axis(0), &rows);
        retrieve(q.view(), self.demo_embeddings.data.view(), &self.demo_image_of, k, exclude)
    }
}
