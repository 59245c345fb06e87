//! Benchmarks: declarative benchmark files, prompt templates, dataset loaders, demonstration selection
//! and prompt building. This layer turns a `benchmarks/*.yaml` file into plain [`PromptRequest`] records;
//! it never runs a model (RICES embeddings come through the [`ImageEmbedder`] trait).
//!
//! Submodules:
//! - [`spec`]: the benchmark YAML schema, strict parsing (`file:line:col: key: message`), `${VAR}` paths.
//! - [`template`]: prompt templates (`prompts/*.yaml`).
//! - [`datasets`]: loaders for the layouts of PROTOCOL §7 ([`Sample`], [`Target`]).
//! - [`video`]: video frames through `ffmpeg`, cached on disk.
//! - [`demos`]: seeded random demonstration selection.
//! - [`rices`]: retrieval-based demonstration selection and its embedding cache.
//! - [`pinned`]: demonstrations pinned by a file (`--demos`), validated against the benchmark.
//! - [`prompt`]: prompt text assembly (OpenFlamingo's construction, byte for byte).
//! - [`postprocess`]: post-processing of generated text.
//! - [`overrides`]: command-line overrides (`run --seeds`, `--gen`, `--limit FRACTION`).
//! - [`schema`]: every key of the benchmark file, read off the parser (docs/benchmarks.md is checked against it).
//!
//! For the engine:
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use flamingo_eval::benchmark::Benchmark;
//! let bench = Benchmark::load(std::path::Path::new("benchmarks/demo_vqa.yaml"))?;
//! for &shot in &bench.spec.shots {
//!     for trial in 0..bench.spec.trials.seeds.len() {
//!         let set = bench.requests(shot, trial, None)?; // every evaluated sample, in sample order
//!         for r in &set.requests { /* r.prompt, r.media, r.target ... */ }
//!     }
//! }
//! # Ok(()) }
//! ```
//! The request list for (shot, trial) is a pure function of the benchmark files, the trial seed and the
//! evaluated sample ids: [`Benchmark::requests_for`] on any subset (a shard, a batch) gives exactly the
//! corresponding elements of the full list.

pub mod datasets;
pub mod demos;
pub mod okvqa;
pub mod overrides;
pub mod paths;
pub mod pinned;
pub mod postprocess;
pub mod prompt;
pub mod rices;
pub mod schema;
pub mod spec;
pub mod template;
pub mod video;

pub use datasets::{Dataset, MediaRef, Sample, SkippedRecord, Target};
pub use rices::{ImageEmbedder, RicesIndex};
pub use spec::{BenchmarkSpec, DemoMethod, GenerationSpec, MetricMode, MetricName, PostprocessKind, RankNormalization, RankingSpec, TaskKind};
pub use template::PromptTemplate;

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// One media item of a request, in the order of the `<image>` markers of its prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    Image(PathBuf),
    /// Frames of one video (one media item, one marker).
    Video(Vec<PathBuf>),
}

/// One model call's worth of input, plus what the metric needs afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct PromptRequest {
    /// Query sample id (string form of question_id / image id / ...).
    pub sample_id: String,
    pub shot: usize,
    pub trial: usize,
    pub trial_seed: u64,
    /// The exact prompt text.
    pub prompt: String,
    /// Media in marker order: demonstrations' (unless text-only), then the query's.
    pub media: Vec<Media>,
    /// Demonstration ids in prompt order, when they carry media (shots > 0).
    pub demo_ids: Vec<String>,
    /// Demonstration ids used as text-only demonstrations (zero-shot policy).
    pub text_only_demo_ids: Vec<String>,
    /// References / label for the metric.
    pub target: Target,
    /// The dataset files behind `media`, item for item: the image, or the video the frames come from (what
    /// a results folder's content digests are computed over).
    #[serde(skip)]
    pub media_sources: Vec<PathBuf>,
    /// Why this sample cannot be evaluated although its prompt was built (a missing, unreadable or
    /// out-of-root media file): recorded on the sample's record, never a stop of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Prompt ensembling (`ranking.ensemble_permutations > 1`): the other demonstration orders, whose
    /// candidate scores are averaged with this request's (which is the first order). Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<EnsembleMember>,
}

