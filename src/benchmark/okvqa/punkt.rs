//! nltk's Punkt sentence splitter (`sent_tokenize`, nltk 3.10.4), which `word_tokenize` applies before the
//! word rules, reimplemented: candidate sentence ends (`.`, `?`, `!` before punctuation or whitespace and a
//! token), Punkt's word split of each candidate's context, the first pass (abbreviations, ellipses) and the
//! second pass (collocations, orthographic and sentence-starter heuristics for abbreviations, initials and
//! numbers), then boundary realignment for closing quotes and brackets. The parameters are nltk's English
//! model (`tokenizers/punkt_tab/english/`: abbrev_types.txt, collocations.tab, sent_starters.txt,
//! ortho_context.tab), read from an nltk_data folder: it ships in no package; OpenFlamingo's evaluation
//! needs it too (`python -m nltk.downloader punkt_tab`).

use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub const MODEL_DIR: &str = "tokenizers/punkt_tab/english";

const ORTHO_BEG_UC: u32 = 1 << 1;
const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UNK_UC: u32 = 1 << 3;
const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_LC: u32 = 1 << 5;
const ORTHO_UNK_LC: u32 = 1 << 6;
const ORTHO_UC: u32 = ORTHO_BEG_UC | ORTHO_MID_UC | ORTHO_UNK_UC;
const ORTHO_LC: u32 = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC;

pub struct Punkt {
    abbrev_types: HashSet<String>,
    collocations: HashSet<(String, String)>,
    sent_starters: HashSet<String>,
    ortho_context: HashMap<String, u32>,
    pub source: PathBuf,
}

fn lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    // Python's text-mode line iteration (universal newlines), each line without its newline
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: Vec<String> = text.split('\n').map(str::to_string).collect();
    if out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    Ok(out)
}

impl Punkt {
    pub fn load(dir: &Path) -> Result<Punkt> {
        let pair = |l: &str| {
            let mut it = l.splitn(2, '\t');
            (it.next().unwrap_or("").to_string(), it.next().unwrap_or("").to_string())
        };
        let ortho_path = dir.join("ortho_context.tab");
        let mut ortho_context = HashMap::new();
        for l in lines(&ortho_path)? {
            let (k, v) = pair(&l);
            let v: u32 = v.trim().parse().with_context(|| format!("{}: {l:?}: not `type<TAB>integer`", ortho_path.display()))?;
            ortho_context.insert(k, v);
        }
        Ok(Punkt {
            abbrev_types: lines(&dir.join("abbrev_types.txt"))?.into_iter().collect(),
            collocations: lines(&dir.join("collocations.tab"))?.iter().map(|l| pair(l)).collect(),
            sent_starters: lines(&dir.join("sent_starters.txt"))?.into_iter().collect(),
            ortho_context,
            source: dir.to_path_buf(),
        })
    }

    fn ortho(&self, typ: &str) -> u32 {
        self.ortho_context.get(typ).copied().unwrap_or(0)
    }

    /// The sentences of `text` (nltk's `PunktTokenizer("english").tokenize`).
    pub fn sentences(&self, text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let slices = self.realign(&chars, self.slices(&chars));
        slices.into_iter().map(|(a, b)| chars[a..b].iter().collect()).collect()
    }

    fn slices(&self, t: &[char]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut last_break = 0;
        for (m, context) in potential_end_contexts(t) {
            if self.contains_sentbreak(&context) {
                out.push((last_break, m.end));
                last_break = m.next_tok_start.unwrap_or(m.end);
            }
        }
        let stripped = t.len() - t.iter().rev().take_while(|c| py_space(**c)).count();
        out.push((last_break, stripped));
        out
    }

