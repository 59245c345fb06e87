//! nltk's `WordNetLemmatizer().lemmatize(word, "v")` over WordNet 3.0: the exception list (verb.exc) or
//! else WordNet's detachment rules give candidate forms; those that are verb lemmas in WordNet are kept
//! (the word itself first) and the shortest (first among equals) wins; with none, the word is unchanged.
//! Tables derived from Debian's wordnet-base by scripts/okvqa_reference/make_wordnet_verbs.py
//! (data/wordnet/, WordNet licence in data/wordnet/LICENSE).

use once_cell::sync::Lazy;
use std::collections::{HashMap, HashSet};

static LEMMAS: Lazy<HashSet<&'static str>> = Lazy::new(|| include_str!("../../../data/wordnet/verb_lemmas.txt").lines().collect());

static EXCEPTIONS: Lazy<HashMap<&'static str, Vec<&'static str>>> = Lazy::new(|| {
    let mut m = HashMap::new();
    for line in include_str!("../../../data/wordnet/verb.exc").lines() {
        let mut terms = line.split_whitespace();
        if let Some(form) = terms.next() {
            m.insert(form, terms.collect()); // a later line for the same form replaces an earlier one
        }
    }
    m
});

const VERB_RULES: [(&str, &str); 8] =
    [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")];

pub fn lemmatize_verb(word: &str) -> String {
    let mut forms: Vec<String> = vec![word.to_string()];
    match EXCEPTIONS.get(word) {
        Some(bases) => forms.extend(bases.iter().map(|b| b.to_string())),
        None => {
            for (old, new) in VERB_RULES {
                if let Some(stem) = word.strip_suffix(old) {
                    forms.push(format!("{stem}{new}"));
                }
            }
        }
    }
    let mut seen = HashSet::new();
    let lemmas: Vec<String> = forms.into_iter().filter(|f| LEMMAS.contains(f.as_str()) && seen.insert(f.clone())).collect();
    // min by length: the first of the shortest (Python's min keeps the first minimum)
    let mut best: Option<&String> = None;
    for l in &lemmas {
        if best.is_none_or(|b| l.chars().count() < b.chars().count()) {
            best = Some(l);
        }
    }
    best.cloned().unwrap_or_else(|| word.to_string())
}
