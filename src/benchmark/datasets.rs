//! Loaders for the official dataset layouts (PROTOCOL.md §7). Each turns files into [`Sample`]s: an id,
//! a media reference (image path, or a video path whose frames are extracted later by
//! [`super::video`]), the text fields a prompt template uses, the demonstration target, and the
//! [`Target`] the metric needs.
//!
//! Records are joined by id, never by position. A bad record (missing field, wrong type, missing join
//! partner, duplicate id) is reported with its id and file. Under `on_bad_record: error` loading fails with
//! the list of bad records (the first 20 shown); under `skip` they are left out and listed in
//! [`Dataset::skipped`]. Media files are NOT opened here: existence is checked when requests are built.

use super::spec::{resolve_path, BadRecordPolicy, Layout, SplitSpec};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Where a sample's media comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaRef {
    Image(PathBuf),
    /// A video file; frames are sampled from it when requests are built.
    Video(PathBuf),
}

impl MediaRef {
    pub fn path(&self) -> &Path {
        match self {
            MediaRef::Image(p) | MediaRef::Video(p) => p,
        }
    }
}

/// What the metric needs about one sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// VQA: all annotator answers in file order (empty for a split without annotations).
    Vqa {
        answers: Vec<String>,
        answer_type: Option<String>,
        question_type: Option<String>,
        multiple_choice_answer: Option<String>,
    },
    /// Captioning: the image id used by the caption metrics and its reference captions. `eval_order`: the
    /// image's position in the evaluation's order (the references file's `images` list, else the Karpathy
    /// list), in which pycocoevalcap runs the PTB tokenizer over the captions; the tokenizer's output for a
    /// caption can depend on the next one (a line-final initial), so CIDEr tokenizes in this order.
    Caption {
        image_id: String,
        references: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        eval_order: Option<usize>,
    },
    /// Classification (HatefulMemes, ImageNet): class index into the candidate list and its name.
    Class { label: usize, name: String },
    /// Video QA: the single answer (exact match).
    Answer { answer: String },
}

/// One record of a split.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The record's id as text (question_id, cocoid / file stem, meme id, `wnid/file`, video-QA id).
    pub id: String,
    pub media: MediaRef,
    pub question: Option<String>,
    /// Meme text (HatefulMemes).
    pub text: Option<String>,
    /// What a demonstration shows after the prompt: first annotator answer (VQA), first Karpathy sentence
    /// stripped (captioning), class name (classification), the answer (video QA).
    pub demo_target: String,
    pub target: Target,
}

impl Sample {
    /// Template field lookup; `answer`, `caption` and `label` all name the demonstration target.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "question" => self.question.as_deref(),
            "text" => self.text.as_deref(),
            "answer" | "caption" | "label" => Some(&self.demo_target),
            _ => None,
        }
    }
}

/// Template fields each layout provides.
pub fn layout_fields(layout: Layout) -> &'static [&'static str] {
    match layout {
        Layout::Vqa | Layout::VideoQa => &["question", "answer"],
        Layout::Karpathy => &["caption"],
        Layout::HatefulMemes => &["text", "label"],
        Layout::Imagenet => &["label"],
    }
}

/// A record left out under `on_bad_record: skip`.
#[derive(Debug, Clone)]
pub struct SkippedRecord {
    pub id: String,
    pub file: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {} in {}: {}", self.id, self.file.display(), self.reason)
    }
}

/// A loaded split.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub samples: Vec<Sample>,
    pub skipped: Vec<SkippedRecord>,
    /// Class names in index order (classification layouts), else empty.
    pub class_names: Vec<String>,
    /// The folder the split's media must stay inside (`images:`, or the ImageNet `root:`); see
    /// [`super::paths`].
    pub media_root: Option<PathBuf>,
    index: HashMap<String, usize>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    /// Index of the sample with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
    /// One line summarising skipped records, if any.
    pub fn skipped_summary(&self, split: &str) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let mut reasons: Vec<(String, usize)> = Vec::new();
        for s in &self.skipped {
            let key = s.reason.split(':').next().unwrap_or("").to_string();
            match reasons.iter_mut().find(|(r, _)| *r == key) {
                Some((_, n)) => *n += 1,
                None => reasons.push((key, 1)),
            }
        }
        let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} × {r}")).collect();
        Some(format!("{split}: skipped {} bad record(s): {}", self.skipped.len(), parts.join("; ")))
    }

    fn from_parts(samples: Vec<Sample>, skipped: Vec<SkippedRecord>, class_names: Vec<String>) -> Dataset {
        let index = samples.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
        Dataset { samples, skipped, class_names, media_root: None, index }
    }
}

