//! Readers for the official file layouts scored by `flamingo-eval score`, turning them into the plain
//! structs the metric functions take. Every error names the file and the record (index and id).
//!
//! * COCO captions: annotations `{"images": [{"id"}], "annotations": [{"image_id", "caption"}]}`,
//!   results `[{"image_id", "caption"}]`. The scored image set is the result images, ordered as in the
//!   annotation file's `images` list (what pycocotools' `loadRes` does).
//! * VQA: questions `{"questions": [{"question_id"}]}`, annotations `{"annotations": [{"question_id",
//!   "answers": [{"answer", ...}], "question_type"?, "answer_type"?}]}`, results `[{"question_id",
//!   "answer"}]`, scored in results order.
//! * Classification (this project's layout): a JSON array, or CSV with a header, of records
//!   `{"id", "label", "score"}` (binary: label 0/1, ROC-AUC) or `{"id", "label", "scores": [...]}`
//!   (CSV: columns `score_0, score_1, ...`; multi-class: top-1/top-5).
//! * Video QA: annotations `[{"question_id" | "id", "answer"}]` (MSRVTT-QA/MSVD-QA layout), results
//!   `[{"question_id", "answer"}]`.

use super::caption::CaptionSample;
use super::vqa::{GtAnswer, VqaItem, VqaMode};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// A problem with an input file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct FormatError {
    pub file: String,
    pub message: String,
}

fn err(file: &Path, message: impl Into<String>) -> FormatError {
    FormatError { file: file.display().to_string(), message: message.into() }
}

/// Read and parse a JSON file.
pub fn read_json(path: &Path) -> Result<Value, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    parse_json(path, &text)
}

/// Parse JSON text that came from `path` (for error messages).
pub fn parse_json(path: &Path, text: &str) -> Result<Value, FormatError> {
    serde_json::from_str(text).map_err(|e| err(path, format!("malformed JSON: {e}")))
}

/// Render an id the way a user recognises it (numbers as written, strings without quotes).
pub fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn array<'a>(path: &Path, v: &'a Value, key: Option<&str>) -> Result<&'a Vec<Value>, FormatError> {
    let target = match key {
        Some(k) => v
            .get(k)
            .ok_or_else(|| err(path, format!("missing top-level field \"{k}\" (is this the right file?)")))?,
        None => v,
    };
    target.as_array().ok_or_else(|| match key {
        Some(k) => err(path, format!("top-level field \"{k}\" must be an array")),
        None => err(path, "expected a JSON array of records at top level"),
    })
}

fn record<'a>(path: &Path, what: &str, i: usize, v: &'a Value) -> Result<&'a Map<String, Value>, FormatError> {
    v.as_object().ok_or_else(|| err(path, format!("{what} #{i} is not a JSON object")))
}

fn field_id(path: &Path, what: &str, i: usize, r: &Map<String, Value>, keys: &[&str]) -> Result<String, FormatError> {
    for k in keys {
        if let Some(v) = r.get(*k) {
            return id_string(v)
                .ok_or_else(|| err(path, format!("{what} #{i}: \"{k}\" must be a number or a string, got {v}")));
        }
    }
    Err(err(path, format!("{what} #{i}: missing field \"{}\"", keys[0])))
}

fn field_str<'a>(path: &Path, what: &str, i: usize, id: &str, r: &'a Map<String, Value>, key: &str) -> Result<&'a str, FormatError> {
    match r.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(err(path, format!("{what} #{i} (id {id}): \"{key}\" must be a string, got {v}"))),
        None => Err(err(path, format!("{what} #{i} (id {id}): missing field \"{key}\""))),
    }
}

/// Raw caption inputs in scoring order: (image id, candidate, references), untokenized.
pub struct RawCaptions {
    pub samples: Vec<(String, String, Vec<String>)>,
    /// Result records whose caption is empty or whitespace only (scored as the official tool does).
    pub empty_candidates: Vec<String>,
}

