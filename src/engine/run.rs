//! The evaluation run: benchmark requests → model → records → summary, with resume.

use crate::benchmark::pinned::{DemoPins, PinsConfig, PinsProvenance};
use crate::benchmark::spec::{RankNormalization, RicesEncoder, TaskKind};
use crate::benchmark::{Benchmark, ImageEmbedder, PromptRequest};
use crate::engine::identity;
use crate::engine::lock::ResultsLock;
use crate::engine::outcome::FailFast;
use crate::engine::preflight;
use crate::engine::records::{read_records, CandidateRecord, RecordWriter, SampleRecord};
use crate::engine::reuse::{self, DigestCache, Key, Order, ReuseReport};
use crate::engine::scoring::{per_sample_value, summarize, MetricChoice, ShotResult};
use crate::metrics::BootstrapConfig;
use crate::model::{FlamingoModel, Media, RuntimeOptions, SearchParams};
use anyhow::{anyhow, bail, Context, Result};
use crate::engine::progress::{ProgressMode, ProgressSlot, SweepProgress};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub model_dir: PathBuf,
    pub benchmark: PathBuf,
    /// Shot counts to sweep (default: the benchmark's).
    pub shots: Option<Vec<usize>>,
    /// Number of trials (default: all of the benchmark's seeds).
    pub trials: Option<usize>,
    /// Evaluate at most this many samples per (shot, trial).
    pub limit: Option<usize>,
    /// Requests handled together (media encoding, prefill of equal-length prompts, candidate chunks).
    pub batch_size: usize,
    pub out: PathBuf,
    pub runtime: RuntimeOptions,
    pub quiet: bool,
    pub fail_fast: bool,
    pub bootstrap: BootstrapConfig,
    /// Evaluate only this shard's samples (see [`Shard`]); `flamingo-eval merge` joins the shard folders.
    pub shard: Option<Shard>,
    /// Pinned demonstrations (`--demos FILE`, `--demos-fallback`); None: the benchmark's own selection.
    pub demos: Option<PinsConfig>,
    /// RICES embedding cache: fill a miss (default) or only read (`Require`, for shards after `prepare`).
    pub rices_cache: crate::benchmark::rices::CachePolicy,
    /// Fail the run (exit 1) when a (shot, trial)'s share of failed samples is above this fraction; None:
    /// failed samples are reported, and only a (shot, trial) with no scored sample fails (see
    /// [`super::outcome`]).
    pub max_error_rate: Option<f64>,
    /// Another prompt template for the benchmark (`run --template FILE`): the benchmark file is used unchanged
    /// (data, shots, seeds, demonstration selection); the run's identity hashes this template instead.
    pub template: Option<PathBuf>,
    /// On resume, recompute the records that failed instead of keeping them.
    pub retry_errors: bool,
    /// Command-line overrides of the benchmark file: trial seeds (`--seeds`) and generation settings
    /// (`--gen`); part of the run's identity (run.json).
    pub overrides: crate::benchmark::overrides::SpecOverrides,
    /// `--limit` as given, a count or a fraction of the samples each trial evaluates (see
    /// [`crate::benchmark::overrides::Limit`]); takes the place of `limit` (giving both is an error).
    pub sample_limit: Option<crate::benchmark::overrides::Limit>,
    /// Where progress goes: a sweep shared by several benchmarks' runs. None: the run shows its own (bars or
    /// lines, or only a line per finished stage with `quiet`).
    pub progress: Option<super::progress::ProgressSlot>,
}

/// One of `count` disjoint parts of a run: the samples whose query-split index `q` has `q % count == index`.
/// A pure function of the sample (given the benchmark file), so every shot count and trial, every resume and
/// every rerun of a shard evaluates the same samples, and the shards of a run cover it exactly once.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn owns(&self, query_index: usize) -> bool {
        query_index % self.count == self.index
    }
}

pub use super::identity::RunIdentity;