/// One more demonstration order of a ranking request under prompt ensembling.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleMember {
    pub prompt: String,
    pub media: Vec<Media>,
    pub demo_ids: Vec<String>,
    pub text_only_demo_ids: Vec<String>,
    /// As [`PromptRequest::media_sources`].
    #[serde(skip)]
    pub media_sources: Vec<PathBuf>,
    /// As [`PromptRequest::error`] (the same media as the first order, so the same error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Requests for one (shot, trial), and samples that could not be turned into requests.
#[derive(Debug, Clone, Default)]
pub struct RequestSet {
    pub requests: Vec<PromptRequest>,
    /// Samples left out under `on_bad_record: skip` (e.g. unreadable video, missing image).
    pub skipped: Vec<SkippedRecord>,
}

/// A loaded benchmark: spec, template, both splits.
pub struct Benchmark {
    pub spec: BenchmarkSpec,
    /// The benchmark file.
    pub path: PathBuf,
    pub template: PromptTemplate,
    pub query: Dataset,
    pub demos: Dataset,
    /// Ranking candidates in class-index order (rank tasks), else empty.
    pub candidates: Vec<String>,
    /// For each query sample, the demonstration-split index of the record with the same id, if any.
    pub overlap: Vec<Option<usize>>,
    pub cache_dir: PathBuf,
    rices: Option<RicesIndex>,
    /// Frames of each video, extracted once even when parallel requests share a video.
    frames: Mutex<HashMap<PathBuf, Arc<OnceLock<std::result::Result<Vec<PathBuf>, String>>>>>,
    /// Canonical forms of the media roots, for the symlink check of [`paths`].
    roots: paths::RootCache,
}

impl Benchmark {
    /// Use another prompt template (`--template FILE`) with this benchmark: its fields are checked against
    /// the dataset layout, and `spec.template` names it (absolute), so a run's identity hashes this file.
    pub fn set_template(&mut self, path: &Path) -> Result<()> {
        let value = path.to_string_lossy();
        let found = template::resolve_template(&value, Path::new(".")).map_err(|e| anyhow!("--template {value}: {e:#}"))?;
        let abs = std::fs::canonicalize(&found).with_context(|| format!("--template {}: no such file", path.display()))?;
        let template = PromptTemplate::from_file(&abs)?;
        template.check_fields(datasets::layout_fields(self.spec.dataset.layout))?;
        self.template = template;
        self.spec.template = abs.to_string_lossy().into_owned();
        Ok(())
    }

    /// Parse and validate the benchmark file, its template, and load both splits.
    pub fn load(path: &Path) -> Result<Benchmark> {
        let spec = BenchmarkSpec::from_file(path)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let tpath = template::resolve_template(&spec.template, &base).map_err(|e| anyhow!("{}: {e:#}", path.display()))?;
        let template = PromptTemplate::from_file(&tpath).with_context(|| format!("{}: template", path.display()))?;
        template.check_fields(datasets::layout_fields(spec.dataset.layout))?;
        let d = &spec.dataset;
        let ctx = |s: &str| format!("{}: {s}", path.display());
        let allow = spec.allow_paths_outside_root;
        let query = datasets::load_split_with(d.layout, &d.query, &base, "dataset.query", false, d.on_bad_record, allow)
            .with_context(|| ctx("loading the query split"))?;
        let demos = datasets::load_split_with(d.layout, &d.demos, &base, "dataset.demos", true, d.on_bad_record, allow)
            .with_context(|| ctx("loading the demonstration split"))?;
        let candidates = match (&spec.ranking, spec.task) {
            (Some(r), TaskKind::Rank) => match &r.candidates {
                Some(c) => c.clone(),
                None => query.class_names.clone(),
            },
            _ => vec![],
        };
        if spec.task == TaskKind::Rank {
            for s in query.samples.iter().chain(demos.samples.iter()) {
                if let Target::Class { label, name } = &s.target {
                    if candidates.get(*label) != Some(name) {
                        bail!("{}: sample {} has class {label} `{name}`, which is not candidate {label} of ranking.candidates {:?}", path.display(), s.id, candidates);
                    }
                }
            }
        }
        if let Some(n) = spec.metric.answers_per_question {
            let src = d.query.annotations.clone().unwrap_or_else(|| "dataset.query.annotations".into());
            for s in &query.samples {
                if let Target::Vqa { answers, .. } = &s.target {
                    if !answers.is_empty() && answers.len() != n {
                        bail!(
                            "{}: question {} in {src} has {} answers, but metric.answers_per_question declares {n}; fix the annotations or the declaration",
                            path.display(),
                            s.id,
                            answers.len()
                        );
                    }
                }
            }
        }
        let overlap = query.samples.iter().map(|s| demos.position(&s.id)).collect();
        let cache_dir = spec.cache_dir(&base)?;
        Ok(Benchmark {
            spec,
            path: path.to_path_buf(),
            template,
            query,
            demos,
            candidates,
            overlap,
            cache_dir,
            rices: None,
            frames: Mutex::new(HashMap::new()),
            roots: paths::RootCache::default(),
        })
    }