/// Read COCO caption annotations and results (see module docs).
pub fn read_caption_files(ann_path: &Path, res_path: &Path) -> Result<RawCaptions, FormatError> {
    let ann = read_json(ann_path)?;
    let res = read_json(res_path)?;
    caption_inputs(ann_path, &ann, res_path, &res)
}

/// Same as [`read_caption_files`] on parsed JSON.
pub fn caption_inputs(ann_path: &Path, ann: &Value, res_path: &Path, res: &Value) -> Result<RawCaptions, FormatError> {
    let images = array(ann_path, ann, Some("images"))?;
    let anns = array(ann_path, ann, Some("annotations"))?;
    let mut image_order: Vec<String> = Vec::with_capacity(images.len());
    let mut refs: HashMap<String, Vec<String>> = HashMap::new();
    for (i, im) in images.iter().enumerate() {
        let r = record(ann_path, "image", i, im)?;
        let id = field_id(ann_path, "image", i, r, &["id"])?;
        if refs.insert(id.clone(), Vec::new()).is_some() {
            return Err(err(ann_path, format!("image #{i}: duplicate image id {id}")));
        }
        image_order.push(id);
    }
    for (i, a) in anns.iter().enumerate() {
        let r = record(ann_path, "annotation", i, a)?;
        let id = field_id(ann_path, "annotation", i, r, &["image_id"])?;
        let cap = field_str(ann_path, "annotation", i, &id, r, "caption")?;
        // Annotations of images the file does not list can never be scored (results must name listed images).
        if let Some(v) = refs.get_mut(&id) {
            v.push(cap.to_string());
        }
    }
    let results = array(res_path, res, None)?;
    let mut cand: HashMap<String, (usize, String)> = HashMap::new();
    let mut empty = Vec::new();
    for (i, x) in results.iter().enumerate() {
        let r = record(res_path, "result", i, x)?;
        let id = field_id(res_path, "result", i, r, &["image_id"])?;
        let cap = field_str(res_path, "result", i, &id, r, "caption")?;
        if !refs.contains_key(&id) {
            return Err(err(res_path, format!("result #{i}: image_id {id} is not in the annotation file's images")));
        }
        if cap.trim().is_empty() {
            empty.push(id.clone());
        }
        if let Some((j, _)) = cand.insert(id.clone(), (i, cap.to_string())) {
            return Err(err(
                res_path,
                format!("result #{i}: duplicate image_id {id} (also result #{j}); the official scorers take exactly one caption per image"),
            ));
        }
    }
    if cand.is_empty() {
        return Err(err(res_path, "no results to score"));
    }
    let mut samples = Vec::with_capacity(cand.len());
    for id in &image_order {
        if let Some((_, c)) = cand.remove(id) {
            let r = refs.remove(id).unwrap_or_default();
            if r.is_empty() {
                return Err(err(ann_path, format!("image {id} has no reference captions")));
            }
            samples.push((id.clone(), c, r));
        }
    }
    Ok(RawCaptions { samples, empty_candidates: empty })
}

impl RawCaptions {
    fn items(&self) -> Vec<(String, &str, &[String])> {
        self.samples.iter().map(|(id, c, r)| (id.clone(), c.as_str(), r.as_slice())).collect()
    }

    /// Ids of the images whose candidate or references hold a line break character (see
    /// [`super::caption::line_terminator_samples`]).
    pub fn line_terminator_samples(&self) -> Vec<String> {
        super::caption::line_terminator_samples(&self.items())
    }
}

/// Tokenize raw caption inputs into scorer samples, as pycocoevalcap's COCO evaluation does (references
/// in one tokenizer call, candidates in another, images in the evaluation's order).
pub fn tokenize_captions(raw: &RawCaptions) -> Vec<CaptionSample> {
    super::caption::samples_from_raw(&raw.items())
}