#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
pub struct StageTimes {
    pub total_s: f64,
    pub prompt_building_s: f64,
    pub preprocess_s: f64,
    /// ONNX Runtime session creation (graph loading and optimisation); part of `ort_share`.
    #[serde(default)]
    pub session_create_s: f64,
    /// Loading the model folder: manifest, component checks and hashes, tokenizer, and the session creation above.
    #[serde(default)]
    pub model_load_s: f64,
    pub vision_encoder_s: f64,
    pub perceiver_s: f64,
    pub lang_decoder_s: f64,
    pub ort_share: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Provenance {
    pub harness_version: String,
    pub git_commit: String,
    pub model_dir: String,
    /// The model's source identity from its manifest (`source.checkpoint_sha256`, `source.preset`): what reports
    /// match published numbers by. Absent in summaries of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_source: Option<ModelSource>,
    pub benchmark_file: String,
    pub identity: RunIdentity,
    pub onnxruntime_library: Option<String>,
    pub providers: Vec<String>,
    pub intra_op_threads: usize,
    pub batch_size: usize,
    pub bootstrap: serde_json::Value,
    pub metric: String,
    pub samples_evaluated_this_invocation: usize,
    /// Records of an earlier invocation reused as they were.
    pub samples_resumed: usize,
    /// Records of an earlier invocation recomputed because something they were computed from changed (or
    /// `--retry-errors`).
    #[serde(default)]
    pub samples_recomputed: usize,
    /// Media files read and hashed for the records' content digests.
    #[serde(default)]
    pub media_files_hashed: usize,
    pub vision_encoder_calls: usize,
    pub images_encoded: usize,
    pub media_cache_hits: usize,
    pub times: StageTimes,
    /// Pinned demonstrations: the file and how many requests used its pins vs the benchmark's selection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_pins: Option<PinsProvenance>,
    /// RICES benchmarks: image embeddings this invocation computed (0 when it read the cache `prepare` filled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rices_embeddings_computed: Option<usize>,
    /// Command-line overrides of the benchmark file (`--seeds`, `--gen`) and a fractional `--limit`, as
    /// given and as resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<serde_json::Value>,
}

/// The source identity of the evaluated model, as its manifest records it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ModelSource {
    pub checkpoint_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// model.yaml's `dtype` (contract 4: fp16 / bf16 / fp32); absent for models without the key (fp32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub benchmark: String,
    pub model: String,
    pub metric: String,
    pub metric_key: String,
    pub results: Vec<ShotResult>,
    pub skipped_records: Vec<String>,
    pub provenance: Provenance,
    /// The first failed samples, in request order (for the exit status message; not in summary.json).
    #[serde(skip)]
    pub first_errors: Vec<String>,
}

use crate::hashing::sha256_file_hex as sha256_file;

/// The commit of the checkout the executable lives in (found at run time; "unknown" for a binary copied out
/// of its checkout).
fn git_commit() -> String {
    let Some(root) = crate::model::runtime::project_root() else { return "unknown".into() };
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// RICES embeddings from the model's own vision encoder.
struct ModelEmbedder<'a> {
    model: &'a mut FlamingoModel,
}

impl ImageEmbedder for ModelEmbedder<'_> {
    fn cache_key(&self) -> String {
        self.model.embedding_key()
    }
    fn embed(&mut self, images: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        self.model.image_embeddings(images)
    }
}

struct ClipEmbedder(crate::model::clip::ClipImageEncoder);

impl ImageEmbedder for ClipEmbedder {
    fn cache_key(&self) -> String {
        self.0.cache_key()
    }
    fn embed(&mut self, images: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        self.0.embed(images)
    }
}

/// Connects a benchmark that selects demonstrations by RICES to its image encoder: the evaluated model's
/// vision encoder (`encoder: model`, needs `model`) or a separate CLIP ONNX file (`encoder: clip_onnx`).
pub fn prepare_rices(bench: &mut Benchmark, model: Option<&mut FlamingoModel>, runtime: &RuntimeOptions) -> Result<()> {
    prepare_rices_with(bench, model, runtime, crate::benchmark::rices::CachePolicy::Fill)
}

/// [`prepare_rices`] under an embedding-cache policy (`Require`: only read the cache).
pub fn prepare_rices_with(
    bench: &mut Benchmark,
    model: Option<&mut FlamingoModel>,
    runtime: &RuntimeOptions,
    policy: crate::benchmark::rices::CachePolicy,
) -> Result<()> {
    if !bench.uses_rices() {
        return Ok(());
    }
    match bench.spec.demo_selection.encoder {
        RicesEncoder::Model => {
            let model = model.ok_or_else(|| {
                anyhow!(
                    "{}: RICES with `encoder: model` needs the model's image embeddings: pass --model DIR",
                    bench.path.display()
                )
            })?;
            if model.manifest.vision.image_embedding == crate::model::manifest::EmbeddingKind::Pooled {
                bail!(
                    "{}: RICES with `encoder: model`, but {}'s image_embedding is its pooled vision state \
                     (vision.image_embedding: pooled: the model has no CLIP projection head), not a CLIP embedding; \
                     use `demo_selection: {{encoder: clip_onnx, clip_onnx: DIR}}` with a CLIP encoder exported by \
                     export/export_clip.py",
                    bench.path.display(),
                    model.manifest.name
                );
            }
            bench.prepare_rices_with(&mut ModelEmbedder { model }, policy)
        }
        RicesEncoder::ClipOnnx => {
            let value = bench.spec.demo_selection.clip_onnx.clone().ok_or_else(|| {
                anyhow!("{}: demo_selection.encoder is clip_onnx but demo_selection.clip_onnx is not set", bench.path.display())
            })?;
            let base = bench.path.parent().unwrap_or(Path::new(".")).to_path_buf();
            let path = crate::benchmark::spec::resolve_path(&value, &base, "demo_selection.clip_onnx")?;
            let enc = crate::model::clip::ClipImageEncoder::load(&path, runtime)?;
            bench.prepare_rices_with(&mut ClipEmbedder(enc), policy)
        }
    }
}

fn to_model_media(m: &crate::benchmark::Media) -> Media {
    match m {
        crate::benchmark::Media::Image(p) => Media::Image(p.clone()),
        crate::benchmark::Media::Video(f) => Media::Frames(f.clone()),
    }
}