/// Collects bad records (id, file, reason) and applies the `on_bad_record` policy at the end.
pub struct BadRecords {
    policy: BadRecordPolicy,
    list: Vec<SkippedRecord>,
}

impl BadRecords {
    pub fn new(policy: BadRecordPolicy) -> Self {
        BadRecords { policy, list: Vec::new() }
    }
    fn add(&mut self, id: impl Into<String>, file: &Path, reason: impl Into<String>) {
        self.list.push(SkippedRecord { id: id.into(), file: file.to_path_buf(), reason: reason.into() });
    }
    pub fn records(&self) -> &[SkippedRecord] {
        &self.list
    }
    /// Apply the policy: an error listing the bad records (first 20), or the list of skipped ones.
    pub fn finish(self, split: &str) -> Result<Vec<SkippedRecord>> {
        if self.policy == BadRecordPolicy::Skip || self.list.is_empty() {
            return Ok(self.list);
        }
        let shown: Vec<String> = self.list.iter().take(20).map(|s| format!("  {s}")).collect();
        let more = if self.list.len() > 20 { format!("\n  ... and {} more", self.list.len() - 20) } else { String::new() };
        bail!(
            "{split}: {} bad record(s) (set `dataset.on_bad_record: skip` to leave them out):\n{}{more}",
            self.list.len(),
            shown.join("\n")
        )
    }
}

/// Load one split of a benchmark. `base` is the benchmark file's directory; `split` names the split in
/// messages (`dataset.query` / `dataset.demos`); `is_demo` selects the Karpathy default split names.
/// A record naming a media file outside the split's media root is a bad record (see [`super::paths`]).
pub fn load_split(layout: Layout, spec: &SplitSpec, base: &Path, split: &str, is_demo: bool, policy: BadRecordPolicy) -> Result<Dataset> {
    load_split_with(layout, spec, base, split, is_demo, policy, false)
}