/// Read VQA questions, annotations and results into items in results order.
pub fn read_vqa_files(q_path: &Path, a_path: &Path, r_path: &Path, mode: VqaMode) -> Result<Vec<VqaItem>, FormatError> {
    let q = read_json(q_path)?;
    let a = read_json(a_path)?;
    let r = read_json(r_path)?;
    vqa_inputs(q_path, &q, a_path, &a, r_path, &r, mode)
}

/// Same as [`read_vqa_files`] on parsed JSON.
#[allow(clippy::too_many_arguments)]
pub fn vqa_inputs(
    q_path: &Path,
    q: &Value,
    a_path: &Path,
    a: &Value,
    r_path: &Path,
    r: &Value,
    mode: VqaMode,
) -> Result<Vec<VqaItem>, FormatError> {
    let questions = array(q_path, q, Some("questions"))?;
    let mut qids: HashSet<String> = HashSet::with_capacity(questions.len());
    for (i, x) in questions.iter().enumerate() {
        let rec = record(q_path, "question", i, x)?;
        qids.insert(field_id(q_path, "question", i, rec, &["question_id"])?);
    }
    let anns = array(a_path, a, Some("annotations"))?;
    let mut by_id: HashMap<String, (Vec<GtAnswer>, Option<String>, Option<String>)> = HashMap::new();
    let mut ann_order: Vec<String> = Vec::new();
    for (i, x) in anns.iter().enumerate() {
        let rec = record(a_path, "annotation", i, x)?;
        let id = field_id(a_path, "annotation", i, rec, &["question_id"])?;
        let answers = rec
            .get("answers")
            .and_then(Value::as_array)
            .ok_or_else(|| err(a_path, format!("annotation #{i} (question_id {id}): missing or non-array \"answers\"")))?;
        let mut gts = Vec::with_capacity(answers.len());
        for (k, ans) in answers.iter().enumerate() {
            let ar = ans
                .as_object()
                .ok_or_else(|| err(a_path, format!("annotation #{i} (question_id {id}): answer #{k} is not an object")))?;
            let text = match ar.get("answer") {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    return Err(err(
                        a_path,
                        format!("annotation #{i} (question_id {id}): answer #{k} has no string \"answer\""),
                    ))
                }
            };
            let rest: BTreeMap<&String, &Value> = ar.iter().filter(|(key, _)| *key != "answer").collect();
            gts.push(GtAnswer { answer: text, identity: serde_json::to_string(&rest).unwrap_or_default() });
        }
        if gts.is_empty() {
            return Err(err(a_path, format!("annotation #{i} (question_id {id}): no answers")));
        }
        let opt = |k: &str| rec.get(k).and_then(Value::as_str).map(str::to_string);
        if by_id.insert(id.clone(), (gts, opt("question_type"), opt("answer_type"))).is_some() {
            return Err(err(a_path, format!("annotation #{i}: duplicate question_id {id}")));
        }
        ann_order.push(id);
    }
    let results = array(r_path, r, None)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut items = Vec::with_capacity(results.len());
    for (i, x) in results.iter().enumerate() {
        let rec = record(r_path, "result", i, x)?;
        let id = field_id(r_path, "result", i, rec, &["question_id"])?;
        let answer = field_str(r_path, "result", i, &id, rec, "answer")?;
        if let Some(j) = seen.insert(id.clone(), i) {
            return Err(err(r_path, format!("result #{i}: duplicate question_id {id} (also result #{j})")));
        }
        let (answers, qt, at) = by_id.get(&id).ok_or_else(|| {
            err(r_path, format!("result #{i}: question_id {id} is not in the annotation file {}", a_path.display()))
        })?;
        if !qids.is_empty() && !qids.contains(&id) {
            return Err(err(r_path, format!("result #{i}: question_id {id} is not in the questions file {}", q_path.display())));
        }
        items.push(VqaItem {
            question_id: id,
            prediction: answer.to_string(),
            answers: answers.clone(),
            question_type: qt.clone(),
            answer_type: at.clone(),
        });
    }
    if items.is_empty() {
        return Err(err(r_path, "no results to score"));
    }
    if mode == VqaMode::Official && items.len() != ann_order.len() {
        let missing: Vec<&String> = ann_order.iter().filter(|id| !seen.contains_key(*id)).take(5).collect();
        return Err(err(
            r_path,
            format!(
                "official mode needs a result for every annotated question (as vqaEval.py asserts): {} of {} \
                 questions have no result, e.g. question_id {}; use --mode openflamingo to score a subset",
                ann_order.len() - items.len(),
                ann_order.len(),
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(items)
}

/// One classification record.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassRecord {
    Binary { id: String, label: bool, score: f64 },
    Multi { id: String, label: usize, scores: Vec<f64> },
}

/// Read classification records from JSON (array) or CSV (by extension `.csv`).
pub fn read_classification(path: &Path) -> Result<Vec<ClassRecord>, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        classification_from_csv(path, &text)
    } else {
        classification_from_json(path, &parse_json(path, &text)?)
    }
}