fn media_strings(m: &crate::benchmark::Media) -> Vec<String> {
    match m {
        crate::benchmark::Media::Image(p) => vec![p.display().to_string()],
        crate::benchmark::Media::Video(f) => f.iter().map(|p| p.display().to_string()).collect(),
    }
}

fn base_record(r: &PromptRequest) -> SampleRecord {
    SampleRecord {
        sample_id: r.sample_id.clone(),
        shot: r.shot,
        trial: r.trial,
        trial_seed: r.trial_seed,
        prompt: r.prompt.clone(),
        demo_ids: r.demo_ids.clone(),
        text_only_demo_ids: r.text_only_demo_ids.clone(),
        media: r.media.iter().map(media_strings).collect(),
        media_sha256: Vec::new(),
        target: serde_json::to_value(&r.target).unwrap_or(serde_json::Value::Null),
        raw_output: None,
        prediction: None,
        tokens: None,
        sequence_score: None,
        candidate_scores: None,
        metric: None,
        error: None,
        ensemble_demo_ids: if r.ensemble.is_empty() {
            None
        } else {
            Some(r.ensemble.iter().map(|m| if m.demo_ids.is_empty() { m.text_only_demo_ids.clone() } else { m.demo_ids.clone() }).collect())
        },
    }
}

struct Runner<'a> {
    model: &'a mut FlamingoModel,
    bench: &'a Benchmark,
    metric: MetricChoice,
    candidates: Vec<(String, Vec<u32>)>,
    fail_fast: bool,
}

