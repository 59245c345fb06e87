//! `flamingo-eval merge`: joins the folders of a sharded run (`run --shard I/N`) into one results folder
//! identical to an unsharded run of the same command.
//!
//! What is identical: `samples.jsonl` byte for byte (records are reordered into the unsharded request order:
//! shot counts in the run's order, trials ascending, samples in evaluation order — recovered from the
//! benchmark file), `run.json` byte for byte, and every number of `summary.json` / `summary.csv` (recomputed
//! from the merged records with the shards' bootstrap settings). What differs: the `provenance` fields that
//! describe an invocation rather than the results — `samples_evaluated_this_invocation`, `samples_resumed`,
//! `vision_encoder_calls`, `images_encoded`, `media_cache_hits`, `rices_embeddings_computed` and `times` are sums over the shards
//! (`ort_share` their time-weighted mean); `git_commit`, `model_dir`, `benchmark_file`,
//! `onnxruntime_library`, `providers`, `intra_op_threads` and `batch_size` are shard 0's. Each shard's own
//! provenance is kept in `merge.json`.
//!
//! Refused: folders that are not shards, shards of different runs (model, benchmark files, shots, seeds,
//! limit, shard count), a missing or repeated shard index, an unfinished shard, a record in the wrong shard,
//! and a benchmark file that is not the one the shards ran.

use crate::benchmark::Benchmark;
use crate::engine::records::SampleRecord;
use crate::engine::run::{write_summary, Provenance, RunIdentity, Shard, StageTimes, Summary};
use crate::engine::scoring::{summarize, MetricChoice};
use crate::metrics::BootstrapConfig;
use crate::report::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

struct ShardFolder {
    dir: PathBuf,
    identity: RunIdentity,
    shard: Shard,
    summary: serde_json::Value,
}

/// What `merge` produced.
pub struct MergeOutcome {
    pub out: PathBuf,
    pub shards: usize,
    pub records: usize,
    pub summary: Summary,
}

fn load_shard(dir: &Path) -> Result<ShardFolder> {
    let id_path = dir.join("run.json");
    let text = std::fs::read_to_string(&id_path)
        .with_context(|| format!("{}: no run.json: not a results folder of `flamingo-eval run --shard`", dir.display()))?;
    let identity: RunIdentity =
        serde_json::from_str(&text).with_context(|| format!("{}: not a flamingo-eval run identity", id_path.display()))?;
    let shard = identity
        .shard
        .ok_or_else(|| anyhow!("{}: not a shard (run.json has no `shard`): merge takes the folders of `run --shard I/N`", dir.display()))?;
    let sum_path = dir.join("summary.json");
    let summary: serde_json::Value = match std::fs::read_to_string(&sum_path) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("{}: not a flamingo-eval summary", sum_path.display()))?,
        Err(_) => bail!(
            "{}: shard {}/{} has not finished (no summary.json): rerun its `flamingo-eval run --shard {}/{}` command (it resumes), then merge",
            dir.display(),
            shard.index,
            shard.count,
            shard.index,
            shard.count
        ),
    };
    Ok(ShardFolder { dir: dir.to_path_buf(), identity, shard, summary })
}

fn skip_key(msg: &str) -> Option<(usize, usize, String)> {
    // "shot {shot} trial {trial}: sample {id} skipped: {reason}" (engine::run)
    let rest = msg.strip_prefix("shot ")?;
    let (shot, rest) = rest.split_once(" trial ")?;
    let (trial, rest) = rest.split_once(": sample ")?;
    let (id, _) = rest.split_once(" skipped: ")?;
    Some((shot.parse().ok()?, trial.parse().ok()?, id.to_string()))
}

