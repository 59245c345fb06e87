//! VQA accuracy (VQAv2, OK-VQA, TextVQA, VizWiz) in two modes.
//!
//! * [`VqaMode::Official`] reproduces the VQA team's `vqaEval.py` (GT-Vision-Lab/VQA master, commit
//!   a013f00, the version after the 2021 "processing answers" fix): answers are cleaned of newlines/tabs
//!   and stripped; only when the ground-truth answers are NOT all identical are the ground truths AND
//!   the prediction normalised (punctuation, then digits/articles/contractions). So `Yes` against ten
//!   `yes` scores 0, exactly as the official tool does.
//! * [`VqaMode::OpenFlamingo`] reproduces OpenFlamingo's copy (`open_flamingo/eval/vqa_metric.py` at
//!   655f693): prediction and ground truths are always fully normalised.
//!
//! Quirks reproduced on purpose (both modes): the period regex removes at most 32 periods (the official
//! code passes `re.UNICODE` as the `count` argument of `re.sub`), its broken look-behind removes every
//! period not followed by a digit, and the leave-one-out subsets are built by dict inequality, so answer
//! records that are identical in every field (e.g. VizWiz answers, which have no `answer_id`) are left
//! out together. [`GtAnswer::identity`] carries the non-answer fields for that comparison.
//!
//! Not here: reading files (see [`super::formats`]).

use super::numeric::{py_split, py_strip, python_round, python_sum};
use serde::Serialize;

/// Which evaluator's rules to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VqaMode {
    /// The VQA team's `vqaEval.py`.
    Official,
    /// OpenFlamingo's more lenient copy.
    OpenFlamingo,
}

impl VqaMode {
    /// Human-readable statement of which implementation's rules produce the numbers.
    pub fn describe(self) -> &'static str {
        match self {
            VqaMode::Official => "VQA accuracy (official vqaEval.py rules, GT-Vision-Lab/VQA a013f00)",
            VqaMode::OpenFlamingo => {
                "VQA accuracy (OpenFlamingo rules, open_flamingo/eval/vqa_metric.py 655f693)"
            }
        }
    }
}

/// One ground-truth answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtAnswer {
    pub answer: String,
    /// Canonical form of the record's other fields (`answer_confidence`, `answer_id`, ...). Two records
    /// with equal answers and equal identity are the same record to the official evaluator.
    pub identity: String,
}

/// One question to score.
#[derive(Debug, Clone)]
pub struct VqaItem {
    pub question_id: String,
    pub prediction: String,
    pub answers: Vec<GtAnswer>,
    pub question_type: Option<String>,
    pub answer_type: Option<String>,
}

/// Aggregate VQA scores: percentages rounded to 2 decimals, as the official tool reports them.
#[derive(Debug, Clone, Serialize)]
pub struct VqaReport {
    pub overall: f64,
    /// In order of first appearance.
    pub per_answer_type: Vec<(String, f64)>,
    pub per_question_type: Vec<(String, f64)>,
    /// Unrounded per-question accuracy in [0, 1], in input order (use these for bootstrap).
    pub per_question: Vec<f64>,
}

const PUNCT: [char; 21] = [
    ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?',
    '!',
];

/// Python 3 `re` `\d`: Unicode decimal digits (category Nd).
fn is_py_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    // Rust has no Nd table: take the numeric characters and exclude the common No/Nl ranges
    // (superscripts, fractions, roman numerals, circled numbers, CJK/astral numerals).
    c.is_numeric()
        && !matches!(c as u32,
            0xB2 | 0xB3 | 0xB9 | 0xBC..=0xBE | 0x9F4..=0x9F9 | 0xBF0..=0xBF2 | 0xF2A..=0xF33
            | 0x1369..=0x137C | 0x16EE..=0x16F0 | 0x17F0..=0x17F9 | 0x2070..=0x2079 | 0x2080..=0x2089
            | 0x2150..=0x218B | 0x2460..=0x249B | 0x24EA..=0x24FF | 0x2776..=0x2793 | 0x2CFD
            | 0x3007 | 0x3021..=0x3029 | 0x3038..=0x303A | 0x3192..=0x3195 | 0x3220..=0x3229
            | 0x3248..=0x324F | 0x3251..=0x325F | 0x3280..=0x3289 | 0x32B1..=0x32BF
            | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x10000..)
}

/// Python 3 `re` `\d` / `str.isdecimal` for one character (Unicode category Nd).
pub fn is_decimal_digit(c: char) -> bool {
    is_py_digit(c)
}

fn has_digit_comma_digit(s: &[char]) -> bool {
    s.windows(3).any(|w| is_py_digit(w[0]) && w[1] == ',' && is_py_digit(w[2]))
}

