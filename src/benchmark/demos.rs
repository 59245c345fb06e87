//! Random demonstration selection, independent of batching, sharding and threads.
//!
//! Like OpenFlamingo, a "query set" of `query_set_size` demonstration-split records is drawn first
//! (without replacement), and each evaluated sample then draws its `k` demonstrations from that set
//! without replacement, in the drawn order. Unlike OpenFlamingo (which seeds a global RNG with seed + GPU
//! rank), every draw here has its own ChaCha8 stream seeded from SHA-256 of a purpose tag, the trial seed
//! and — for per-sample draws — the query sample's id. So a sample's demonstrations depend only on (trial
//! seed, sample id, query set), never on batch size, shard count, thread count or evaluation order.
//!
//! When the query and demonstration splits share a record id, that record is excluded from the sample's
//! candidates. Asking for more demonstrations than the candidates hold is an error (OF's
//! `random.sample` fails the same way); nothing is drawn with replacement.

use anyhow::{bail, Result};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// A ChaCha8 stream for (purpose, seed, key).
pub fn rng_for(purpose: &str, seed: u64, key: &str) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(b"flamingo-eval/v1\0");
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    ChaCha8Rng::from_seed(h.finalize().into())
}

/// Draw `size` distinct indices from `0..n` (all of them, in order, when `size >= n`); sorted ascending.
pub fn draw_subset(purpose: &str, seed: u64, n: usize, size: usize) -> Vec<usize> {
    if size >= n {
        return (0..n).collect();
    }
    let mut rng = rng_for(purpose, seed, "");
    let mut v = sample(&mut rng, n, size).into_vec();
    v.sort_unstable();
    v
}

/// The query set (demonstration-split indices) for one trial seed.
pub fn query_set(demo_split_len: usize, query_set_size: usize, trial_seed: u64) -> Vec<usize> {
    draw_subset("query-set", trial_seed, demo_split_len, query_set_size)
}

/// `k` demonstrations for the sample `query_id`, drawn without replacement from `query_set`, skipping the
/// demonstration-split index `exclude` (the same record as the query, when the splits overlap).
pub fn random_demos(query_set: &[usize], k: usize, trial_seed: u64, query_id: &str, exclude: Option<usize>) -> Result<Vec<usize>> {
    if k == 0 {
        return Ok(vec![]);
    }
    let excluded_pos = exclude.and_then(|e| query_set.iter().position(|&x| x == e));
    let available = query_set.len() - excluded_pos.is_some() as usize;
    if k > available {
        bail!(
            "sample {query_id}: {k} demonstrations requested but the query set has only {available} candidates \
             (raise query_set_size or use a larger demonstration split)"
        );
    }
    let mut rng = rng_for("demos", trial_seed, query_id);
    let picks = sample(&mut rng, available, k);
    Ok(picks
        .into_iter()
        .map(|p| match excluded_pos {
            Some(x) if p >= x => query_set[p + 1],
            _ => query_set[p],
        })
        .collect())
}