/// [`load_split`], with `allow_outside_root` (the benchmark's `allow_paths_outside_root`).
pub fn load_split_with(
    layout: Layout,
    spec: &SplitSpec,
    base: &Path,
    split: &str,
    is_demo: bool,
    policy: BadRecordPolicy,
    allow_outside_root: bool,
) -> Result<Dataset> {
    let path = |v: &Option<String>, key: &str| -> Result<PathBuf> {
        let v = v.as_ref().ok_or_else(|| anyhow!("{split}.{key}: missing"))?;
        resolve_path(v, base, &format!("{split}.{key}"))
    };
    let mut bad = BadRecords::new(policy);
    let (root, record_file) = match layout {
        Layout::Imagenet => (path(&spec.root, "root")?, path(&spec.root, "root")?),
        Layout::Vqa => (path(&spec.images, "images")?, path(&spec.questions, "questions")?),
        Layout::Karpathy => (path(&spec.images, "images")?, path(&spec.karpathy, "karpathy")?),
        Layout::HatefulMemes | Layout::VideoQa => (path(&spec.images, "images")?, path(&spec.annotations_file, "annotations_file")?),
    };
    let ds = match layout {
        Layout::Vqa => load_vqa(
            &path(&spec.questions, "questions")?,
            spec.annotations.as_ref().map(|_| path(&spec.annotations, "annotations")).transpose()?.as_deref(),
            &path(&spec.images, "images")?,
            spec.pattern.as_deref().unwrap_or("{image_id}"),
            &mut bad,
        )?,
        Layout::Karpathy => {
            let default = if is_demo { vec!["train".to_string()] } else { vec!["test".to_string()] };
            load_karpathy(
                &path(&spec.karpathy, "karpathy")?,
                &path(&spec.images, "images")?,
                spec.splits.as_ref().unwrap_or(&default),
                spec.references.as_ref().map(|_| path(&spec.references, "references")).transpose()?.as_deref(),
                &mut bad,
            )?
        }
        Layout::HatefulMemes => load_hateful_memes(&path(&spec.annotations_file, "annotations_file")?, &path(&spec.images, "images")?, &mut bad)?,
        Layout::Imagenet => load_imagenet(&path(&spec.root, "root")?, &path(&spec.class_names, "class_names")?)?,
        Layout::VideoQa => load_video_qa(&path(&spec.annotations_file, "annotations_file")?, &path(&spec.images, "images")?, spec.pattern.as_deref(), &mut bad)?,
    };
    let mut ds = ds;
    if !allow_outside_root {
        // Lexically: an absolute name or one with `..` leaves the root whatever the file system holds.
        let (inside, outside): (Vec<Sample>, Vec<Sample>) =
            std::mem::take(&mut ds.samples).into_iter().partition(|s| super::paths::lexically_inside(s.media.path(), &root));
        for s in &outside {
            bad.add(
                s.id.clone(),
                &record_file,
                format!(
                    "media file {} is outside the split's media root {} (an absolute path or `..`); set `{}` in the benchmark to accept it",
                    s.media.path().display(),
                    root.display(),
                    super::paths::ALLOW_KEY
                ),
            );
        }
        if !outside.is_empty() {
            ds = Dataset::from_parts(inside, vec![], std::mem::take(&mut ds.class_names));
        } else {
            ds.samples = inside;
        }
    }
    let skipped = bad.finish(split)?;
    ds.skipped = skipped;
    ds.media_root = Some(root);
    if ds.samples.is_empty() {
        bail!("{split}: no usable records");
    }
    Ok(ds)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// A JSON id (number or string) as text.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Apply a file-name rule with `{key}` / `{key:0N}` placeholders.
pub fn apply_pattern(pattern: &str, key: &str, value: &Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| anyhow!("unterminated `{{` in file name rule `{pattern}`"))? + start;
        let inner = &rest[start + 1..end];
        let (name, fmt) = match inner.find(':') {
            Some(i) => (&inner[..i], Some(&inner[i + 1..])),
            None => (inner, None),
        };
        if name != key {
            bail!("file name rule `{pattern}`: unknown placeholder `{{{name}}}` (expected `{{{key}}}`)");
        }
        match fmt {
            None => out.push_str(&id_text(value).ok_or_else(|| anyhow!("`{key}` is neither a number nor a string"))?),
            Some(f) => {
                let width: usize = f
                    .strip_prefix('0')
                    .and_then(|w| w.parse().ok())
                    .ok_or_else(|| anyhow!("file name rule `{pattern}`: only zero padding (`:0N`) is supported"))?;
                let n = value.as_u64().ok_or_else(|| anyhow!("`{key}` must be a non-negative integer for `{{{key}:{f}}}`"))?;
                out.push_str(&format!("{n:0width$}"));
            }
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_string)
}