    /// The loud warning when query questions have fewer than 10 annotator answers under `vqa_accuracy`
    /// (see [`crate::metrics::vqa::few_answers_warning`]), or None.
    pub fn few_answers_warning(&self) -> Option<String> {
        if self.spec.metric.name != MetricName::VqaAccuracy {
            return None;
        }
        let counts = self.query.samples.iter().map(|s| match &s.target {
            Target::Vqa { answers, .. } => answers.len(),
            _ => 0,
        });
        crate::metrics::vqa::few_answers_warning(counts, self.spec.metric.answers_per_question)
            .map(|w| format!("{}: query split: {w}", self.path.display()))
    }

    /// Messages summarising skipped records of both splits (empty when none).
    pub fn skipped_summaries(&self) -> Vec<String> {
        [self.query.skipped_summary("query split"), self.demos.skipped_summary("demonstration split")].into_iter().flatten().collect()
    }

    pub fn uses_rices(&self) -> bool {
        self.spec.demo_selection.method == DemoMethod::Rices
    }

    /// Compute (or load cached) RICES embeddings. Required before [`Self::requests`] for RICES benchmarks.
    pub fn prepare_rices(&mut self, embedder: &mut dyn ImageEmbedder) -> Result<()> {
        self.prepare_rices_with(embedder, rices::CachePolicy::Fill)
    }

    /// The RICES index once prepared (its cache files and how many embeddings were computed).
    pub fn rices_index(&self) -> Option<&RicesIndex> {
        self.rices.as_ref()
    }

    /// [`Self::prepare_rices`] under a cache policy (`Require`: only read the embedding cache).
    pub fn prepare_rices_with(&mut self, embedder: &mut dyn ImageEmbedder, policy: rices::CachePolicy) -> Result<()> {
        let demo: Vec<&Path> = self.demos.samples.iter().map(|s| s.media.path()).collect();
        let query: Vec<&Path> = self.query.samples.iter().map(|s| s.media.path()).collect();
        if self.demos.samples.iter().chain(self.query.samples.iter()).any(|s| matches!(s.media, MediaRef::Video(_))) {
            bail!("{}: RICES is only supported for image benchmarks", self.path.display());
        }
        let index = RicesIndex::build_with(embedder, &demo, &query, &self.cache_dir, self.spec.demo_selection.content_hash, policy)
            .with_context(|| format!("{}", self.path.display()))?;
        self.rices = Some(index);
        Ok(())
    }

    /// Query-split indices evaluated in `trial` (sorted ascending): a seeded random subset of
    /// `samples.count`, or all.
    pub fn eval_indices(&self, trial: usize) -> Result<Vec<usize>> {
        let seed = self.trial_seed(trial)?;
        let n = self.query.len();
        Ok(match self.spec.samples.count {
            Some(c) => demos::draw_subset("eval-subset", self.spec.samples.subset_seed.unwrap_or(seed), n, c),
            None => (0..n).collect(),
        })
    }

    pub fn trial_seed(&self, trial: usize) -> Result<u64> {
        self.spec.trials.seeds.get(trial).copied().ok_or_else(|| anyhow!("trial {trial} does not exist: the benchmark has {} trial seed(s)", self.spec.trials.seeds.len()))
    }

    /// Number of demonstrations used at `shot` (the zero-shot policy may add text-only ones).
    pub fn effective_shots(&self, shot: usize) -> usize {
        if shot == 0 && self.spec.zero_shot.policy == spec::ZeroShotPolicy::TextOnlyDemos {
            self.spec.zero_shot.demos
        } else {
            shot
        }
    }

    /// Requests for every evaluated sample of (shot, trial), at most `limit` of them.
    pub fn requests(&self, shot: usize, trial: usize, limit: Option<usize>) -> Result<RequestSet> {
        let mut idx = self.eval_indices(trial)?;
        if let Some(l) = limit {
            idx.truncate(l);
        }
        self.requests_for(shot, trial, &idx)
    }