/// The official `processPunctuation` step.
pub fn process_punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let comma_digit = has_digit_comma_digit(&chars);
    let mut delete = [false; 21];
    for (k, &p) in PUNCT.iter().enumerate() {
        delete[k] = comma_digit
            || chars.windows(2).any(|w| (w[0] == p && w[1] == ' ') || (w[0] == ' ' && w[1] == p));
    }
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    for &c in &chars {
        match PUNCT.iter().position(|&p| p == c) {
            Some(k) if delete[k] => {}
            Some(_) => out.push(' '),
            None => out.push(c),
        }
    }
    // Period strip: `.` not followed by a digit, first 32 matches only (count = re.UNICODE = 32).
    let mut result = String::with_capacity(out.len());
    let mut removed = 0;
    for i in 0..out.len() {
        let c = out[i];
        if c == '.' && removed < 32 && !out.get(i + 1).is_some_and(|&n| is_py_digit(n)) {
            removed += 1;
            continue;
        }
        result.push(c);
    }
    result
}

/// The official `processDigitArticle` step: lowercase, split, number words to digits, drop articles,
/// restore contractions.
pub fn process_digit_article(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut out: Vec<&str> = Vec::new();
    for word in py_split(&lower) {
        let word = number_word(word).unwrap_or(word);
        if !matches!(word, "a" | "an" | "the") {
            out.push(word);
        }
    }
    let mapped: Vec<&str> = out.iter().map(|w| contraction(w).unwrap_or(w)).collect();
    mapped.join(" ")
}

fn number_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "none" | "zero" => "0",
        "one" => "1",
        "two" => "2",
        "three" => "3",
        "four" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        _ => return None,
    })
}

fn contraction(w: &str) -> Option<&'static str> {
    CONTRACTIONS.iter().find(|(k, _)| *k == w).map(|(_, v)| *v)
}

/// The most a prediction can score on a question with `k` annotator answers, all equal to it: the formula
/// averages min(1, matches among the other k−1 answers / 3) over the k leave-one-out subsets.
pub fn max_accuracy_with_answers(k: usize) -> f64 {
    (k.saturating_sub(1) as f64 / 3.0).min(1.0)
}

/// The loud warning for a question set where some questions have fewer than 10 annotator answers (the
/// VQA formula assumes 10), or None. `counts` holds each scored question's answer count; questions without
/// annotations (count 0) are not counted.
pub fn few_answers_warning(counts: impl IntoIterator<Item = usize>, declared: Option<usize>) -> Option<String> {
    let mut by_count = std::collections::BTreeMap::<usize, usize>::new();
    let mut total = 0usize;
    for k in counts.into_iter().filter(|&k| k > 0) {
        total += 1;
        if k < 10 {
            *by_count.entry(k).or_default() += 1;
        }
    }
    let few: usize = by_count.values().sum();
    if few == 0 {
        return None;
    }
    let detail: Vec<String> = by_count
        .iter()
        .map(|(k, n)| {
            format!("{n} with {k} answer{} (a perfect prediction scores {:.1}%)", if *k == 1 { "" } else { "s" }, 100.0 * max_accuracy_with_answers(*k))
        })
        .collect();
    let declared = match declared {
        Some(d) => format!(" (declared: metric.answers_per_question: {d})"),
        None => String::new(),
    };
    Some(format!(
        "WARNING: {few} of {total} questions have fewer than 10 annotator answers{declared}: {}. VQA accuracy is \
         computed as the official vqaEval.py does, averaging min(1, matching other answers / 3) over the \
         leave-one-out subsets, so such questions cannot get full credit and a question with one answer \
         always scores 0. For a set with one reference answer per question use `metric: {{name: exact_match}}` \
         in the benchmark file.",
        detail.join(", ")
    ))
}

/// Replace newline and tab by a space, then strip (applied to every answer before anything else).
pub fn clean_whitespace(text: &str) -> String {
    py_strip(&text.replace(['\n', '\t'], " ")).to_string()
}

/// Full normalisation (whitespace cleaning, punctuation, digits/articles/contractions): what OpenFlamingo
/// applies to every answer, and what the official tool applies when the ground truths disagree.
pub fn normalize_answer(text: &str) -> String {
    process_digit_article(&process_punctuation(&clean_whitespace(text)))
}

/// Accuracy in [0, 1] of one prediction against plain ground-truth strings (each a distinct record).
pub fn vqa_accuracy(pred: &str, gt_answers: &[String], mode: VqaMode) -> f64 {
    let recs: Vec<GtAnswer> = gt_answers
        .iter()
        .enumerate()
        .map(|(i, a)| GtAnswer { answer: a.clone(), identity: i.to_string() })
        .collect();
    vqa_accuracy_records(pred, &recs, mode)
}