impl Runner<'_> {
    /// Processes one batch of requests into records (in request order); `records` are their base records
    /// (see [`base_record`], with media digests).
    fn process(&mut self, batch: &[PromptRequest], mut records: Vec<SampleRecord>) -> Result<Vec<SampleRecord>> {
        // Encode the batch's media together; on failure, per request, so the error lands on its sample.
        let all: Vec<Media> = batch.iter().filter(|r| r.error.is_none()).flat_map(|r| r.media.iter().map(to_model_media)).collect();
        let encoded = self.model.encode_media(&all).ok();
        let mut offset = 0;
        let mut prompts = Vec::with_capacity(batch.len());
        let mut members: Vec<Vec<crate::model::Prompt>> = Vec::with_capacity(batch.len());
        for (i, r) in batch.iter().enumerate() {
            if let Some(e) = &r.error {
                // A media file that cannot be used: recorded on the sample, the batch goes on.
                if self.fail_fast {
                    return Err(FailFast(format!("sample {} (shot {}, trial {}): {e}", r.sample_id, r.shot, r.trial)).into());
                }
                records[i].error = Some(e.clone());
                // prompts and members stay aligned with the batch: one entry per request, always
                prompts.push(None);
                members.push(vec![]);
                continue;
            }
            let n = r.media.len();
            let enc = match &encoded {
                Some(e) => Ok(e[offset..offset + n].to_vec()),
                None => self.model.encode_media(&r.media.iter().map(to_model_media).collect::<Vec<_>>()),
            };
            offset += n;
            let made = enc.and_then(|enc| self.model.make_prompt(&r.prompt, enc)).and_then(|p| {
                // A prompt that fits but leaves no room for its continuation fails here, on its own sample,
                // instead of stopping the whole batch mid-search.
                let (extra, what) = self.continuation_positions();
                let max = self.model.manifest.lang.max_positions;
                if p.ids.len() + extra > max {
                    bail!(
                        "prompt is {} tokens long and {what} needs {extra} more position(s): more than the model's \
                         maximum of {max} (lang.max_positions); use fewer shots or a shorter template",
                        p.ids.len()
                    );
                }
                Ok(p)
            });
            // Prompt ensembling: the same media in the other demonstration orders (encoded once, cached).
            let made = made.and_then(|p| {
                let mut more = Vec::with_capacity(r.ensemble.len());
                for m in &r.ensemble {
                    let enc = self.model.encode_media(&m.media.iter().map(to_model_media).collect::<Vec<_>>())?;
                    more.push(self.model.make_prompt(&m.prompt, enc)?);
                }
                Ok((p, more))
            });
            match made {
                Ok((p, more)) => {
                    prompts.push(Some(p));
                    members.push(more);
                }
                Err(e) => {
                    if self.fail_fast {
                        return Err(FailFast(format!("sample {} (shot {}, trial {}): {e:#}", r.sample_id, r.shot, r.trial)).into());
                    }
                    records[i].error = Some(format!("{e:#}"));
                    prompts.push(None);
                    members.push(vec![]);
                }
            }
        }
        debug_assert_eq!((prompts.len(), members.len()), (batch.len(), batch.len()));
        match self.bench.spec.task {
            TaskKind::Generate => self.generate(batch, &prompts, &mut records)?,
            TaskKind::Rank => self.rank(batch, &prompts, &members, &mut records)?,
        }
        Ok(records)
    }

    /// Positions a prompt's continuation takes in the decoder beyond the prompt itself: the generated tokens
    /// (the last one is never fed back) or the longest ranking candidate (its last token likewise).
    fn continuation_positions(&self) -> (usize, &'static str) {
        match (&self.bench.spec.task, &self.bench.spec.generation) {
            (TaskKind::Generate, Some(g)) => (g.max_new_tokens.saturating_sub(1), "generation (max_new_tokens)"),
            _ => (self.candidates.iter().map(|(_, t)| t.len()).max().unwrap_or(0).saturating_sub(1), "the longest candidate"),
        }
    }

    fn generate(&mut self, batch: &[PromptRequest], prompts: &[Option<crate::model::Prompt>], records: &mut [SampleRecord]) -> Result<()> {
        let g = self.bench.spec.generation.as_ref().ok_or_else(|| anyhow!("benchmark has no generation settings"))?;
        let params = SearchParams {
            num_beams: g.num_beams,
            max_new_tokens: g.max_new_tokens,
            min_new_tokens: g.min_new_tokens,
            length_penalty: g.length_penalty,
            stop_tokens: self.model.tokenizer.stop_ids.clone(),
        };
        let idx: Vec<usize> = (0..batch.len()).filter(|&i| prompts[i].is_some()).collect();
        let refs: Vec<&crate::model::Prompt> = idx.iter().map(|&i| prompts[i].as_ref().unwrap()).collect();
        if refs.is_empty() {
            return Ok(());
        }
        let outs = self.model.generate(&refs, &params)?;
        for (&i, out) in idx.iter().zip(outs) {
            let pred = crate::benchmark::postprocess::apply(self.bench.spec.postprocess, &out.text)?;
            let rec = &mut records[i];
            rec.metric = per_sample_value(&self.metric, &batch[i].target, &pred, None)?;
            rec.raw_output = Some(out.text);
            rec.tokens = Some(out.tokens);
            rec.sequence_score = Some(out.score);
            rec.prediction = Some(pred);
        }
        Ok(())
    }

    fn rank(
        &mut self,
        batch: &[PromptRequest],
        prompts: &[Option<crate::model::Prompt>],
        members: &[Vec<crate::model::Prompt>],
        records: &mut [SampleRecord],
    ) -> Result<()> {
        let norm = self.bench.spec.ranking.as_ref().map(|r| r.normalization).unwrap_or(RankNormalization::Mean);
        let toks: Vec<Vec<u32>> = self.candidates.iter().map(|c| c.1.clone()).collect();
        let normalised = |s: &crate::model::CandidateScore, name: &str| match norm {
            RankNormalization::Sum => s.sum(),
            RankNormalization::Mean => s.mean(),
            RankNormalization::PerChar => s.sum() / name.chars().count().max(1) as f64,
        };
        for (i, p) in prompts.iter().enumerate() {
            let Some(p) = p else { continue };
            let scores = self.model.score_candidates(p, &toks)?;
            // Prompt ensembling: every order's normalised scores, averaged per candidate (OpenFlamingo
            // averages the per-order log-probabilities the same way).
            let mut per_order: Vec<Vec<f64>> =
                vec![scores.iter().zip(&self.candidates).map(|(s, (name, _))| normalised(s, name)).collect()];
            for m in &members[i] {
                let more = self.model.score_candidates(m, &toks)?;
                per_order.push(more.iter().zip(&self.candidates).map(|(s, (name, _))| normalised(s, name)).collect());
            }
            let ensembled = per_order.len() > 1;
            let cands: Vec<CandidateRecord> = scores
                .iter()
                .zip(&self.candidates)
                .enumerate()
                .map(|(c, (s, (name, _)))| {
                    let per: Vec<f64> = per_order.iter().map(|o| o[c]).collect();
                    CandidateRecord {
                        candidate: name.clone(),
                        token_logprobs: s.token_logprobs.clone(),
                        score: if ensembled { per.iter().sum::<f64>() / per.len() as f64 } else { per[0] },
                        permutation_scores: ensembled.then_some(per),
                    }
                })
                .collect();
            let values: Vec<f64> = cands.iter().map(|c| c.score).collect();
            // Prediction: highest score; ties go to the higher class index (as top-k accuracy ranks them).
            let best = values.iter().enumerate().fold(0, |b, (j, &v)| if v >= values[b] { j } else { b });
            let rec = &mut records[i];
            rec.metric = per_sample_value(&self.metric, &batch[i].target, &cands[best].candidate, Some(&values))?;
            rec.prediction = Some(cands[best].candidate.clone());
            rec.candidate_scores = Some(cands);
        }
        Ok(())
    }
}