    /// Requests for the given query-split indices (any subset, any order): each request depends only on
    /// its own sample, so shards and batches reproduce the full list exactly.
    pub fn requests_for(&self, shot: usize, trial: usize, query_indices: &[usize]) -> Result<RequestSet> {
        let demo_lists = self.select_demos(shot, trial, query_indices)?;
        self.build_requests(shot, trial, query_indices, &demo_lists)
    }

    /// The benchmark's own demonstration selection (random or RICES) for each query index: demonstration-
    /// split indices in prompt order (`effective_shots(shot)` of them; text-only ones at shot 0).
    pub(crate) fn select_demos(&self, shot: usize, trial: usize, query_indices: &[usize]) -> Result<Vec<Vec<usize>>> {
        let seed = self.trial_seed(trial)?;
        let k = self.effective_shots(shot);
        Ok(match self.spec.demo_selection.method {
            DemoMethod::Random => {
                let qs = demos::query_set(self.demos.len(), self.spec.query_set_size, seed);
                query_indices
                    .par_iter()
                    .map(|&q| demos::random_demos(&qs, k, seed, &self.query.samples[q].id, self.overlap[q]))
                    .collect::<Result<_>>()?
            }
            DemoMethod::Rices => {
                let index = self.rices.as_ref().ok_or_else(|| {
                    anyhow!(
                        "{}: this benchmark selects demonstrations with RICES, which needs image embeddings: \
                         load a model (--model DIR) or a CLIP encoder and call prepare_rices first",
                        self.path.display()
                    )
                })?;
                let excl: Vec<Option<usize>> = query_indices.iter().map(|&q| self.overlap[q]).collect();
                if k == 0 { vec![vec![]; query_indices.len()] } else { index.neighbours(query_indices, k, &excl)? }
            }
        })
    }

    /// Requests for `query_indices[i]` with the demonstrations `demo_lists[i]` (demonstration-split indices,
    /// prompt order). Every request, selected or pinned ([`pinned`]), is assembled here.
    pub(crate) fn build_requests(&self, shot: usize, trial: usize, query_indices: &[usize], demo_lists: &[Vec<usize>]) -> Result<RequestSet> {
        let seed = self.trial_seed(trial)?;
        let text_only = shot == 0;
        let skip = self.spec.dataset.on_bad_record == spec::BadRecordPolicy::Skip;
        let results: Vec<Result<PromptRequest>> =
            query_indices.par_iter().zip(demo_lists.par_iter()).map(|(&q, dl)| self.one_request(shot, trial, seed, q, dl, text_only)).collect();
        let mut set = RequestSet::default();
        for (r, &q) in results.into_iter().zip(query_indices) {
            match r {
                // A media problem: left out under `skip`, else recorded on the sample by the engine.
                Ok(r) if skip && r.error.is_some() => {
                    set.skipped.push(SkippedRecord { id: self.query.samples[q].id.clone(), file: self.path.clone(), reason: r.error.unwrap_or_default() })
                }
                Ok(r) => set.requests.push(r),
                Err(e) if skip => set.skipped.push(SkippedRecord { id: self.query.samples[q].id.clone(), file: self.path.clone(), reason: format!("{e:#}") }),
                Err(e) => return Err(e),
            }
        }
        Ok(set)
    }

    /// The request of one sample. A media file that cannot be used does not fail the request: it comes back
    /// with [`PromptRequest::error`] set (the caller applies `on_bad_record`).
    fn one_request(&self, shot: usize, trial: usize, seed: u64, q: usize, demo_idx: &[usize], text_only: bool) -> Result<PromptRequest> {
        let query = &self.query.samples[q];
        let orders = self.ensemble_orders(seed, &query.id, demo_idx);
        let mut members = Vec::with_capacity(orders.len());
        for order in &orders {
            members.push(self.assemble(query, order, text_only)?);
        }
        let first = members.remove(0);
        Ok(PromptRequest {
            sample_id: query.id.clone(),
            shot,
            trial,
            trial_seed: seed,
            prompt: first.prompt,
            media: first.media,
            demo_ids: first.demo_ids,
            text_only_demo_ids: first.text_only_demo_ids,
            target: query.target.clone(),
            media_sources: first.media_sources,
            error: first.error,
            ensemble: members,
        })
    }