/// Merges shard folders into `out`. `benchmark` overrides the benchmark file recorded in the shards'
/// provenance (needed when the shards ran from another working directory).
pub fn merge(shard_dirs: &[PathBuf], out: &Path, benchmark: Option<&Path>) -> Result<MergeOutcome> {
    if shard_dirs.is_empty() {
        bail!("no shard folders given");
    }
    let shards: Vec<ShardFolder> = shard_dirs.iter().map(|d| load_shard(d)).collect::<Result<_>>()?;
    let first = &shards[0];
    let mut identity = first.identity.clone();
    identity.shard = None;
    let count = first.shard.count;
    let mut seen: HashMap<usize, &Path> = HashMap::new();
    for s in &shards {
        let mut other = s.identity.clone();
        other.shard = None;
        if other != identity {
            bail!(
                "{} and {} are shards of different runs (model, benchmark files, shots, seeds or limit differ): merge only the shards of one command",
                first.dir.display(),
                s.dir.display()
            );
        }
        if s.shard.count != count {
            bail!("{} is shard {}/{} but {} is shard {}/{}: all shards must use the same count", s.dir.display(), s.shard.index, s.shard.count, first.dir.display(), first.shard.index, count);
        }
        if let Some(prev) = seen.insert(s.shard.index, &s.dir) {
            bail!("shard {}/{count} is given twice: {} and {}", s.shard.index, prev.display(), s.dir.display());
        }
    }
    let missing: Vec<String> = (0..count).filter(|i| !seen.contains_key(i)).map(|i| format!("{i}/{count}")).collect();
    if !missing.is_empty() {
        bail!("shard(s) {} missing: give all {count} shard folders (run the missing ones with `run --shard I/{count}`)", missing.join(", "));
    }

    // The benchmark tells the unsharded order (and which samples each shard owed).
    let bench_path = match benchmark {
        Some(b) => b.to_path_buf(),
        None => PathBuf::from(
            first.summary["provenance"]["benchmark_file"]
                .as_str()
                .ok_or_else(|| anyhow!("{}/summary.json: no provenance.benchmark_file; pass --benchmark FILE", first.dir.display()))?,
        ),
    };
    let bytes = std::fs::read(&bench_path).with_context(|| {
        format!("could not read the benchmark file {} that the shards ran: pass --benchmark FILE (the same file)", bench_path.display())
    })?;
    if hex::encode(Sha256::digest(&bytes)) != identity.benchmark_sha256 {
        bail!(
            "{} is not the benchmark file the shards ran (its sha256 differs from run.json's benchmark_sha256): pass --benchmark with that file",
            bench_path.display()
        );
    }
    let mut bench = Benchmark::load(&bench_path)?;
    // The seeds the shards ran (`run --seeds` may have replaced the file's trials.seeds).
    bench.spec.trials.seeds = identity.trial_seeds.clone();
    let n_trials = identity.trial_seeds.len();
    // Per trial: sample id -> (evaluation position, query index).
    let mut order: Vec<HashMap<String, (usize, usize)>> = Vec::with_capacity(n_trials);
    for trial in 0..n_trials {
        let mut idx = bench.eval_indices(trial)?;
        if let Some(l) = identity.limit {
            idx.truncate(l);
        }
        order.push(idx.iter().enumerate().map(|(pos, &q)| (bench.query.samples[q].id.clone(), (pos, q))).collect());
    }
    let shot_pos: HashMap<usize, usize> = identity.shots.iter().enumerate().map(|(i, &s)| (s, i)).collect();

    let prefix = bench.skipped_summaries();
    let mut lines: Vec<((usize, usize, usize), String)> = Vec::new();
    let mut records: Vec<SampleRecord> = Vec::new();
    let mut skipped: Vec<((usize, usize, usize), String)> = Vec::new();
    let mut keys: HashSet<(usize, usize, String)> = HashSet::new();
    let mut per_shard_provenance = Vec::new();
    for s in &shards {
        let path = s.dir.join("samples.jsonl");
        let text = std::fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))?;
        if !text.is_empty() && !text.ends_with('\n') {
            bail!("{}: the last line is incomplete: rerun shard {}/{count} to finish it", path.display(), s.shard.index);
        }
        let mut have: HashSet<(usize, usize, String)> = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let rec: SampleRecord =
                serde_json::from_str(line).map_err(|e| anyhow!("{}: line {}: not a sample record: {e}", path.display(), i + 1))?;
            let where_ = || format!("{}: line {} (sample {}, shot {}, trial {})", path.display(), i + 1, rec.sample_id, rec.shot, rec.trial);
            let sp = *shot_pos.get(&rec.shot).ok_or_else(|| anyhow!("{}: shot count not in the run", where_()))?;
            let &(pos, q) = order
                .get(rec.trial)
                .and_then(|m| m.get(&rec.sample_id))
                .ok_or_else(|| anyhow!("{}: this sample is not evaluated by the run's benchmark and seeds", where_()))?;
            if !s.shard.owns(q) {
                bail!("{}: the sample belongs to shard {}/{count}, not {}/{count}", where_(), q % count, s.shard.index);
            }
            if !keys.insert(rec.key()) {
                bail!("{}: duplicate record", where_());
            }
            have.insert(rec.key());
            lines.push(((sp, rec.trial, pos), line.to_string()));
            records.push(rec);
        }
        let mut skipped_here: HashSet<(usize, usize, String)> = HashSet::new();
        for msg in s.summary["skipped_records"].as_array().into_iter().flatten().filter_map(|m| m.as_str()) {
            if prefix.iter().any(|p| p == msg) {
                continue;
            }
            let k = skip_key(msg).ok_or_else(|| anyhow!("{}/summary.json: unexpected skipped_records entry {msg:?}", s.dir.display()))?;
            let sp = *shot_pos.get(&k.0).ok_or_else(|| anyhow!("{}/summary.json: {msg:?}: shot not in the run", s.dir.display()))?;
            let pos = order.get(k.1).and_then(|m| m.get(&k.2)).map(|p| p.0).unwrap_or(usize::MAX);
            skipped.push(((sp, k.1, pos), msg.to_string()));
            skipped_here.insert(k);
        }
        // Every sample the shard owed is either recorded or reported as skipped.
        for &shot in &identity.shots {
            for (trial, ord) in order.iter().enumerate() {
                let owed = ord.iter().filter(|(_, &(_, q))| s.shard.owns(q));
                let lacking: BTreeSet<&String> = owed
                    .map(|(id, _)| id)
                    .filter(|id| {
                        let k = (shot, trial, (*id).clone());
                        !have.contains(&k) && !skipped_here.contains(&k)
                    })
                    .collect();
                if !lacking.is_empty() {
                    bail!(
                        "{}: shard {}/{count} is incomplete: shot {shot} trial {trial} lacks {} sample(s) (e.g. {}): rerun its command to finish it (it resumes)",
                        s.dir.display(),
                        s.shard.index,
                        lacking.len(),
                        lacking.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    );
                }
            }
        }
        per_shard_provenance.push(serde_json::json!({
            "dir": s.dir.display().to_string(),
            "shard": format!("{}/{}", s.shard.index, s.shard.count),
            "records": have.len(),
            "provenance": s.summary["provenance"],
        }));
    }
    lines.sort_by_key(|l| l.0);
    skipped.sort_by_key(|s| s.0);

    if out.join("run.json").is_file() && !out.join("merge.json").is_file() {
        let existing = std::fs::read_to_string(out.join("run.json")).unwrap_or_default();
        if serde_json::from_str::<RunIdentity>(&existing).ok().as_ref() != Some(&identity) || out.join("samples.jsonl").is_file() {
            bail!("{} already holds the results of a run: choose another --out (merge never overwrites a run)", out.display());
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;

    // Summary: recomputed from the merged records exactly as `run` computes it.
    let metric = MetricChoice {
        name: bench.spec.metric.name,
        mode: bench.spec.metric.mode,
        top_k: bench.spec.metric.top_k.as_ref().and_then(|k| k.first().copied()).unwrap_or(1),
    };
    let b = &first.summary["provenance"]["bootstrap"];
    let boot = BootstrapConfig {
        resamples: b["resamples"].as_u64().unwrap_or(1000) as usize,
        seed: b["seed"].as_u64().unwrap_or(0),
        confidence: b["confidence"].as_f64().unwrap_or(0.95),
    };
    records.sort_by_key(|r| (shot_pos[&r.shot], r.trial, order[r.trial][&r.sample_id].0));
    let results = summarize(&metric, &records, &bench.spec.trials.seeds, &boot)?;
    let provs: Vec<Provenance> = shards
        .iter()
        .map(|s| {
            serde_json::from_value(s.summary["provenance"].clone())
                .with_context(|| format!("{}/summary.json: unreadable provenance", s.dir.display()))
        })
        .collect::<Result<_>>()?;
    let mut provenance = provs[0].clone();
    provenance.identity = identity.clone();
    provenance.samples_evaluated_this_invocation = provs.iter().map(|p| p.samples_evaluated_this_invocation).sum();
    provenance.samples_resumed = provs.iter().map(|p| p.samples_resumed).sum();
    provenance.samples_recomputed = provs.iter().map(|p| p.samples_recomputed).sum();
    provenance.media_files_hashed = provs.iter().map(|p| p.media_files_hashed).sum();
    provenance.vision_encoder_calls = provs.iter().map(|p| p.vision_encoder_calls).sum();
    provenance.images_encoded = provs.iter().map(|p| p.images_encoded).sum();
    provenance.media_cache_hits = provs.iter().map(|p| p.media_cache_hits).sum();
    provenance.rices_embeddings_computed =
        provs.iter().any(|p| p.rices_embeddings_computed.is_some()).then(|| provs.iter().filter_map(|p| p.rices_embeddings_computed).sum());
    let sum = |f: fn(&StageTimes) -> f64| (provs.iter().map(|p| f(&p.times)).sum::<f64>() * 1e3).round() / 1e3;
    let total = sum(|t| t.total_s);
    let ort: f64 = provs.iter().map(|p| p.times.ort_share * p.times.total_s).sum();
    provenance.times = StageTimes {
        total_s: total,
        prompt_building_s: sum(|t| t.prompt_building_s),
        preprocess_s: sum(|t| t.preprocess_s),
        vision_encoder_s: sum(|t| t.vision_encoder_s),
        perceiver_s: sum(|t| t.perceiver_s),
        lang_decoder_s: sum(|t| t.lang_decoder_s),
        session_create_s: sum(|t| t.session_create_s),
        model_load_s: sum(|t| t.model_load_s),
        ort_share: if total > 0.0 { (ort / total * 1e3).round() / 1e3 } else { 0.0 },
    };
    let summary = Summary {
        benchmark: first.summary["benchmark"].as_str().unwrap_or(&bench.spec.name).to_string(),
        model: first.summary["model"].as_str().unwrap_or(&identity.model_name).to_string(),
        metric: metric.describe(),
        metric_key: metric.key().to_string(),
        results,
        skipped_records: prefix.into_iter().chain(skipped.into_iter().map(|s| s.1)).collect(),
        provenance,
        first_errors: Vec::new(),
    };

    let mut samples = String::with_capacity(lines.iter().map(|l| l.1.len() + 1).sum());
    for (_, l) in &lines {
        samples.push_str(l);
        samples.push('\n');
    }
    write_atomic(&out.join("samples.jsonl"), samples.as_bytes())?;
    write_atomic(&out.join("run.json"), (serde_json::to_string_pretty(&identity)? + "\n").as_bytes())?;
    write_summary(out, &summary)?;
    let manifest = serde_json::json!({ "merged_shards": count, "shards": per_shard_provenance });
    write_atomic(&out.join("merge.json"), (serde_json::to_string_pretty(&manifest)? + "\n").as_bytes())?;
    Ok(MergeOutcome { out: out.to_path_buf(), shards: count, records: lines.len(), summary })
}
