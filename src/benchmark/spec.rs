//! The benchmark file schema (`benchmarks/*.yaml`), loading and validation.
//!
//! A benchmark file is parsed strictly: unknown keys and wrong types are errors that name the file, the
//! line and the key path (`benchmarks/x.yaml:12:3: generation: unknown field `beams` ...`). After parsing,
//! cross-field rules are checked (a `rank` task needs `ranking`, a `vqa` layout needs `questions`, ...).
//!
//! Path values may use `${VAR}` or `${VAR:-default}` environment substitution; a relative path (after
//! substitution) is resolved against the directory of the benchmark file, so one file works on many
//! machines. This module does not read any data: see [`super::datasets`].
//!
//! Schema summary (see the field docs below, and docs/benchmarks.md for every key with type, default and example):
//! ```yaml
//! name: vqav2                       # required
//! description: "..."                # optional
//! task: generate | rank             # required
//! template: ../prompts/openflamingo_vqa.yaml   # or a bundled template's name: openflamingo_vqa
//! dataset:
//!   layout: vqa | karpathy | hateful_memes | imagenet | video_qa
//!   on_bad_record: error | skip     # default error
//!   query:  {questions, annotations, images, pattern}          # vqa
//!   demos:  {karpathy, splits, images, references}             # karpathy
//!           {annotations_file, images}                         # hateful_memes
//!           {root, class_names}                                # imagenet
//!           {annotations_file, images, pattern}                # video_qa
//! shots: [0, 4, 8, 16, 32]
//! trials: {seeds: [42, 43, 44]}
//! samples: {count: 5000, subset_seed: 7}   # optional; default all samples, subset seeded by trial seed
//! query_set_size: 2048                      # default 2048
//! demo_selection: {method: random | rices, encoder: model | clip_onnx, clip_onnx: DIR_or_FILE, content_hash: bytes | metadata}
//! zero_shot: {policy: text_only_demos | no_demos, demos: 2}
//! generation: {max_new_tokens: 5, num_beams: 3, length_penalty: 0.0, min_new_tokens: 0}   # task: generate
//! ranking: {candidates: ["no", "yes"], normalization: sum | mean | per_char, ensemble_permutations: 1}  # task: rank
//! postprocess: none | vqa_openflamingo | ok_vqa_openflamingo | caption_openflamingo | strip
//! metric: {name: vqa_accuracy | cider | roc_auc | top_k_accuracy | exact_match, mode: official | openflamingo, top_k: [1, 5],
//!          answers_per_question: 10}   # vqa_accuracy: the answer count every annotated question must have
//! video: {frames: 30, sampling: uniform | fps, fps: 3}   # video_qa layout
//! cache_dir: ${HOME}/.cache/flamingo-eval                # optional
//! allow_paths_outside_root: false   # default: media files must stay inside images:/root: (no `..`, no symlinks out)
//! ```

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One benchmark, as written in its YAML file (paths still unresolved; use [`BenchmarkSpec::resolve`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkSpec {
    /// Short name used in reports (`vqav2`, `coco`, ...).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Open-ended generation or close-ended ranking.
    pub task: TaskKind,
    /// Prompt template: a file (`../prompts/openflamingo_vqa.yaml`, relative to this benchmark file) or the
    /// name of a bundled template (`openflamingo_vqa`, looked up in the project's `prompts/`); see
    /// [`super::template::resolve_template`].
    pub template: String,
    pub dataset: DatasetSpec,
    /// Shot counts to evaluate, e.g. `[0, 4, 8, 16, 32]`.
    pub shots: Vec<usize>,
    pub trials: TrialsSpec,
    #[serde(default)]
    pub samples: SamplesSpec,
    /// Size of the random "query set" drawn from the demonstration split (OF default 2048). When it is
    /// at least the split size the whole split is used.
    #[serde(default = "default_query_set_size")]
    pub query_set_size: usize,
    #[serde(default)]
    pub demo_selection: DemoSelectionSpec,
    #[serde(default)]
    pub zero_shot: ZeroShotSpec,
    /// Required for `task: generate`.
    #[serde(default)]
    pub generation: Option<GenerationSpec>,
    /// Required for `task: rank`.
    #[serde(default)]
    pub ranking: Option<RankingSpec>,
    #[serde(default)]
    pub postprocess: PostprocessKind,
    pub metric: MetricSpec,
    /// Frame sampling, required for the `video_qa` layout.
    #[serde(default)]
    pub video: Option<VideoSpec>,
    /// Where decoded video frames and RICES embeddings are cached. Default: `$FLAMINGO_EVAL_CACHE`, else
    /// `$XDG_CACHE_HOME/flamingo-eval`, else `$HOME/.cache/flamingo-eval`.
    #[serde(default)]
    pub cache_dir: Option<String>,
    /// Accept dataset records whose media files lie outside the split's media root (absolute names, `..`,
    /// symlinks out of the folder). Default false: such records are refused, named by id (see
    /// [`super::paths`]).
    #[serde(default)]
    pub allow_paths_outside_root: bool,
}

fn default_query_set_size() -> usize {
    2048
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Open-ended: the model generates text after the prompt.
    Generate,
    /// Close-ended: every candidate continuation is scored by log-likelihood.
    Rank,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// VQAv2 / OK-VQA / TextVQA / VizWiz: questions json + annotations json, joined by `question_id`.
    Vqa,
    /// COCO / Flickr30k Karpathy split json (+ optional COCO-caption-layout references).
    Karpathy,
    /// HatefulMemes jsonl: `{"id", "img", "label", "text"}` per line.
    HatefulMemes,
    /// ImageNet folder layout `root/<wnid>/*.JPEG` + class names in index order.
    Imagenet,
    /// MSRVTT-QA / MSVD-QA json list of `{"question", "answer", "video_id"|"video", "id"}` + mp4 files.
    VideoQa,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub layout: Layout,
    /// The split that is evaluated.
    pub query: SplitSpec,
    /// The split demonstrations are drawn from.
    pub demos: SplitSpec,
    /// `error` (default): the first bad records abort loading, each named with its id and file.
    /// `skip`: bad records are left out and summarised.
    #[serde(default)]
    pub on_bad_record: BadRecordPolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRecordPolicy {
    #[default]
    Error,
    Skip,
}

/// File locations of one split. Which keys are required depends on the layout (checked on load).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// vqa: questions json.
    pub questions: Option<String>,
    /// vqa: annotations json (may be omitted for a query split without answers, e.g. test-dev).
    pub annotations: Option<String>,
    /// Image folder (vqa, karpathy, hateful_memes) or video folder (video_qa).
    pub images: Option<String>,
    /// vqa: file name rule, with `{image_id}` or zero-padded `{image_id:012}`, e.g.
    /// `COCO_val2014_{image_id:012}.jpg` (VQAv2/OK-VQA), `{image_id}.jpg` (TextVQA), `{image_id}` (VizWiz).
    /// video_qa: rule with `{video_id}` or `{video}`; default `video{video_id}.mp4`, or `{video}` when
    /// records carry a `video` field.
    pub pattern: Option<String>,
    /// karpathy: the split json.
    pub karpathy: Option<String>,
    /// karpathy: which `split` values belong to this split (default: query `[test]`, demos `[train]`).
    pub splits: Option<Vec<String>>,
    /// karpathy: optional COCO-caption-layout references (`annotations[]{image_id, caption}`) used as the
    /// metric references instead of the Karpathy sentences.
    pub references: Option<String>,
    /// hateful_memes: the jsonl file. video_qa: the json list.
    pub annotations_file: Option<String>,
    /// imagenet: the split folder holding one sub-folder per class (wnid).
    pub root: Option<String>,
    /// imagenet: class names in index order (txt, one per line, or a json list).
    pub class_names: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialsSpec {
    /// One seed per trial (OF default `[42]`; papers average 3 trials).
    pub seeds: Vec<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplesSpec {
    /// Number of query-split samples evaluated (random subset); absent = all.
    #[serde(default)]
    pub count: Option<usize>,
    /// Seed of the evaluated subset. Absent = the trial seed (OF: each trial evaluates its own subset).
    #[serde(default)]
    pub subset_seed: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSelectionSpec {
    #[serde(default)]
    pub method: DemoMethod,
    /// RICES: which encoder gives image embeddings.
    #[serde(default)]
    pub encoder: RicesEncoder,
    /// RICES with `encoder: clip_onnx`: a folder written by export/export_clip.py (clip.yaml + graph), or a
    /// single CLIP image encoder ONNX file.
    #[serde(default)]
    pub clip_onnx: Option<String>,
    /// RICES cache key over image files: `bytes` (default; hashes every image, never stale) or `metadata`
    /// (path, size, modification time; much faster on huge splits).
    #[serde(default)]
    pub content_hash: ContentHash,
}

impl Default for DemoSelectionSpec {
    fn default() -> Self {
        DemoSelectionSpec {
            method: DemoMethod::Random,
            encoder: RicesEncoder::Model,
            clip_onnx: None,
            content_hash: ContentHash::Bytes,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoMethod {
    #[default]
    Random,
    Rices,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RicesEncoder {
    /// The evaluated model's vision encoder embedding output.
    #[default]
    Model,
    /// A separate CLIP image encoder exported to ONNX (`clip_onnx`).
    ClipOnnx,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentHash {
    #[default]
    Bytes,
    Metadata,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotSpec {
    /// `text_only_demos` (OF and Flamingo: 0 shots = `demos` demonstrations with their `<image>` markers
    /// removed, only the query image passed) or `no_demos` (the bare query).
    #[serde(default)]
    pub policy: ZeroShotPolicy,
    /// Number of text-only demonstrations (default 2).
    #[serde(default = "default_zero_shot_demos")]
    pub demos: usize,
}

fn default_zero_shot_demos() -> usize {
    2
}

impl Default for ZeroShotSpec {
    fn default() -> Self {
        ZeroShotSpec { policy: ZeroShotPolicy::TextOnlyDemos, demos: 2 }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroShotPolicy {
    #[default]
    TextOnlyDemos,
    NoDemos,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSpec {
    pub max_new_tokens: usize,
    pub num_beams: usize,
    /// 0 = plain sum of token log-probabilities (OF).
    pub length_penalty: f32,
    #[serde(default)]
    pub min_new_tokens: usize,
}

impl GenerationSpec {
    /// Value rules of the generation settings (as the search applies them), checked before any work.
    pub fn check(&self) -> Result<()> {
        if self.num_beams == 0 {
            bail!("generation.num_beams: must be at least 1 (1 = greedy)");
        }
        if self.max_new_tokens == 0 {
            bail!("generation.max_new_tokens: must be at least 1");
        }
        if self.min_new_tokens > self.max_new_tokens {
            bail!("generation.min_new_tokens: {} is above max_new_tokens {}", self.min_new_tokens, self.max_new_tokens);
        }
        if !self.length_penalty.is_finite() {
            bail!("generation.length_penalty: must be a finite number");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankingSpec {
    /// Candidate continuations in class-index order (e.g. `[no, yes]`). Omit for ImageNet-style layouts,
    /// whose class names file gives them.
    #[serde(default)]
    pub candidates: Option<Vec<String>>,
    /// Score normalisation: `sum`, `mean` (per token, OF) or `per_char`.
    pub normalization: RankNormalization,
    /// Prompt ensembling (OpenFlamingo's `--classification_prompt_ensembling`, which uses 6): each sample is
    /// scored with min(this, k!) orders of its k demonstrations (the selected order, then successive seeded
    /// shuffles) and each
    /// candidate's normalised score is the mean over the orders. 1 = off.
    #[serde(default = "one")]
    pub ensemble_permutations: usize,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankNormalization {
    Sum,
    Mean,
    PerChar,
}

/// Post-processing applied to generated text before scoring; see [`super::postprocess`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostprocessKind {
    #[default]
    None,
    /// Cut at the first `Question`/`Answer`/`Short`, then at the first `", "`.
    VqaOpenflamingo,
    /// As `vqa_openflamingo`, then OpenFlamingo's OK-VQA stemming of each word (see `benchmark::okvqa`).
    OkVqaOpenflamingo,
    /// Cut at the first `Output`, then remove double quotes.
    CaptionOpenflamingo,
    /// Strip surrounding whitespace.
    Strip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub name: MetricName,
    /// `official` (the dataset's official evaluator) or `openflamingo` (OF's copy, where it differs).
    #[serde(default)]
    pub mode: MetricMode,
    /// top_k_accuracy: the k values reported (default `[1]`).
    #[serde(default)]
    pub top_k: Option<Vec<usize>>,
    /// vqa_accuracy: how many annotator answers every annotated question has (VQAv2/OK-VQA/TextVQA/VizWiz: 10).
    /// Declared, it is checked: a question with another count is an error naming it. Undeclared, any count
    /// is accepted. Either way, questions with fewer than 10 answers bring a warning: the VQA formula
    /// (kept as the official tool has it) cannot give them full credit, and one answer always scores 0.
    #[serde(default)]
    pub answers_per_question: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    VqaAccuracy,
    Cider,
    RocAuc,
    TopKAccuracy,
    ExactMatch,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricMode {
    #[default]
    Official,
    Openflamingo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSpec {
    /// Frames per video (uniform sampling), or the cap for `fps` sampling.
    pub frames: usize,
    #[serde(default)]
    pub sampling: FrameSampling,
    /// Frames per second for `sampling: fps` (Flamingo: 30 frames at 3 fps).
    #[serde(default)]
    pub fps: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameSampling {
    /// `frames` frames at the centres of equal time slices of the whole video.
    #[default]
    Uniform,
    /// One frame every 1/fps seconds from the start, at most `frames`.
    Fps,
}

/// Parse YAML text into `T`, turning serde errors into `file:line:col: key: message`.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, file: &Path) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| match e.location() {
        Some(loc) => anyhow!("{}:{}:{}: {}", file.display(), loc.line(), loc.column(), strip_location(&e.to_string())),
        None => anyhow!("{}: {}", file.display(), e),
    })
}

/// serde_yaml appends " at line L column C" to its messages; we put the location first instead.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Expand `${VAR}` and `${VAR:-default}` from the environment. `what` names the key for errors.
pub fn substitute_env(value: &str, what: &str) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| anyhow!("{what}: unterminated `${{` in `{value}`"))?;
        let inner = &after[..end];
        let (name, default) = match inner.find(":-") {
            Some(i) => (&inner[..i], Some(&inner[i + 2..])),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("{what}: bad variable name `{name}` in `{value}`");
        }
        match (std::env::var(name), default) {
            (Ok(v), _) if !v.is_empty() => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            _ => bail!("{what}: environment variable `{name}` is not set (used in `{value}`)"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitute environment variables, then resolve a relative path against `base` (the benchmark file's
/// directory).
pub fn resolve_path(value: &str, base: &Path, what: &str) -> Result<PathBuf> {
    let s = substitute_env(value, what)?;
    let p = PathBuf::from(s);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

/// The first value that occurs twice in `xs`.
pub fn first_repeat<T: Eq + std::hash::Hash + Copy>(xs: &[T]) -> Option<T> {
    let mut seen = std::collections::HashSet::new();
    xs.iter().copied().find(|x| !seen.insert(*x))
}

impl BenchmarkSpec {
    /// Read and validate a benchmark file.
    pub fn from_file(path: &Path) -> Result<BenchmarkSpec> {
        let text = std::fs::read_to_string(path).with_context(|| format!("could not read benchmark file {}", path.display()))?;
        let spec: BenchmarkSpec = parse_yaml(&text, path)?;
        spec.validate().map_err(|e| anyhow!("{}: {e:#}", path.display()))?;
        Ok(spec)
    }

    /// Cross-field rules that the type system does not express.
    pub fn validate(&self) -> Result<()> {
        super::paths::check_plain_name(&self.name, "name:")?;
        if self.samples.count == Some(0) {
            bail!("samples.count: 0 evaluates nothing; omit `count` to evaluate every sample");
        }
        if self.shots.is_empty() {
            bail!("shots: at least one shot count is required");
        }
        if self.trials.seeds.is_empty() {
            bail!("trials.seeds: at least one seed is required");
        }
        if let Some(d) = first_repeat(&self.shots) {
            bail!("shots: {d} is listed twice; list each shot count once");
        }
        if let Some(d) = first_repeat(&self.trials.seeds) {
            bail!("trials.seeds: {d} is listed twice; repeated seeds would make identical trials");
        }
        match self.task {
            TaskKind::Generate => {
                match &self.generation {
                    None => bail!("generation: required for `task: generate` (max_new_tokens, num_beams, length_penalty)"),
                    Some(g) => g.check()?,
                }
                if self.ranking.is_some() {
                    bail!("ranking: only valid for `task: rank`");
                }
            }
            TaskKind::Rank => {
                let r = self.ranking.as_ref().ok_or_else(|| anyhow!("ranking: required for `task: rank` (candidates, normalization)"))?;
                if r.candidates.is_none() && self.dataset.layout != Layout::Imagenet {
                    bail!("ranking.candidates: required unless the layout is `imagenet` (class names file)");
                }
                if r.ensemble_permutations == 0 {
                    bail!("ranking.ensemble_permutations: must be at least 1");
                }
                if self.generation.is_some() {
                    bail!("generation: only valid for `task: generate`");
                }
            }
        }
        if self.demo_selection.method == DemoMethod::Rices
            && self.demo_selection.encoder == RicesEncoder::ClipOnnx
            && self.demo_selection.clip_onnx.is_none()
        {
            bail!("demo_selection.clip_onnx: required with `encoder: clip_onnx`");
        }
        // Which metrics can score the targets a layout produces (the engine's per-sample scoring rules).
        let fits = match (self.dataset.layout, self.metric.name) {
            (Layout::Vqa, MetricName::VqaAccuracy | MetricName::ExactMatch) => true,
            (Layout::Karpathy, MetricName::Cider) => true,
            (Layout::HatefulMemes | Layout::Imagenet, MetricName::RocAuc | MetricName::TopKAccuracy) => {
                self.task == TaskKind::Rank
            }
            (Layout::VideoQa, MetricName::ExactMatch) => true,
            _ => false,
        };
        if !fits {
            bail!(
                "metric.name: {:?} cannot score a {:?} layout with `task: {:?}` (vqa: vqa_accuracy or exact_match; \
                 karpathy: cider; hateful_memes / imagenet: roc_auc or top_k_accuracy with task: rank; video_qa: exact_match)",
                self.metric.name,
                self.dataset.layout,
                self.task
            );
        }
        if self.demo_selection.method == DemoMethod::Rices && self.dataset.layout == Layout::VideoQa {
            bail!("demo_selection.method: rices is only supported for image layouts (use `random` for video_qa)");
        }
        if self.dataset.layout == Layout::VideoQa {
            let v = self.video.as_ref().ok_or_else(|| anyhow!("video: required for the `video_qa` layout (frames, sampling)"))?;
            if v.frames == 0 {
                bail!("video.frames: must be at least 1");
            }
            if v.sampling == FrameSampling::Fps && !v.fps.is_some_and(|f| f > 0.0) {
                bail!("video.fps: a positive value is required with `sampling: fps`");
            }
        }
        if self.metric.name == MetricName::TopKAccuracy
            && self.metric.mode == MetricMode::Openflamingo
            && self.metric.top_k.as_ref().is_some_and(|k| k.iter().any(|&k| k != 1))
        {
            bail!("metric.top_k: `mode: openflamingo` reports top-1 only, as OpenFlamingo does (classes compared by name); use [1] or `mode: official`");
        }
        if let Some(n) = self.metric.answers_per_question {
            if self.metric.name != MetricName::VqaAccuracy {
                bail!("metric.answers_per_question: only valid with `name: vqa_accuracy`");
            }
            if n == 0 {
                bail!("metric.answers_per_question: must be at least 1");
            }
        }
        if self.metric.name == MetricName::TopKAccuracy && self.metric.top_k.as_ref().is_some_and(|k| k.iter().any(|&k| k == 0)) {
            bail!("metric.top_k: values must be at least 1");
        }
        for (name, split) in [("dataset.query", &self.dataset.query), ("dataset.demos", &self.dataset.demos)] {
            check_split(self.dataset.layout, split, name, name == "dataset.demos")?;
        }
        Ok(())
    }

    /// The cache directory, resolved (see the `cache_dir` field).
    pub fn cache_dir(&self, base: &Path) -> Result<PathBuf> {
        if let Some(c) = &self.cache_dir {
            return resolve_path(c, base, "cache_dir");
        }
        if let Ok(c) = std::env::var("FLAMINGO_EVAL_CACHE") {
            if !c.is_empty() {
                return Ok(PathBuf::from(c));
            }
        }
        if let Ok(c) = std::env::var("XDG_CACHE_HOME") {
            if !c.is_empty() {
                return Ok(PathBuf::from(c).join("flamingo-eval"));
            }
        }
        match std::env::var("HOME") {
            Ok(h) if !h.is_empty() => Ok(PathBuf::from(h).join(".cache").join("flamingo-eval")),
            _ => Ok(base.join(".flamingo-eval-cache")),
        }
    }
}

fn check_split(layout: Layout, s: &SplitSpec, name: &str, is_demo: bool) -> Result<()> {
    let need = |v: &Option<String>, key: &str| -> Result<()> {
        if v.is_none() {
            bail!("{name}.{key}: required for the `{}` layout", layout_name(layout));
        }
        Ok(())
    };
    let forbid = |present: bool, key: &str| -> Result<()> {
        if present {
            bail!("{name}.{key}: not used by the `{}` layout", layout_name(layout));
        }
        Ok(())
    };
    match layout {
        Layout::Vqa => {
            need(&s.questions, "questions")?;
            need(&s.images, "images")?;
            need(&s.pattern, "pattern")?;
            if is_demo {
                need(&s.annotations, "annotations")?;
            }
            forbid(s.karpathy.is_some() || s.splits.is_some() || s.references.is_some(), "karpathy/splits/references")?;
            forbid(s.annotations_file.is_some() || s.root.is_some() || s.class_names.is_some(), "annotations_file/root/class_names")?;
        }
        Layout::Karpathy => {
            need(&s.karpathy, "karpathy")?;
            need(&s.images, "images")?;
            forbid(s.questions.is_some() || s.annotations.is_some() || s.pattern.is_some(), "questions/annotations/pattern")?;
            forbid(s.annotations_file.is_some() || s.root.is_some() || s.class_names.is_some(), "annotations_file/root/class_names")?;
        }
        Layout::HatefulMemes => {
            need(&s.annotations_file, "annotations_file")?;
            need(&s.images, "images")?;
            forbid(s.questions.is_some() || s.annotations.is_some() || s.pattern.is_some(), "questions/annotations/pattern")?;
            forbid(s.karpathy.is_some() || s.splits.is_some() || s.references.is_some(), "karpathy/splits/references")?;
            forbid(s.root.is_some() || s.class_names.is_some(), "root/class_names")?;
        }
        Layout::Imagenet => {
            need(&s.root, "root")?;
            need(&s.class_names, "class_names")?;
            forbid(s.questions.is_some() || s.annotations.is_some() || s.pattern.is_some() || s.images.is_some(), "questions/annotations/pattern/images")?;
            forbid(s.karpathy.is_some() || s.splits.is_some() || s.references.is_some() || s.annotations_file.is_some(), "karpathy/splits/references/annotations_file")?;
        }
        Layout::VideoQa => {
            need(&s.annotations_file, "annotations_file")?;
            need(&s.images, "images")?;
            forbid(s.questions.is_some() || s.annotations.is_some(), "questions/annotations")?;
            forbid(s.karpathy.is_some() || s.splits.is_some() || s.references.is_some(), "karpathy/splits/references")?;
            forbid(s.root.is_some() || s.class_names.is_some(), "root/class_names")?;
        }
    }
    Ok(())
}

pub fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Vqa => "vqa",
        Layout::Karpathy => "karpathy",
        Layout::HatefulMemes => "hateful_memes",
        Layout::Imagenet => "imagenet",
        Layout::VideoQa => "video_qa",
    }
}