fn finite(path: &Path, i: usize, id: &str, v: f64) -> Result<f64, FormatError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(err(path, format!("record #{i} (id {id}): score is not a finite number ({v})")))
    }
}

/// Parse classification records from a JSON array.
pub fn classification_from_json(path: &Path, v: &Value) -> Result<Vec<ClassRecord>, FormatError> {
    let recs = array(path, v, None)?;
    let mut out = Vec::with_capacity(recs.len());
    for (i, x) in recs.iter().enumerate() {
        let r = record(path, "record", i, x)?;
        let id = field_id(path, "record", i, r, &["id"])?;
        let label = r
            .get("label")
            .and_then(Value::as_u64)
            .ok_or_else(|| err(path, format!("record #{i} (id {id}): \"label\" must be a non-negative integer")))?;
        let num = |v: &Value| -> Result<f64, FormatError> {
            match v {
                Value::Number(n) => finite(path, i, &id, n.as_f64().unwrap_or(f64::NAN)),
                Value::String(s) if s.trim().eq_ignore_ascii_case("nan") => finite(path, i, &id, f64::NAN),
                other => Err(err(path, format!("record #{i} (id {id}): score must be a number, got {other}"))),
            }
        };
        if let Some(s) = r.get("score") {
            if label > 1 {
                return Err(err(path, format!("record #{i} (id {id}): binary \"label\" must be 0 or 1")));
            }
            let score = num(s)?;
            out.push(ClassRecord::Binary { id, label: label == 1, score });
        } else if let Some(Value::Array(ss)) = r.get("scores") {
            let scores = ss.iter().map(num).collect::<Result<Vec<_>, _>>()?;
            out.push(ClassRecord::Multi { id: id.clone(), label: label as usize, scores });
        } else {
            return Err(err(path, format!("record #{i} (id {id}): needs \"score\" (binary) or \"scores\" (array)")));
        }
    }
    check_classification(path, out)
}

/// Parse classification records from CSV with header `id,label,score` or `id,label,score_0,score_1,...`.
pub fn classification_from_csv(path: &Path, text: &str) -> Result<Vec<ClassRecord>, FormatError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| err(path, format!("malformed CSV header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (id_c, label_c) = match (col("id"), col("label")) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(err(path, "CSV header must contain \"id\" and \"label\" columns")),
    };
    let binary = col("score");
    let multi: Vec<usize> = (0..).map_while(|k| col(&format!("score_{k}"))).collect();
    if binary.is_none() && multi.is_empty() {
        return Err(err(path, "CSV header needs a \"score\" column or \"score_0\", \"score_1\", ... columns"));
    }
    let mut out = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| err(path, format!("record #{i}: malformed CSV: {e}")))?;
        let id = row.get(id_c).unwrap_or("").to_string();
        let label: u64 = row
            .get(label_c)
            .unwrap_or("")
            .parse()
            .map_err(|_| err(path, format!("record #{i} (id {id}): \"label\" must be a non-negative integer")))?;
        let parse = |s: &str| -> Result<f64, FormatError> {
            let v: f64 = s.parse().map_err(|_| err(path, format!("record #{i} (id {id}): score {s:?} is not a number")))?;
            finite(path, i, &id, v)
        };
        if let Some(b) = binary {
            if label > 1 {
                return Err(err(path, format!("record #{i} (id {id}): binary \"label\" must be 0 or 1")));
            }
            let score = parse(row.get(b).unwrap_or(""))?;
            out.push(ClassRecord::Binary { id, label: label == 1, score });
        } else {
            let scores = multi.iter().map(|&c| parse(row.get(c).unwrap_or(""))).collect::<Result<Vec<_>, _>>()?;
            out.push(ClassRecord::Multi { id: id.clone(), label: label as usize, scores });
        }
    }
    check_classification(path, out)
}