/// VQAv2 / OK-VQA / TextVQA / VizWiz.
pub fn load_vqa(questions: &Path, annotations: Option<&Path>, images: &Path, pattern: &str, bad: &mut BadRecords) -> Result<Dataset> {
    let qjson = read_json(questions)?;
    let qs = qjson
        .get("questions")
        .and_then(|q| q.as_array())
        .ok_or_else(|| anyhow!("{}: no `questions` list (expected the official VQA questions layout)", questions.display()))?;
    let mut anns: HashMap<String, &Value> = HashMap::new();
    let mut dup_anns: HashSet<String> = HashSet::new();
    let ajson;
    if let Some(apath) = annotations {
        ajson = read_json(apath)?;
        let list = ajson
            .get("annotations")
            .and_then(|q| q.as_array())
            .ok_or_else(|| anyhow!("{}: no `annotations` list (expected the official VQA annotations layout)", apath.display()))?;
        for (i, a) in list.iter().enumerate() {
            match a.get("question_id").and_then(id_text) {
                Some(id) => {
                    if anns.insert(id.clone(), a).is_some() && dup_anns.insert(id.clone()) {
                        bad.add(id, apath, "duplicate question_id in annotations");
                    }
                }
                None => bad.add(format!("#{i}"), apath, "annotation without a question_id"),
            }
        }
    }
    let mut samples = Vec::with_capacity(qs.len());
    let mut seen = HashSet::new();
    for (i, q) in qs.iter().enumerate() {
        let Some(id) = q.get("question_id").and_then(id_text) else {
            bad.add(format!("#{i}"), questions, "question without a question_id");
            continue;
        };
        if !seen.insert(id.clone()) {
            bad.add(id, questions, "duplicate question_id");
            continue;
        }
        let Some(question) = opt_str(q, "question") else {
            bad.add(id, questions, "missing or non-text `question`");
            continue;
        };
        let Some(image_id) = q.get("image_id") else {
            bad.add(id, questions, "missing `image_id`");
            continue;
        };
        let file = match apply_pattern(pattern, "image_id", image_id) {
            Ok(f) => f,
            Err(e) => {
                bad.add(id, questions, format!("bad image_id: {e}"));
                continue;
            }
        };
        let (target, demo_target) = if let Some(apath) = annotations {
            // Reported (and skipped) once, above: which of the annotations is right is unknown.
            if dup_anns.contains(&id) {
                continue;
            }
            let Some(a) = anns.get(&id) else {
                bad.add(id, apath, "no annotation for this question_id");
                continue;
            };
            let answers: Option<Vec<String>> = a
                .get("answers")
                .and_then(|x| x.as_array())
                .map(|l| l.iter().map(|x| x.get("answer").and_then(|s| s.as_str()).map(str::to_string)).collect::<Option<Vec<_>>>())
                .unwrap_or(None);
            let Some(answers) = answers.filter(|a| !a.is_empty()) else {
                bad.add(id, apath, "missing, empty or malformed `answers` (need a list of {answer: text})");
                continue;
            };
            if let (Some(qi), Some(ai)) = (image_id.as_u64().map(|x| x.to_string()).or(id_text(image_id)), a.get("image_id").and_then(id_text)) {
                if qi != ai {
                    bad.add(id, apath, format!("image_id mismatch: questions say {qi}, annotations say {ai}"));
                    continue;
                }
            }
            let first = answers[0].clone();
            (
                Target::Vqa {
                    answers,
                    answer_type: opt_str(a, "answer_type"),
                    question_type: opt_str(a, "question_type"),
                    multiple_choice_answer: opt_str(a, "multiple_choice_answer"),
                },
                first,
            )
        } else {
            (Target::Vqa { answers: vec![], answer_type: None, question_type: None, multiple_choice_answer: None }, String::new())
        };
        samples.push(Sample { id, media: MediaRef::Image(images.join(file)), question: Some(question), text: None, demo_target, target });
    }
    Ok(Dataset::from_parts(samples, vec![], vec![]))
}