    fn realign(&self, t: &[char], slices: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut realign = 0;
        for i in 0..slices.len() {
            let s1 = (slices[i].0 + realign, slices[i].1);
            let nonempty = |s: (usize, usize)| s.0 < s.1.min(t.len());
            match slices.get(i + 1) {
                None => {
                    if nonempty(s1) {
                        out.push(s1);
                    }
                }
                Some(&s2) => match boundary_realignment(&t[s2.0..s2.1.max(s2.0)]) {
                    Some((end, trimmed)) => {
                        out.push((s1.0, s2.0 + trimmed));
                        realign = end;
                    }
                    None => {
                        realign = 0;
                        if nonempty(s1) {
                            out.push(s1);
                        }
                    }
                },
            }
        }
        out
    }

    fn contains_sentbreak(&self, context: &[char]) -> bool {
        let toks = self.annotate(tokenize_words(context));
        let mut found = false;
        for t in toks {
            if found {
                return true;
            }
            if t.sentbreak {
                found = true;
            }
        }
        false
    }

    fn annotate(&self, mut toks: Vec<Token>) -> Vec<Token> {
        for t in toks.iter_mut() {
            self.first_pass(t);
        }
        for i in 0..toks.len() {
            if i + 1 < toks.len() {
                let (a, b) = toks.split_at_mut(i + 1);
                self.second_pass(&mut a[i], &b[0]);
            }
        }
        toks
    }

    fn first_pass(&self, t: &mut Token) {
        let tok = &t.tok;
        if tok == "." || tok == "?" || tok == "!" {
            t.sentbreak = true;
        } else if t.is_ellipsis() {
            t.ellipsis = true;
        } else if t.period_final() && !tok.ends_with("..") {
            let stem: String = tok.chars().take(tok.chars().count() - 1).collect::<String>().to_lowercase();
            let last = stem.rsplit('-').next().unwrap_or("").to_string();
            if self.abbrev_types.contains(&stem) || self.abbrev_types.contains(&last) {
                t.abbr = true;
            } else {
                t.sentbreak = true;
            }
        }
    }

    fn second_pass(&self, t1: &mut Token, t2: &Token) {
        if !t1.period_final() {
            return;
        }
        let typ = t1.type_no_period();
        let next_typ = t2.type_no_sentperiod();
        let initial = t1.is_initial();
        if self.collocations.contains(&(typ.clone(), next_typ.clone())) {
            t1.sentbreak = false;
            t1.abbr = true;
            return;
        }
        if (t1.abbr || t1.ellipsis) && !initial {
            match self.ortho_heuristic(t2) {
                Ortho::Yes => {
                    t1.sentbreak = true;
                    return;
                }
                _ => {
                    if t2.first_upper() && self.sent_starters.contains(&next_typ) {
                        t1.sentbreak = true;
                        return;
                    }
                }
            }
        }
        if initial || typ == "##number##" {
            let h = self.ortho_heuristic(t2);
            if h == Ortho::No {
                t1.sentbreak = false;
                t1.abbr = true;
                return;
            }
            if h == Ortho::Unknown && initial && t2.first_upper() && self.ortho(&next_typ) & ORTHO_LC == 0 {
                t1.sentbreak = false;
                t1.abbr = true;
            }
        }
    }

    fn ortho_heuristic(&self, t: &Token) -> Ortho {
        if [";", ":", ",", ".", "!", "?"].contains(&t.tok.as_str()) {
            return Ortho::No;
        }
        let oc = self.ortho(&t.type_no_sentperiod());
        if t.first_upper() && oc & ORTHO_LC != 0 && oc & ORTHO_MID_UC == 0 {
            return Ortho::Yes;
        }
        if t.first_lower() && (oc & ORTHO_UC != 0 || oc & ORTHO_BEG_LC == 0) {
            return Ortho::No;
        }
        Ortho::Unknown
    }
}

#[derive(PartialEq, Eq)]
enum Ortho {
    Yes,
    No,
    Unknown,
}