fn check_classification(path: &Path, recs: Vec<ClassRecord>) -> Result<Vec<ClassRecord>, FormatError> {
    if recs.is_empty() {
        return Err(err(path, "no records to score"));
    }
    let mut seen = HashSet::new();
    let binary = matches!(recs[0], ClassRecord::Binary { .. });
    for (i, r) in recs.iter().enumerate() {
        let (id, is_bin) = match r {
            ClassRecord::Binary { id, .. } => (id, true),
            ClassRecord::Multi { id, label, scores } => {
                if *label >= scores.len() {
                    return Err(err(path, format!("record #{i} (id {id}): label {label} but only {} scores", scores.len())));
                }
                if let ClassRecord::Multi { scores: s0, .. } = &recs[0] {
                    if s0.len() != scores.len() {
                        return Err(err(path, format!("record #{i} (id {id}): {} scores, but record #0 has {}", scores.len(), s0.len())));
                    }
                }
                (id, false)
            }
        };
        if is_bin != binary {
            return Err(err(path, format!("record #{i} (id {id}): mixes binary and multi-class records")));
        }
        if !seen.insert(id.clone()) {
            return Err(err(path, format!("record #{i}: duplicate id {id}")));
        }
    }
    Ok(recs)
}

/// Read video-QA annotations and results into (id, prediction, answer) in results order.
pub fn read_videoqa_files(a_path: &Path, r_path: &Path) -> Result<Vec<(String, String, String)>, FormatError> {
    let a = read_json(a_path)?;
    let r = read_json(r_path)?;
    videoqa_inputs(a_path, &a, r_path, &r)
}

/// Same as [`read_videoqa_files`] on parsed JSON.
pub fn videoqa_inputs(a_path: &Path, a: &Value, r_path: &Path, r: &Value) -> Result<Vec<(String, String, String)>, FormatError> {
    let anns = array(a_path, a, None)?;
    let mut gold: HashMap<String, String> = HashMap::new();
    for (i, x) in anns.iter().enumerate() {
        let rec = record(a_path, "annotation", i, x)?;
        let id = field_id(a_path, "annotation", i, rec, &["question_id", "id"])?;
        let ans = field_str(a_path, "annotation", i, &id, rec, "answer")?;
        if gold.insert(id.clone(), ans.to_string()).is_some() {
            return Err(err(a_path, format!("annotation #{i}: duplicate id {id}")));
        }
    }
    let results = array(r_path, r, None)?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(results.len());
    for (i, x) in results.iter().enumerate() {
        let rec = record(r_path, "result", i, x)?;
        let id = field_id(r_path, "result", i, rec, &["question_id", "id"])?;
        let pred = field_str(r_path, "result", i, &id, rec, "answer")?;
        if !seen.insert(id.clone()) {
            return Err(err(r_path, format!("result #{i}: duplicate question_id {id}")));
        }
        let g = gold
            .get(&id)
            .ok_or_else(|| err(r_path, format!("result #{i}: question_id {id} is not in {}", a_path.display())))?;
        out.push((id, pred.to_string(), g.clone()));
    }
    if out.is_empty() {
        return Err(err(r_path, "no results to score"));
    }
    Ok(out)
}