    /// The demonstration orders a request is scored with: the selected order alone, or under prompt
    /// ensembling (rank tasks, `ranking.ensemble_permutations: P > 1`) OpenFlamingo's scheme: min(P, k!)
    /// orders for k demonstrations, each a shuffle of the previous one (orders may repeat, as in
    /// OpenFlamingo), from a stream seeded by (trial seed, sample id). The first order is the selected one
    /// (OpenFlamingo shuffles its random selection once more first, which changes nothing in distribution),
    /// so a run's `samples.jsonl` used as `--demos` pins reproduces its ensembles exactly.
    pub fn ensemble_orders(&self, seed: u64, sample_id: &str, demo_idx: &[usize]) -> Vec<Vec<usize>> {
        let p = match (&self.spec.ranking, self.spec.task) {
            (Some(r), TaskKind::Rank) => r.ensemble_permutations,
            _ => 1,
        };
        let k = demo_idx.len();
        let factorial = (1..=k).try_fold(1usize, |a, b| a.checked_mul(b)).unwrap_or(usize::MAX);
        let n = p.min(factorial);
        if n <= 1 {
            return vec![demo_idx.to_vec()];
        }
        use rand::seq::SliceRandom;
        let mut rng = demos::rng_for("ensemble-permutations", seed, sample_id);
        let mut orders = vec![demo_idx.to_vec()];
        let mut cur = demo_idx.to_vec();
        for _ in 1..n {
            cur.shuffle(&mut rng);
            orders.push(cur.clone());
        }
        orders
    }

    fn assemble(&self, query: &Sample, demo_idx: &[usize], text_only: bool) -> Result<EnsembleMember> {
        let demos: Vec<&Sample> = demo_idx.iter().map(|&d| &self.demos.samples[d]).collect();
        let built = prompt::build_prompt(&self.template, query, &demos, text_only)?;
        let owners: Vec<(&Sample, bool)> =
            demos.iter().filter(|_| !text_only).map(|d| (*d, false)).chain(std::iter::once((query, true))).collect();
        let mut error = None;
        let mut media = Vec::with_capacity(built.media.len());
        for (m, &(s, is_query)) in built.media.iter().zip(&owners) {
            match self.resolve_media(m, s, is_query) {
                Ok(x) => media.push(x),
                Err(e) => {
                    error.get_or_insert_with(|| format!("{e:#}"));
                    media.push(match m {
                        MediaRef::Image(p) => Media::Image(p.clone()),
                        MediaRef::Video(_) => Media::Video(vec![]),
                    });
                }
            }
        }
        let media_sources = built.media.iter().map(|m| m.path().to_path_buf()).collect();
        let ids: Vec<String> = demos.iter().map(|d| d.id.clone()).collect();
        let (demo_ids, text_only_demo_ids) = if text_only { (vec![], ids) } else { (ids, vec![]) };
        Ok(EnsembleMember { prompt: built.text, media, demo_ids, text_only_demo_ids, media_sources, error })
    }

    /// Checks one media file (it exists, is a regular file, stays inside its root) and, for a video, extracts
    /// its frames. Errors name the sample (query or demonstration) whose file it is.
    fn resolve_media(&self, m: &MediaRef, s: &Sample, is_query: bool) -> Result<Media> {
        let role = if is_query { "sample" } else { "demonstration" };
        let (kind, p) = match m {
            MediaRef::Image(p) => ("image", p),
            MediaRef::Video(p) => ("video", p),
        };
        paths::check_media_file(p, kind).map_err(|e| anyhow!("{role} {}: {e}", s.id))?;
        if !self.spec.allow_paths_outside_root {
            let (slot, root) = if is_query { (0, &self.query.media_root) } else { (1, &self.demos.media_root) };
            if let Some(root) = root {
                self.roots.check_inside(slot, p, root, kind).map_err(|e| anyhow!("{role} {}: {e}", s.id))?;
            }
        }
        match m {
            MediaRef::Image(p) => Ok(Media::Image(p.clone())),
            MediaRef::Video(p) => {
                let spec = self.spec.video.as_ref().ok_or_else(|| anyhow!("video: frame sampling settings missing"))?;
                let cell = self.frames.lock().unwrap_or_else(|e| e.into_inner()).entry(p.clone()).or_default().clone();
                let r = cell.get_or_init(|| video::frames_for(p, spec, &self.cache_dir).map_err(|e| format!("{e:#}")));
                r.clone().map(Media::Video).map_err(|e| anyhow!("{role} {}: {e}", s.id))
            }
        }
    }
}