/// Accuracy in [0, 1] of one prediction against ground-truth records, with the official
/// record-identity rule for the leave-one-out subsets.
pub fn vqa_accuracy_records(pred: &str, gt: &[GtAnswer], mode: VqaMode) -> f64 {
    if gt.is_empty() {
        return 0.0;
    }
    let mut answers: Vec<String> = gt.iter().map(|g| clean_whitespace(&g.answer)).collect();
    let mut res = clean_whitespace(pred);
    let normalise = match mode {
        VqaMode::OpenFlamingo => true,
        VqaMode::Official => answers.iter().any(|a| *a != answers[0]),
    };
    if normalise {
        for a in answers.iter_mut() {
            *a = process_digit_article(&process_punctuation(a));
        }
        res = process_digit_article(&process_punctuation(&res));
    }
    let mut accs = Vec::with_capacity(gt.len());
    for j in 0..gt.len() {
        let mut matching = 0usize;
        for k in 0..gt.len() {
            let same_record = answers[k] == answers[j] && gt[k].identity == gt[j].identity;
            if !same_record && answers[k] == res {
                matching += 1;
            }
        }
        accs.push(if matching >= 3 { 1.0 } else { matching as f64 / 3.0 });
    }
    python_sum(&accs) / accs.len() as f64
}

/// Score a set of questions: overall, per answer type and per question type, as the reference tools
/// report them (percent, rounded to 2 decimals).
///
/// A question without `question_type` (or, in official mode, without `answer_type`) counts in `overall`
/// but in no per-type row (the official tool raises KeyError on such files). In OpenFlamingo mode a
/// missing `answer_type` is grouped as `other`, as OpenFlamingo does.
pub fn evaluate_vqa(items: &[VqaItem], mode: VqaMode) -> VqaReport {
    let per_question: Vec<f64> =
        items.iter().map(|it| vqa_accuracy_records(&it.prediction, &it.answers, mode)).collect();
    let mut qt: Vec<(String, Vec<f64>)> = Vec::new();
    let mut at: Vec<(String, Vec<f64>)> = Vec::new();
    fn push(groups: &mut Vec<(String, Vec<f64>)>, key: &str, v: f64) {
        match groups.iter_mut().find(|(k, _)| k == key) {
            Some((_, vs)) => vs.push(v),
            None => groups.push((key.to_string(), vec![v])),
        }
    }
    for (it, &acc) in items.iter().zip(&per_question) {
        if let Some(q) = &it.question_type {
            push(&mut qt, q, acc);
        }
        match (&it.answer_type, mode) {
            (Some(a), _) => push(&mut at, a, acc),
            (None, VqaMode::OpenFlamingo) => push(&mut at, "other", acc),
            (None, VqaMode::Official) => {}
        }
    }
    VqaReport {
        overall: mean_percent(&per_question),
        per_answer_type: at.iter().map(|(k, v)| (k.clone(), mean_percent(v))).collect(),
        per_question_type: qt.iter().map(|(k, v)| (k.clone(), mean_percent(v))).collect(),
        per_question,
    }
}

/// `round(100 * sum(v) / len(v), 2)` with Python's left-to-right sum.
pub fn mean_percent(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    python_round(100.0 * python_sum(v) / v.len() as f64, 2)
}

/// Per-question accuracy as the official tool stores it in `evalQA` (percent, 2 decimals).
pub fn rounded_percent(acc: f64) -> f64 {
    python_round(100.0 * acc, 2)
}

/// The official contraction table (identical in vqaEval.py and OpenFlamingo's copy). Keys with capital
/// letters can never match (answers are lowercased first) but are kept for fidelity.
static CONTRACTIONS: &[(&str, &str)] = &[
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("Id've", "I'd've"),
    ("I'dve", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

#[cfg(test)]
mod tests {
    use super::*;
    fn ten(a: &str) -> Vec<String> {
        vec![a.to_string(); 10]
    }
    #[test]
    fn official_identical_answers_not_normalised() {
        assert_eq!(vqa_accuracy("Yes", &ten("yes"), VqaMode::Official), 0.0);
        assert_eq!(vqa_accuracy("Yes", &ten("yes"), VqaMode::OpenFlamingo), 1.0);
        assert_eq!(vqa_accuracy("yes", &ten("yes"), VqaMode::Official), 1.0);
    }
    #[test]
    fn k_matches() {
        let mut gt = ten("no");
        gt[0] = "yes".into();
        assert!((vqa_accuracy("yes", &gt, VqaMode::Official) - 0.3).abs() < 1e-12);
        gt[1] = "yes".into();
        assert!((vqa_accuracy("yes", &gt, VqaMode::Official) - 0.6).abs() < 1e-12);
    }
    #[test]
    fn punctuation_rules() {
        assert_eq!(normalize_answer("Two dogs!"), "2 dogs");
        assert_eq!(normalize_answer("1,000"), "1000");
        assert_eq!(normalize_answer("3.5 ft."), "3.5 ft");
        assert_eq!(normalize_answer("the dont"), "don't");
        assert_eq!(process_punctuation("a-b"), "a b");
        assert_eq!(process_punctuation("a - b"), "a  b");
    }
}