/// Runs a benchmark on a model, writing `samples.jsonl`, `summary.json`, `summary.csv` and `run.json` under
/// `config.out`. Resumes when the folder holds a compatible earlier run, reusing only the records whose
/// inputs are unchanged (see [`super::reuse`]); one run at a time per folder (see [`super::lock`]).
pub fn run(config: &RunConfig) -> Result<Summary> {
    let t0 = Instant::now();
    if config.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if let Some(r) = config.max_error_rate {
        if !(0.0..=1.0).contains(&r) {
            bail!("--max-error-rate {r}: expected a fraction between 0 and 1 (e.g. 0.01 for 1%)");
        }
    }
    // Progress: this run's samples are counted in the sweep's overall total (resumed ones taken out below);
    // messages go through it so that they do not tear its bars.
    let slot = match &config.progress {
        Some(s) => s.clone(),
        None => {
            let mode = if config.quiet { ProgressMode::Off } else { ProgressMode::Auto };
            ProgressSlot { sweep: SweepProgress::single(mode, Duration::from_secs(30)), index: 0 }
        }
    };
    let say = |m: String| slot.sweep.println(&m);
    let mut bench = Benchmark::load(&config.benchmark)?;
    if let Some(t) = &config.template {
        bench.set_template(t)?;
    }
    let applied = crate::benchmark::overrides::apply(&mut bench.spec, &config.overrides)
        .map_err(|e| anyhow!("{}: {e:#}", config.benchmark.display()))?;
    let limit = resolve_limit(&bench, config)?;
    if let (Some(l), Some(k)) = (config.sample_limit.as_ref().filter(|l| l.is_fraction() && !config.quiet), limit) {
        say(format!("--limit {l}: {k} of the {} sample(s) of each (shot, trial) (rounded up), the first in evaluation order", bench.eval_indices(0)?.len()));
    }
    let shots = config.shots.clone().unwrap_or_else(|| bench.spec.shots.clone());
    if let Some(d) = crate::benchmark::spec::first_repeat(&shots) {
        bail!("--shots: {d} is listed twice; list each shot count once");
    }
    let n_seeds = bench.spec.trials.seeds.len();
    let n_trials = config.trials.unwrap_or(n_seeds);
    if n_trials == 0 || n_trials > n_seeds {
        bail!(
            "{}: --trials {n_trials} but the benchmark lists {n_seeds} trial seed(s) (trials.seeds); add seeds to run more trials",
            config.benchmark.display()
        );
    }
    if bench.spec.metric.name == crate::benchmark::MetricName::RocAuc && bench.candidates.len() != 2 {
        bail!(
            "{}: roc_auc needs exactly two candidates (negative, positive), the benchmark has {}",
            config.benchmark.display(),
            bench.candidates.len()
        );
    }
    // Post-processing data (OK-VQA: nltk's tagger and Punkt models) is found before any work, or the run stops here.
    crate::benchmark::postprocess::prepare(bench.spec.postprocess).with_context(|| format!("{}: postprocess", config.benchmark.display()))?;
    if let Some(w) = bench.few_answers_warning() {
        say(w);
    }
    if let Some(sh) = config.shard {
        if sh.count == 0 || sh.index >= sh.count {
            bail!("--shard {}/{}: the index must be below the count (shards are numbered from 0)", sh.index, sh.count);
        }
    }
    let metric = MetricChoice {
        name: bench.spec.metric.name,
        mode: bench.spec.metric.mode,
        top_k: bench.spec.metric.top_k.as_ref().and_then(|k| k.first().copied()).unwrap_or(1),
    };
    // Pins are validated (ids, shot counts, coverage) before the model is loaded.
    let pins = load_pins(&bench, config, &shots, n_trials, limit)?;
    let selects = pins.as_ref().map_or(true, |(_, prov)| prov.fallback > 0);
    preflight::check_sweep(&bench, &shots, n_trials, limit, config.shard, selects)?;
    let manifest = crate::model::Manifest::load(&config.model_dir)?;
    preflight::check_media_limits(&bench, &manifest, &config.model_dir)?;
    let bad = crate::model::checks::manifest_mismatches(&manifest);
    if !bad.is_empty() {
        bail!("{}: {}", config.model_dir.join("model.yaml").display(), join_mismatches(&bad));
    }
    let template_path = bench.template.path.clone();
    let identity = RunIdentity {
        benchmark_name: bench.spec.name.clone(),
        benchmark_sha256: sha256_file(&config.benchmark)?,
        template_sha256: sha256_file(&template_path)?,
        model_name: manifest.name.clone(),
        model_manifest_sha256: sha256_file(&config.model_dir.join("model.yaml"))?,
        shots: shots.clone(),
        trial_seeds: bench.spec.trials.seeds[..n_trials].to_vec(),
        limit,
        shard: config.shard,
        demo_pins_sha256: pins.as_ref().map(|(p, _)| p.sha256.clone()),
        generation_overrides: applied.generation.clone(),
        batching: (config.runtime.batching != crate::model::Batching::EqualLength)
            .then(|| config.runtime.batching.to_string()),
    };
    // The cheap checks of the results folder come before loading the model (hashing gigabytes): another run
    // writing it, or results of a different run.
    ResultsLock::probe(&config.out)?;
    let id_path = config.out.join("run.json");
    identity::check_identity(&id_path, &config.out, &identity)?;
    if let Some(note) = crate::model::runtime::check_device(&config.runtime)? {
        say(format!("WARNING: {note}"));
    }
    // Configuration and model errors stop here, before any work.
    let t_load = Instant::now();
    let mut model = FlamingoModel::load(&config.model_dir, &config.runtime)?;
    let bad = crate::model::checks::mismatches(&mut model, true);
    if !bad.is_empty() {
        bail!("{}: the model does not match its manifest: {}", config.model_dir.display(), join_mismatches(&bad));
    }
    let model_load = t_load.elapsed();
    crate::cli::common::report_providers(&model.providers());
    model.candidate_chunk = config.batch_size.max(1) * 8;
    std::fs::create_dir_all(&config.out).with_context(|| format!("could not create {}", config.out.display()))?;
    let lock = ResultsLock::acquire(&config.out)?;
    if let Some(prev) = &lock.took_over {
        say(format!("note: {}: took over the lock left by {prev}, which is no longer running", config.out.display()));
    }
    // Under the lock, the folder's identity again (a run may have started it meanwhile).
    if !identity::check_identity(&id_path, &config.out, &identity)? {
        crate::report::write_atomic(&id_path, (serde_json::to_string_pretty(&identity)? + "\n").as_bytes())?;
    }
    let samples_path = config.out.join("samples.jsonl");
    let mut previous: HashMap<Key, SampleRecord> = read_records(&samples_path, true)?.into_iter().map(|r| (r.key(), r)).collect();
    let had_previous = !previous.is_empty();

    let tp = Instant::now();
    if selects {
        prepare_rices_with(&mut bench, Some(&mut model), &config.runtime, config.rices_cache)?;
    }
    let candidates: Vec<(String, Vec<u32>)> = bench
        .candidates
        .iter()
        .map(|c| Ok((c.clone(), model.tokenizer.encode_continuation(c)?)))
        .collect::<Result<_>>()?;
    if bench.spec.task == TaskKind::Rank && candidates.iter().any(|c| c.1.is_empty()) {
        bail!("{}: a ranking candidate tokenises to nothing", config.benchmark.display());
    }
    let mut prompt_time = tp.elapsed();

    let mut writer = Some(RecordWriter::append(&samples_path)?);
    let mut runner = Runner { model: &mut model, bench: &bench, metric, candidates, fail_fast: config.fail_fast };
    let digests = DigestCache::default();
    let mut order = Order::default();
    let mut reuse = ReuseReport::default();
    let mut evaluated = 0usize;
    let mut skipped = bench.skipped_summaries();
    let mut pin_counts = (0usize, 0usize);
    let mut planned_total = 0u64;
    for trial in 0..n_trials {
        planned_total += (preflight::eval_indices(&bench, trial, limit, config.shard)?.len() * shots.len()) as u64;
    }
    slot.sweep.begin_benchmark(slot.index, planned_total);
    for &shot in &shots {
        for trial in 0..n_trials {
            let tp = Instant::now();
            let idx = preflight::eval_indices(&bench, trial, limit, config.shard)?;
            let set = match &pins {
                None => bench.requests_for(shot, trial, &idx)?,
                Some((p, prov)) => pinned_requests(&bench, p, prov, shot, trial, &idx, &mut pin_counts)?,
            };
            let media_digests = digests.for_requests(&set.requests);
            prompt_time += tp.elapsed();
            for s in &set.skipped {
                skipped.push(format!("shot {shot} trial {trial}: sample {} skipped: {}", s.id, s.reason));
            }
            let work: Vec<(PromptRequest, SampleRecord)> = set
                .requests
                .into_iter()
                .zip(media_digests)
                .map(|(r, d)| {
                    let base = SampleRecord { media_sha256: d, ..base_record(&r) };
                    (r, base)
                })
                .collect();
            let (todo, stale) = reuse::plan(work, &previous, config.retry_errors, &mut order, &mut reuse);
            slot.sweep.not_evaluated(slot.index, idx.len().saturating_sub(todo.len()) as u64);
            if !stale.is_empty() {
                // Out of the file before recomputing: it never holds two records of one sample.
                drop(writer.take());
                reuse::rewrite(&samples_path, &|k| !stale.contains(k), None)?;
                previous.retain(|k, _| !stale.contains(k));
                writer = Some(RecordWriter::append(&samples_path)?);
            }
            if todo.is_empty() {
                continue;
            }
            let n_todo = todo.len();
            slot.sweep.begin_stage(&format!("{} shot {shot} trial {trial}", bench.spec.name), n_todo as u64);
            let mut todo = todo.into_iter().peekable();
            while todo.peek().is_some() {
                let (batch, bases): (Vec<PromptRequest>, Vec<SampleRecord>) = todo.by_ref().take(config.batch_size).unzip();
                let recs = runner.process(&batch, bases)?;
                writer.as_mut().expect("writer is open").write_batch(&recs)?;
                evaluated += recs.len();
                slot.sweep.advance(recs.len() as u64);
            }
            slot.sweep.end_stage(n_todo);
        }
    }
    if config.progress.is_none() {
        slot.sweep.finish();
    }
    drop(writer);
    // Records of samples the sweep no longer evaluates go; the rest is put in request order.
    reuse.dropped = previous.keys().filter(|k| !order.pos.contains_key(*k)).count();
    let reordered = reuse::rewrite(&samples_path, &|k| order.pos.contains_key(k), Some(&order.pos))?;
    if had_previous && !config.quiet || reuse.recomputed_total() > 0 || reuse.dropped > 0 {
        say(format!("{}{}", reuse.line(), if reordered { "; samples.jsonl rewritten in request order" } else { "" }));
    }

    let records = read_records(&samples_path, false)?;
    let first_errors: Vec<String> = records
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("sample {} (shot {}, trial {}): {e}", r.sample_id, r.shot, r.trial)))
        .take(5)
        .collect();
    let results = summarize(&metric, &records, &bench.spec.trials.seeds, &config.bootstrap)?;
    let stats = model.stats.clone();
    let total = t0.elapsed();
    let ort = stats.ort_time();
    let secs = |d: Duration| (d.as_secs_f64() * 1e3).round() / 1e3;
    let provenance = Provenance {
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: git_commit(),
        model_dir: config.model_dir.display().to_string(),
        model_source: Some(ModelSource {
            checkpoint_sha256: model.manifest.source.checkpoint_sha256.clone(),
            preset: model.manifest.source.preset.clone(),
            dtype: model.manifest.dtype.map(|d| d.as_str().to_string()),
        }),
        benchmark_file: config.benchmark.display().to_string(),
        identity: identity.clone(),
        onnxruntime_library: crate::model::runtime::loaded_library().map(|p| p.display().to_string()),
        providers: model.providers().iter().map(|p| format!("{}: {}", p.component, p.provider)).collect(),
        intra_op_threads: config.runtime.intra_threads,
        batch_size: config.batch_size,
        bootstrap: serde_json::json!({"resamples": config.bootstrap.resamples, "seed": config.bootstrap.seed, "confidence": config.bootstrap.confidence}),
        metric: metric.describe(),
        samples_evaluated_this_invocation: evaluated,
        samples_resumed: reuse.reused,
        samples_recomputed: reuse.recomputed_total(),
        media_files_hashed: digests.hashed.load(std::sync::atomic::Ordering::Relaxed),
        vision_encoder_calls: stats.vision_calls,
        images_encoded: stats.images_encoded,
        media_cache_hits: stats.media_cache_hits,
        times: StageTimes {
            total_s: secs(total),
            prompt_building_s: secs(prompt_time),
            preprocess_s: secs(stats.preprocess_time),
            session_create_s: secs(stats.session_time),
            model_load_s: secs(model_load),
            vision_encoder_s: secs(stats.vision_time),
            perceiver_s: secs(stats.perceiver_time),
            lang_decoder_s: secs(stats.decoder_time),
            ort_share: if total.as_secs_f64() > 0.0 { (ort.as_secs_f64() / total.as_secs_f64() * 1e3).round() / 1e3 } else { 0.0 },
        },
        demo_pins: pins.map(|(_, prov)| PinsProvenance { pinned: pin_counts.0, fallback: pin_counts.1, ..prov }),
        rices_embeddings_computed: bench.rices_index().map(|r| r.embeddings_computed()),
        overrides: overrides_provenance(&applied, config, limit),
    };
    let summary = Summary {
        benchmark: bench.spec.name.clone(),
        model: model.manifest.name.clone(),
        metric: metric.describe(),
        metric_key: metric.key().to_string(),
        results,
        skipped_records: skipped,
        provenance,
        first_errors,
    };
    write_summary(&config.out, &summary)?;
    drop(lock);
    Ok(summary)
}

