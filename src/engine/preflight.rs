//! Configuration errors of a sweep, found before any work: a run never fails after its first samples for a
//! reason that was knowable at the start (a shot count larger than the demonstration pool, nothing to
//! evaluate, video frames the model cannot take).

use crate::benchmark::spec::{DemoMethod, Layout};
use crate::benchmark::{demos, Benchmark};
use crate::engine::run::Shard;
use crate::model::Manifest;
use anyhow::{bail, Result};
use std::collections::HashSet;

/// The evaluated query indices of `trial`: the benchmark's subset, `--limit`, then the shard.
pub fn eval_indices(bench: &Benchmark, trial: usize, limit: Option<usize>, shard: Option<Shard>) -> Result<Vec<usize>> {
    let mut idx = bench.eval_indices(trial)?;
    if let Some(l) = limit {
        idx.truncate(l);
    }
    if let Some(sh) = shard {
        idx.retain(|&q| sh.owns(q));
    }
    Ok(idx)
}

/// Checks the sweep against the benchmark: `--limit`, something to evaluate in every trial, and — when the
/// benchmark selects demonstrations itself (`selects`) — the largest shot count against the pool every
/// evaluated sample can draw from.
pub fn check_sweep(bench: &Benchmark, shots: &[usize], n_trials: usize, limit: Option<usize>, shard: Option<Shard>, selects: bool) -> Result<()> {
    let file = bench.path.display();
    if limit == Some(0) {
        bail!("--limit 0 evaluates nothing; omit --limit to evaluate every sample");
    }
    let (k, at) = shots.iter().map(|&s| (bench.effective_shots(s), s)).max().unwrap_or((0, 0));
    let what = if at == 0 { format!("shot 0 uses {k} text-only demonstration(s) (zero_shot.demos)") } else { format!("--shots {at} needs {k} demonstrations") };
    for trial in 0..n_trials {
        let idx = eval_indices(bench, trial, limit, None)?;
        if idx.is_empty() {
            bail!("{file}: trial {trial} has no sample to evaluate (the query split is empty after samples.count / --limit)");
        }
        let idx = match shard {
            Some(sh) => idx.into_iter().filter(|&q| sh.owns(q)).collect(),
            None => idx,
        };
        if !selects || k == 0 || idx.is_empty() {
            continue;
        }
        match bench.spec.demo_selection.method {
            DemoMethod::Random => {
                let seed = bench.trial_seed(trial)?;
                let qs = demos::query_set(bench.demos.len(), bench.spec.query_set_size, seed);
                let members: HashSet<usize> = qs.iter().copied().collect();
                let worst = idx.iter().copied().min_by_key(|&q| qs.len() - bench.overlap[q].is_some_and(|d| members.contains(&d)) as usize);
                if let Some(q) = worst {
                    let available = qs.len() - bench.overlap[q].is_some_and(|d| members.contains(&d)) as usize;
                    if k > available {
                        bail!(
                            "{file}: {what}, but trial {trial} (seed {seed}) draws from a pool of {available} \
                             (query_set_size {} over a demonstration split of {}{}); use smaller shot counts, a \
                             larger demonstration split, or a larger query_set_size",
                            bench.spec.query_set_size,
                            bench.demos.len(),
                            if available < qs.len() { format!(", minus sample {}'s own record", bench.query.samples[q].id) } else { String::new() }
                        );
                    }
                }
            }
            DemoMethod::Rices => {
                let overlap = idx.iter().any(|&q| bench.overlap[q].is_some());
                let available = bench.demos.len() - overlap as usize;
                if k > available {
                    bail!(
                        "{file}: {what}, but RICES ranks a demonstration split of only {}{}; use smaller shot counts \
                         or a larger demonstration split",
                        bench.demos.len(),
                        if overlap { " (minus the query's own record)" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}

/// Checks the benchmark's media against what the model takes: video frames per media item.
pub fn check_media_limits(bench: &Benchmark, manifest: &Manifest, model_dir: &std::path::Path) -> Result<()> {
    if bench.spec.dataset.layout == Layout::VideoQa {
        if let Some(v) = &bench.spec.video {
            let max = manifest.perceiver.max_frames;
            if v.frames > max {
                bail!(
                    "{}: video.frames is {} but the model takes at most {max} frame(s) per video (perceiver.max_frames \
                     in {}); set video.frames to {max} or less, or use a video model",
                    bench.path.display(),
                    v.frames,
                    model_dir.join("model.yaml").display()
                );
            }
        }
    }
    Ok(())
}
