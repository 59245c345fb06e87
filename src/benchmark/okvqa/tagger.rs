//! nltk's averaged-perceptron part-of-speech tagger (`nltk.pos_tag`, English), reimplemented: the same
//! features, word normalisation, tag dictionary and scoring (per label, weights summed in feature order;
//! the best (score, label) pair wins). The model is nltk's own `averaged_perceptron_tagger_eng` (JSON
//! weights, tag dictionary, classes), read from an nltk_data folder: it ships in no package, and it is what
//! OpenFlamingo's evaluation loads (`python -m nltk.downloader averaged_perceptron_tagger_eng`).

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct PerceptronTagger {
    /// feature -> [(class index, weight)]
    weights: HashMap<String, Vec<(usize, f64)>>,
    tagdict: HashMap<String, String>,
    /// Sorted ascending (ties between equal scores go to the greatest label).
    classes: Vec<String>,
    pub source: PathBuf,
}

pub const MODEL_DIR: &str = "taggers/averaged_perceptron_tagger_eng";

/// The folders nltk searches for its data, in its order: `NLTK_DATA` (colon-separated), then
/// ~/nltk_data and the system locations.
pub fn nltk_data_dirs() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::env::var("NLTK_DATA")
        .map(|v| v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        out.push(Path::new(&home).join("nltk_data"));
    }
    for p in ["/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data", "/usr/local/lib/nltk_data"] {
        out.push(PathBuf::from(p));
    }
    out
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

impl PerceptronTagger {
    /// Loads a model folder holding `averaged_perceptron_tagger_eng.{weights,tagdict,classes}.json`.
    pub fn load(dir: &Path) -> Result<PerceptronTagger> {
        let f = |attr: &str| dir.join(format!("averaged_perceptron_tagger_eng.{attr}.json"));
        let classes_v = read_json(&f("classes"))?;
        let mut classes: Vec<String> = classes_v
            .as_array()
            .ok_or_else(|| anyhow!("{}: expected a list of tags", f("classes").display()))?
            .iter()
            .map(|c| c.as_str().map(str::to_string).ok_or_else(|| anyhow!("{}: a tag is not text", f("classes").display())))
            .collect::<Result<_>>()?;
        classes.sort();
        classes.dedup();
        let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let wpath = f("weights");
        let wv = read_json(&wpath)?;
        let wobj = wv.as_object().ok_or_else(|| anyhow!("{}: expected {{feature: {{tag: weight}}}}", wpath.display()))?;
        let mut weights = HashMap::with_capacity(wobj.len());
        for (feat, per) in wobj {
            let per = per.as_object().ok_or_else(|| anyhow!("{}: feature {feat:?}: expected {{tag: weight}}", wpath.display()))?;
            let mut row = Vec::with_capacity(per.len());
            for (tag, w) in per {
                let c = *index.get(tag.as_str()).ok_or_else(|| anyhow!("{}: feature {feat:?}: tag {tag:?} is not in the classes", wpath.display()))?;
                let w = w.as_f64().ok_or_else(|| anyhow!("{}: feature {feat:?}: weight is not a number", wpath.display()))?;
                row.push((c, w));
            }
            weights.insert(feat.clone(), row);
        }
        let tpath = f("tagdict");
        let tv = read_json(&tpath)?;
        let tagdict = tv
            .as_object()
            .ok_or_else(|| anyhow!("{}: expected {{word: tag}}", tpath.display()))?
            .iter()
            .map(|(w, t)| t.as_str().map(|t| (w.clone(), t.to_string())).ok_or_else(|| anyhow!("{}: {w:?}: tag is not text", tpath.display())))
            .collect::<Result<_>>()?;
        Ok(PerceptronTagger { weights, tagdict, classes, source: dir.to_path_buf() })
    }

    /// Tags of `tokens` (nltk's `PerceptronTagger.tag`).
    pub fn tag(&self, tokens: &[String]) -> Vec<String> {
        let mut context: Vec<String> = vec!["-START-".into(), "-START2-".into()];
        context.extend(tokens.iter().map(|w| normalize(w)));
        context.extend(["-END-".to_string(), "-END2-".to_string()]);
        let (mut prev, mut prev2) = ("-START-".to_string(), "-START2-".to_string());
        let mut out = Vec::with_capacity(tokens.len());
        for (i, word) in tokens.iter().enumerate() {
            let tag = match self.tagdict.get(word).filter(|t| !t.is_empty()) {
                Some(t) => t.clone(),
                None => self.predict(&features(i, word, &context, &prev, &prev2)),
            };
            prev2 = std::mem::replace(&mut prev, tag.clone());
            out.push(tag);
        }
        out
    }

    fn predict(&self, features: &[String]) -> String {
        let mut scores = vec![0.0f64; self.classes.len()];
        for f in features {
            if let Some(row) = self.weights.get(f) {
                for &(c, w) in row {
                    scores[c] += w;
                }
            }
        }
        // max over (score, label); classes are sorted, so the last maximum is the greatest label
        let mut best = 0;
        for c in 1..self.classes.len() {
            if scores[c] >= scores[best] {
                best = c;
            }
        }
        self.classes.get(best).cloned().unwrap_or_default()
    }
}

/// Python's `str.isdigit` for one character: decimal digits plus the other Numeric_Type=Digit characters
/// (superscripts, subscripts, circled and parenthesised digits).
fn py_isdigit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let u = c as u32;
    matches!(u, 0xB2 | 0xB3 | 0xB9 | 0x2070 | 0x2074..=0x2079 | 0x2080..=0x2089 | 0x2460..=0x2468 | 0x2474..=0x247C
        | 0x2488..=0x2490 | 0x24EA | 0x24F5..=0x24FD | 0x24FF | 0x2776..=0x277E | 0x2780..=0x2788 | 0x278A..=0x2792
        | 0x1369..=0x1371 | 0x19DA | 0x10A40..=0x10A43 | 0x1F100..=0x1F10A)
        || crate::metrics::vqa::is_decimal_digit(c)
}

/// nltk's word normalisation for the tagger's context.
fn normalize(word: &str) -> String {
    let first = word.chars().next();
    if word.contains('-') && first != Some('-') {
        return "!HYPHEN".into();
    }
    if !word.is_empty() && word.chars().all(py_isdigit) && word.chars().count() == 4 {
        return "!YEAR".into();
    }
    if first.is_some_and(py_isdigit) {
        return "!DIGITS".into();
    }
    word.to_lowercase()
}

fn last3(s: &str) -> String {
    let n = s.chars().count();
    s.chars().skip(n.saturating_sub(3)).collect()
}

fn features(i: usize, word: &str, context: &[String], prev: &str, prev2: &str) -> Vec<String> {
    let i = i + 2;
    let first: String = word.chars().next().map(String::from).unwrap_or_default();
    vec![
        "bias".to_string(),
        format!("i suffix {}", last3(word)),
        format!("i pref1 {first}"),
        format!("i-1 tag {prev}"),
        format!("i-2 tag {prev2}"),
        format!("i tag+i-2 tag {prev} {prev2}"),
        format!("i word {}", context[i]),
        format!("i-1 tag+i word {prev} {}", context[i]),
        format!("i-1 word {}", context[i - 1]),
        format!("i-1 suffix {}", last3(&context[i - 1])),
        format!("i-2 word {}", context[i - 2]),
        format!("i+1 word {}", context[i + 1]),
        format!("i+1 suffix {}", last3(&context[i + 1])),
        format!("i+2 word {}", context[i + 2]),
    ]
}