/// The number of samples `run(config)` would evaluate from scratch (every shot count and trial, after
/// the overrides, limit and shard): the sweep's overall progress total, known before the run starts.
pub fn planned_samples(config: &RunConfig) -> Result<u64> {
    let mut bench = Benchmark::load(&config.benchmark)?;
    crate::benchmark::overrides::apply(&mut bench.spec, &config.overrides)?;
    let limit = resolve_limit(&bench, config)?;
    let n_shots = config.shots.as_ref().map_or(bench.spec.shots.len(), |s| s.len());
    let n_trials = config.trials.unwrap_or(bench.spec.trials.seeds.len()).min(bench.spec.trials.seeds.len());
    let mut n = 0u64;
    for trial in 0..n_trials {
        n += (preflight::eval_indices(&bench, trial, limit, config.shard)?.len() * n_shots) as u64;
    }
    Ok(n)
}

/// The per-(shot, trial) sample limit: `--limit N`, or a fraction of the samples each trial evaluates
/// (every trial evaluates the same number: `samples.count`, or the whole query split).
fn resolve_limit(bench: &Benchmark, config: &RunConfig) -> Result<Option<usize>> {
    match (&config.sample_limit, config.limit) {
        (Some(_), Some(_)) => bail!("give the sample limit once (RunConfig.limit or RunConfig.sample_limit)"),
        (None, l) => Ok(l),
        (Some(crate::benchmark::overrides::Limit::Count(c)), None) => Ok(Some(*c)),
        (Some(l), None) => {
            let n = bench.eval_indices(0)?.len();
            Ok(Some(l.resolve(n)))
        }
    }
}