/// COCO / Flickr30k Karpathy json. Sample id: `cocoid` when present, else the file-name stem (OF).
/// Image: `images/<filepath>/<filename>` when the record has `filepath` (COCO), else `images/<filename>`.
pub fn load_karpathy(karpathy: &Path, images: &Path, splits: &[String], references: Option<&Path>, bad: &mut BadRecords) -> Result<Dataset> {
    let json = read_json(karpathy)?;
    let list = json
        .get("images")
        .and_then(|x| x.as_array())
        .ok_or_else(|| anyhow!("{}: no `images` list (expected a Karpathy split json)", karpathy.display()))?;
    let mut refs: HashMap<String, Vec<String>> = HashMap::new();
    // image id -> position in the references file's `images` list (pycocotools' image order), else in the
    // order the annotations first name them
    let mut ref_order: HashMap<String, usize> = HashMap::new();
    if let Some(rpath) = references {
        let r = read_json(rpath)?;
        if let Some(images) = r.get("images").and_then(|x| x.as_array()) {
            for im in images {
                if let Some(id) = im.get("id").and_then(id_text) {
                    let next = ref_order.len();
                    ref_order.entry(id).or_insert(next);
                }
            }
        }
        let anns = r
            .get("annotations")
            .and_then(|x| x.as_array())
            .ok_or_else(|| anyhow!("{}: no `annotations` list (expected the COCO caption layout)", rpath.display()))?;
        for (i, a) in anns.iter().enumerate() {
            match (a.get("image_id").and_then(id_text), opt_str(a, "caption")) {
                (Some(id), Some(c)) => {
                    let next = ref_order.len();
                    ref_order.entry(id.clone()).or_insert(next);
                    refs.entry(id).or_default().push(c)
                }
                _ => bad.add(format!("annotation #{i}"), rpath, "missing image_id or caption"),
            }
        }
    }
    let mut samples = Vec::new();
    let mut seen = HashSet::new();
    for (i, im) in list.iter().enumerate() {
        let Some(split) = im.get("split").and_then(|x| x.as_str()) else {
            bad.add(format!("#{i}"), karpathy, "missing `split`");
            continue;
        };
        if !splits.iter().any(|s| s == split) {
            continue;
        }
        let Some(filename) = opt_str(im, "filename") else {
            bad.add(format!("#{i}"), karpathy, "missing `filename`");
            continue;
        };
        let id = match im.get("cocoid").and_then(id_text) {
            Some(c) => c,
            None => filename.split('.').next().unwrap_or(&filename).to_string(),
        };
        if !seen.insert(id.clone()) {
            bad.add(id, karpathy, "duplicate image id");
            continue;
        }
        let sentences: Option<Vec<String>> = im
            .get("sentences")
            .and_then(|x| x.as_array())
            .map(|l| l.iter().map(|s| opt_str(s, "raw")).collect::<Option<Vec<_>>>())
            .unwrap_or(None);
        let Some(sentences) = sentences.filter(|s| !s.is_empty()) else {
            bad.add(id, karpathy, "missing, empty or malformed `sentences` (need a list of {raw: text})");
            continue;
        };
        let references_given = references.is_some();
        let references = if references_given {
            match refs.get(&id) {
                Some(r) => r.clone(),
                None => {
                    bad.add(id, references.unwrap(), "no reference captions for this image_id");
                    continue;
                }
            }
        } else {
            sentences.clone()
        };
        let demo_target = sentences[0].trim().to_string();
        // COCO records name their image folder (`filepath`: train2014 / val2014) below the image root.
        let image = match opt_str(im, "filepath") {
            Some(fp) => images.join(fp).join(&filename),
            None => images.join(&filename),
        };
        samples.push(Sample {
            media: MediaRef::Image(image),
            question: None,
            text: None,
            demo_target,
            target: Target::Caption {
                image_id: id.clone(),
                references,
                eval_order: if references_given { ref_order.get(&id).copied() } else { Some(i) },
            },
            id,
        });
    }
    Ok(Dataset::from_parts(samples, vec![], vec![]))
}

/// HatefulMemes jsonl; the image is `images/<basename of img>` (OF). Labels 0/1 map to classes `no`/`yes`.
pub fn load_hateful_memes(jsonl: &Path, images: &Path, bad: &mut BadRecords) -> Result<Dataset> {
    let text = std::fs::read_to_string(jsonl).with_context(|| format!("could not read {}", jsonl.display()))?;
    let mut samples = Vec::new();
    let mut seen = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                bad.add(format!("line {}", n + 1), jsonl, format!("invalid JSON: {e}"));
                continue;
            }
        };
        let Some(id) = v.get("id").and_then(id_text) else {
            bad.add(format!("line {}", n + 1), jsonl, "missing `id`");
            continue;
        };
        if !seen.insert(id.clone()) {
            bad.add(id, jsonl, "duplicate id");
            continue;
        }
        let (Some(img), Some(t)) = (opt_str(&v, "img"), opt_str(&v, "text")) else {
            bad.add(id, jsonl, "missing `img` or `text`");
            continue;
        };
        let label = match v.get("label").and_then(|l| l.as_u64()) {
            Some(l @ (0 | 1)) => l as usize,
            _ => {
                bad.add(id, jsonl, "missing or bad `label` (need 0 or 1)");
                continue;
            }
        };
        let name = if label == 1 { "yes" } else { "no" }.to_string();
        let base = img.rsplit('/').next().unwrap_or(&img).to_string();
        samples.push(Sample {
            id,
            media: MediaRef::Image(images.join(base)),
            question: None,
            text: Some(t),
            demo_target: name.clone(),
            target: Target::Class { label, name },
        });
    }
    Ok(Dataset::from_parts(samples, vec![], vec!["no".into(), "yes".into()]))
}