struct Token {
    tok: String,
    typ: String,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

impl Token {
    fn new(tok: String) -> Token {
        let typ = numeric_type(&tok.to_lowercase());
        Token { tok, typ, sentbreak: false, abbr: false, ellipsis: false }
    }
    fn period_final(&self) -> bool {
        self.tok.ends_with('.')
    }
    fn type_no_period(&self) -> String {
        if self.typ.chars().count() > 1 && self.typ.ends_with('.') {
            self.typ[..self.typ.len() - 1].to_string()
        } else {
            self.typ.clone()
        }
    }
    fn type_no_sentperiod(&self) -> String {
        if self.sentbreak {
            self.type_no_period()
        } else {
            self.typ.clone()
        }
    }
    fn first_upper(&self) -> bool {
        self.tok.chars().next().is_some_and(|c| c.is_uppercase())
    }
    fn first_lower(&self) -> bool {
        self.tok.chars().next().is_some_and(|c| c.is_lowercase())
    }
    fn is_ellipsis(&self) -> bool {
        self.tok.chars().count() >= 2 && self.tok.chars().all(|c| c == '.')
    }
    fn is_initial(&self) -> bool {
        let c: Vec<char> = self.tok.chars().collect();
        c.len() == 2 && is_alpha(c[0]) && c[1] == '.'
    }
}

/// Python `[^\W\d]`: a word character that is not a digit.
fn is_alpha(c: char) -> bool {
    (c.is_alphanumeric() || c == '_') && !crate::metrics::vqa::is_decimal_digit(c)
}

/// `^-?[\.,]?\d[\d,\.-]*\.?$` → `##number##` (the whole token, lower-cased, or unchanged).
fn numeric_type(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let d = crate::metrics::vqa::is_decimal_digit;
    let mut i = 0;
    if c.get(i) == Some(&'-') {
        i += 1;
    }
    // `[\.,]?` then `\d`: try with and without the optional char (backtracking)
    let starts: Vec<usize> = if matches!(c.get(i), Some('.') | Some(',')) { vec![i + 1, i] } else { vec![i] };
    for s0 in starts {
        if !c.get(s0).is_some_and(|&x| d(x)) {
            continue;
        }
        // `[\d,\.-]*\.?` to the end: the rest must be all of [\d,.-] (a final '.' is in the class too)
        if c[s0 + 1..].iter().all(|&x| d(x) || x == ',' || x == '.' || x == '-') {
            return "##number##".into();
        }
    }
    s.to_string()
}

fn py_space(c: char) -> bool {
    crate::metrics::numeric::py_isspace(c)
}

/// `string.whitespace`.
fn ascii_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn is_non_word(c: char) -> bool {
    matches!(c, ')' | '"' | ';' | '}' | ']' | '*' | ':' | '@' | '\'' | '(' | '{' | '[' | '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}' | '\u{ab}' | '\u{bb}' | '?' | '!')
}

/// Length of `(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)` at `i`, if it matches.
fn multi_char(t: &[char], i: usize) -> Option<usize> {
    let run = |ch: char| t[i..].iter().take_while(|&&x| x == ch).count();
    if t.get(i) == Some(&'-') && run('-') >= 2 {
        return Some(run('-'));
    }
    if t.get(i) == Some(&'.') && run('.') >= 2 {
        return Some(run('.'));
    }
    // (?:\.\s){2,}\. greedy with backtracking: count pairs, need >= 2 pairs followed by '.'
    let mut pairs = 0;
    let mut j = i;
    while t.get(j) == Some(&'.') && t.get(j + 1).is_some_and(|&c| py_space(c)) {
        pairs += 1;
        j += 2;
    }
    while pairs >= 2 {
        if t.get(i + 2 * pairs) == Some(&'.') {
            return Some(2 * pairs + 1);
        }
        pairs -= 1;
    }
    None
}

fn word_start(c: char) -> bool {
    !matches!(c, '(' | '"' | '`' | '{' | '[' | ':' | ';' | '&' | '#' | '*' | '@' | ')' | '}' | ']' | '-' | ',')
}

/// Punkt's word split of one line (`PunktLanguageVars.word_tokenize`).
fn line_words(t: &[char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    let end_ok = |j: usize| -> bool {
        j >= t.len() || py_space(t[j]) || is_non_word(t[j]) || multi_char(t, j).is_some()
    };
    while i < t.len() {
        if py_space(t[i]) {
            i += 1;
            continue;
        }
        if let Some(n) = multi_char(t, i) {
            out.push(t[i..i + n].iter().collect());
            i += n;
            continue;
        }
        if word_start(t[i]) {
            let mut j = i + 1;
            loop {
                if end_ok(j) || (t[j] == ',' && end_ok(j + 1)) {
                    break;
                }
                j += 1;
            }
            out.push(t[i..j].iter().collect());
            i = j;
            continue;
        }
        out.push(t[i].to_string());
        i += 1;
    }
    out
}

fn tokenize_words(text: &[char]) -> Vec<Token> {
    let mut out = Vec::new();
    for line in text.split(|&c| c == '\n') {
        if line.iter().all(|&c| py_space(c)) {
            continue;
        }
        out.extend(line_words(line).into_iter().map(Token::new));
    }
    out
}

struct EndMatch {
    start: usize,
    end: usize,
    /// Length of the look-ahead part (`after_tok`).
    after_len: usize,
    next_tok_start: Option<usize>,
}

/// `[.?!](?=(?P<after_tok>NonWord|\s+(?P<next_tok>\S+)))` over the text.
fn period_contexts(t: &[char]) -> Vec<EndMatch> {
    let mut out = Vec::new();
    for i in 0..t.len() {
        if !matches!(t[i], '.' | '?' | '!') {
            continue;
        }
        if t.get(i + 1).is_some_and(|&c| is_non_word(c)) {
            out.push(EndMatch { start: i, end: i + 1, after_len: 1, next_tok_start: None });
            continue;
        }
        let ws = t[i + 1..].iter().take_while(|&&c| py_space(c)).count();
        if ws == 0 {
            continue;
        }
        let s = i + 1 + ws;
        let tok = t[s..].iter().take_while(|&&c| !py_space(c)).count();
        if tok == 0 {
            continue;
        }
        out.push(EndMatch { start: i, end: i + 1, after_len: ws + tok, next_tok_start: Some(s) });
    }
    out
}

fn potential_end_contexts(t: &[char]) -> Vec<(EndMatch, Vec<char>)> {
    let mut out = Vec::new();
    let mut prev_slice = (0usize, 0usize);
    let mut prev: Option<EndMatch> = None;
    let context = |s: (usize, usize), m: &EndMatch| -> Vec<char> {
        let mut v: Vec<char> = t[s.0..s.1].to_vec();
        v.extend_from_slice(&t[m.start..m.end]);
        v.extend_from_slice(&t[m.end..m.end + m.after_len]);
        v
    };
    for m in period_contexts(t) {
        let before = &t[prev_slice.1..m.start];
        let last_ws = before.iter().rposition(|&c| ascii_ws(c)).unwrap_or(0);
        let idx = if last_ws != 0 { last_ws + prev_slice.1 + 1 } else { prev_slice.0 };
        let word = (idx, m.start);
        if let Some(p) = prev.take() {
            if prev_slice.1 <= word.0 {
                let c = context(prev_slice, &p);
                out.push((p, c));
            }
        }
        prev = Some(m);
        prev_slice = word;
    }
    if let Some(p) = prev {
        let c = context(prev_slice, &p);
        out.push((p, c));
    }
    out
}

/// `["')\]}‘’“”«»]+?(?:\s+|(?=--)|$)` (multiline) at the start of `t`: (match end, length right-stripped).
fn boundary_realignment(t: &[char]) -> Option<(usize, usize)> {
    let closing = |c: char| matches!(c, '"' | '\'' | ')' | ']' | '}' | '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}' | '\u{ab}' | '\u{bb}');
    let mut k = 0;
    while k < t.len() && closing(t[k]) {
        k += 1;
        let ws = t[k..].iter().take_while(|&&c| py_space(c)).count();
        if ws > 0 {
            return Some((k + ws, k));
        }
        if t.get(k) == Some(&'-') && t.get(k + 1) == Some(&'-') {
            return Some((k, k));
        }
        if k == t.len() || t[k] == '\n' {
            return Some((k, k));
        }
    }
    None
}