/// What the command line changed, for summary.json (None when nothing).
fn overrides_provenance(applied: &crate::benchmark::overrides::AppliedOverrides, config: &RunConfig, limit: Option<usize>) -> Option<serde_json::Value> {
    let mut m = serde_json::Map::new();
    if let Some(s) = &applied.seeds {
        m.insert("seeds".into(), serde_json::json!(s));
    }
    if !applied.generation.is_empty() {
        m.insert("generation".into(), serde_json::json!(applied.generation));
    }
    if let Some(l) = config.sample_limit.as_ref().filter(|l| l.is_fraction()) {
        m.insert("limit".into(), serde_json::json!({"given": l.to_string(), "samples": limit}));
    }
    (!m.is_empty()).then_some(serde_json::Value::Object(m))
}

fn join_mismatches(bad: &[crate::model::checks::Mismatch]) -> String {
    bad.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("; ")
}

/// Loads and validates `--demos` against the sweep; the provenance returned holds the file, its hash and
/// (in `fallback`) how many evaluated requests the file does not cover.
fn load_pins(bench: &Benchmark, config: &RunConfig, shots: &[usize], n_trials: usize, limit: Option<usize>) -> Result<Option<(DemoPins, PinsProvenance)>> {
    let Some(pc) = &config.demos else { return Ok(None) };
    let pins = DemoPins::load(&pc.path, bench)?;
    let trials: Vec<usize> = (0..n_trials).collect();
    let cov = pins.coverage(bench, shots, &trials, limit)?;
    pins.check_coverage(&cov, pc.fallback)?;
    if let Some(note) = pins.fallback_note(bench, &cov) {
        eprintln!("note: {note}");
    }
    let prov = PinsProvenance {
        file: pc.path.display().to_string(),
        sha256: pins.sha256.clone(),
        fallback_allowed: pc.fallback,
        pinned: cov.pinned,
        fallback: cov.missing.len(),
    };
    Ok(Some((pins, prov)))
}