/// Read class names: a json list, or a text file with one name per line.
pub fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read class names {}", path.display()))?;
    if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).with_context(|| format!("{}: expected a json list of class names", path.display()))
    } else {
        Ok(text.lines().map(|l| l.trim_end_matches('\r').to_string()).filter(|l| !l.is_empty()).collect())
    }
}

/// ImageNet folder layout: class index = position of the wnid folder in sorted order (torchvision
/// `ImageFolder`); files sorted by name within a class. Sample id: `wnid/filename`.
pub fn load_imagenet(root: &Path, class_names: &Path) -> Result<Dataset> {
    let names = read_class_names(class_names)?;
    let mut wnids: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("could not list ImageNet split folder {}", root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    wnids.sort();
    if wnids.len() != names.len() {
        bail!(
            "{}: {} class folders but {} class names in {} (they must match, in index order)",
            root.display(),
            wnids.len(),
            names.len(),
            class_names.display()
        );
    }
    let exts = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"];
    let mut samples = Vec::new();
    for (label, dir) in wnids.iter().enumerate() {
        let wnid = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("could not list {}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().map(|e| exts.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())).unwrap_or(false))
            .collect();
        files.sort();
        for f in files {
            let fname = f.file_name().unwrap().to_string_lossy().to_string();
            samples.push(Sample {
                id: format!("{wnid}/{fname}"),
                media: MediaRef::Image(f),
                question: None,
                text: None,
                demo_target: names[label].clone(),
                target: Target::Class { label, name: names[label].clone() },
            });
        }
    }
    Ok(Dataset::from_parts(samples, vec![], names))
}

/// MSRVTT-QA / MSVD-QA json list.
pub fn load_video_qa(file: &Path, videos: &Path, pattern: Option<&str>, bad: &mut BadRecords) -> Result<Dataset> {
    let json = read_json(file)?;
    let list = json.as_array().ok_or_else(|| anyhow!("{}: expected a json list of {{question, answer, video_id, id}}", file.display()))?;
    let mut samples = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in list.iter().enumerate() {
        let Some(id) = r.get("id").and_then(id_text) else {
            bad.add(format!("#{i}"), file, "missing `id`");
            continue;
        };
        if !seen.insert(id.clone()) {
            bad.add(id, file, "duplicate id");
            continue;
        }
        let (Some(question), Some(answer)) = (opt_str(r, "question"), r.get("answer").and_then(id_text)) else {
            bad.add(id, file, "missing `question` or `answer`");
            continue;
        };
        let name = if let Some(v) = r.get("video") {
            apply_pattern(pattern.unwrap_or("{video}"), "video", v)
        } else if let Some(v) = r.get("video_id") {
            apply_pattern(pattern.unwrap_or("video{video_id}.mp4"), "video_id", v)
        } else {
            Err(anyhow!("missing `video_id` or `video`"))
        };
        let name = match name {
            Ok(n) => n,
            Err(e) => {
                bad.add(id, file, e.to_string());
                continue;
            }
        };
        samples.push(Sample {
            id,
            media: MediaRef::Video(videos.join(name)),
            question: Some(question),
            text: None,
            demo_target: answer.clone(),
            target: Target::Answer { answer },
        });
    }
    Ok(Dataset::from_parts(samples, vec![], vec![]))
}
