//! nltk's `word_tokenize` word step (`NLTKWordTokenizer`, nltk 3.10.4) as OpenFlamingo's OK-VQA stemmer
//! calls it on each Punkt sentence ([`super::punkt`]), reimplemented from its documented rewrite rules:
//! quotes, punctuation, brackets, dashes, contractions, then a whitespace split.

use crate::metrics::numeric::py_split;
use once_cell::sync::Lazy;
use regex::Regex;

struct Rule(Regex, &'static str);

fn rules(list: &[(&str, &'static str)]) -> Vec<Rule> {
    list.iter().map(|(p, r)| Rule(Regex::new(p).expect("tokenizer rule"), r)).collect()
}

static STARTING_QUOTES: Lazy<Vec<Rule>> = Lazy::new(|| {
    rules(&[(r"([«“‘„]|[`]+)", " ${1} "), (r#"^""#, "``"), (r"(``)", " ${1} "), (r#"([ \(\[{<])("|'{2})"#, "${1} `` ")])
});

static PUNCTUATION: Lazy<Vec<Rule>> = Lazy::new(|| {
    rules(&[
        (r#"([^\.])(\.)([\]\)}>"'»”’ ]*)\s*\z"#, "${1} ${2} ${3} "),
        (r"([:,])([^\d])", " ${1} ${2}"),
        (r"([:,])(\n?)\z", " ${1} ${2}"),
        (r"\.{2,}", " ${0} "),
        (r"[;@#$%&]", " ${0} "),
        (r"[\x{2012}-\x{2015}]", " ${0} "),
        (r#"([^\.])(\.)([\]\)}>"']*)\s*\z"#, "${1} ${2}${3} "),
        (r"[?!]", " ${0} "),
        (r"([^'])' ", "${1} ' "),
        (r"[*]", " ${0} "),
    ])
});

static PARENS: Lazy<Regex> = Lazy::new(|| Regex::new(r"[\]\[\(\)\{\}<>]").unwrap());
static DOUBLE_DASHES: Lazy<Regex> = Lazy::new(|| Regex::new(r"--").unwrap());

static ENDING_QUOTES: Lazy<Vec<Rule>> = Lazy::new(|| {
    rules(&[
        (r"([»”’])", " ${1} "),
        (r"''", " '' "),
        (r#"""#, " '' "),
        (r"\s+", " "),
        (r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} "),
        (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "${1} ${2} "),
    ])
});

static CONTRACTIONS: Lazy<Vec<Rule>> = Lazy::new(|| {
    rules(&[
        (r"(?i)\b(can)(not)\b", " ${1} ${2} "),
        (r"(?i)\b(d)('ye)\b", " ${1} ${2} "),
        (r"(?i)\b(gim)(me)\b", " ${1} ${2} "),
        (r"(?i)\b(gon)(na)\b", " ${1} ${2} "),
        (r"(?i)\b(got)(ta)\b", " ${1} ${2} "),
        (r"(?i)\b(lem)(me)\b", " ${1} ${2} "),
        (r"(?i)\b(more)('n)\b", " ${1} ${2} "),
        // `wan` `na` followed by whitespace (a look-ahead in nltk: the whitespace is kept)
        (r"(?i)\b(wan)(na)(\s)", " ${1} ${2} ${3}"),
        (r"(?i) ('t)(is)\b", " ${1} ${2} "),
        (r"(?i) ('t)(was)\b", " ${1} ${2} "),
    ])
});

fn apply(text: String, rules: &[Rule]) -> String {
    rules.iter().fold(text, |t, Rule(re, rep)| re.replace_all(&t, *rep).into_owned())
}

/// Python's `\w` for one character (letters, digits, underscore; Unicode).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// nltk's opening-apostrophe rule: an apostrophe not preceded by a word character, followed by one, and
/// not starting a contraction (`'re 've 'll 'm 't 's 'd 'n` + word boundary, any case) gets a space after it.
fn split_opening_apostrophes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        out.push(c);
        if c != '\'' || (i > 0 && is_word(chars[i - 1])) || !chars.get(i + 1).is_some_and(|&n| is_word(n)) {
            continue;
        }
        let rest: String = chars[i + 1..].iter().take(3).collect::<String>().to_lowercase();
        let contraction = ["re", "ve", "ll", "m", "t", "s", "d", "n"].iter().any(|k| {
            rest.starts_with(k) && !chars.get(i + 1 + k.chars().count()).is_some_and(|&n| is_word(n))
        });
        if !contraction {
            out.push(' ');
        }
    }
    out
}

/// The tokens nltk's `NLTKWordTokenizer().tokenize(text)` returns.
pub fn word_tokenize(text: &str) -> Vec<String> {
    let mut t = apply(text.to_string(), &STARTING_QUOTES);
    t = split_opening_apostrophes(&t);
    t = apply(t, &PUNCTUATION);
    t = PARENS.replace_all(&t, " ${0} ").into_owned();
    t = DOUBLE_DASHES.replace_all(&t, " -- ").into_owned();
    t = format!(" {t} ");
    t = apply(t, &ENDING_QUOTES);
    t = apply(t, &CONTRACTIONS);
    py_split(&t).map(str::to_string).collect()
}