/// Requests for (shot, trial) with pinned demonstrations; adds (pinned, fallback) counts to `counts`.
fn pinned_requests(
    bench: &Benchmark,
    pins: &DemoPins,
    prov: &PinsProvenance,
    shot: usize,
    trial: usize,
    idx: &[usize],
    counts: &mut (usize, usize),
) -> Result<crate::benchmark::RequestSet> {
    let r = bench.requests_pinned(shot, trial, idx, pins, prov.fallback_allowed)?;
    counts.0 += r.pinned;
    counts.1 += r.fallback;
    Ok(r.set)
}

/// Writes `summary.json` and `summary.csv` (atomically: temp file + rename).
pub fn write_summary(out: &Path, summary: &Summary) -> Result<()> {
    let write = |name: &str, text: String| crate::report::write_atomic(&out.join(name), text.as_bytes());
    write("summary.json", serde_json::to_string_pretty(summary)? + "\n")?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["benchmark", "model", "metric", "shot", "trials", "mean", "std", "ci_low", "ci_high", "n", "errors"])?;
    for r in &summary.results {
        w.write_record([
            summary.benchmark.clone(),
            summary.model.clone(),
            summary.metric_key.clone(),
            r.shot.to_string(),
            r.trials.len().to_string(),
            format!("{:.4}", r.mean),
            format!("{:.4}", r.std),
            r.ci.map(|c| format!("{:.4}", c.low)).unwrap_or_default(),
            r.ci.map(|c| format!("{:.4}", c.high)).unwrap_or_default(),
            r.n.to_string(),
            r.errors.to_string(),
        ])?;
    }
    write("summary.csv", String::from_utf8(w.into_inner()?)?)?;
    Ok(())
}

/// A short human-readable table of the results.
pub fn format_table(summary: &Summary) -> String {
    let mut s = format!("{} on {} — {}\n", summary.benchmark, summary.model, summary.metric);
    s.push_str("shots  mean     std    95% CI              n   errors\n");
    for r in &summary.results {
        let ci = r.ci.map(|c| format!("[{:.2}, {:.2}]", c.low, c.high)).unwrap_or_else(|| "-".into());
        let num = |x: f64| crate::report::fmt_num(Some(x), 2);
        let mean = if r.n > 0 && r.mean.is_nan() { "undefined".to_string() } else { num(r.mean) };
        s.push_str(&format!("{:<6} {:<8} {:<6} {:<19} {:<3} {}\n", r.shot, mean, num(r.std), ci, r.n, r.errors));
    }
    if summary.metric_key == "roc_auc" && summary.results.iter().any(|r| r.n > 0 && r.mean.is_nan()) {
        s.push_str("(ROC-AUC undefined: the scored samples of a trial have only one class; scikit-learn's roc_auc_score (1.9.1) returns NaN with an UndefinedMetricWarning there)\n");
    }
    if summary.results.iter().any(|r| r.n == 0 && r.errors == 0) {
        s.push_str("(no sample had a reference to score against: an unannotated split; `flamingo-eval export` writes the predictions for an evaluation server)\n");
    }
    if summary.metric_key == "cider" {
        s.push_str("(METEOR and SPICE are not computed)\n");
    }
    s
}
