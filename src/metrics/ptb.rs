//! PTB tokenisation as pycocoevalcap does it, without Java.
//!
//! pycocoevalcap runs Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase` on one caption
//! per line, splits each output line on single spaces and drops tokens that are exactly one of
//! `'' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;`. Because lower-casing comes first, the
//! bracket tokens `-lrb- -rrb- -lcb- -rcb- -lsb- -rsb-` survive the filter; we reproduce that.
//!
//! This is a hand-written reimplementation of the lexer rules that matter for caption text: quotes
//! (`"` → `` `` `` / `''` by position), brackets, clitics (`'s 'm 'd 're 've 'll n't`), the special
//! splits (`cannot gonna gotta wanna gimme lemme`), sentence-final periods versus abbreviations
//! (`u.s.a.`, `mr.`, `etc.`, an extra `.` after a line-final abbreviation), `...`, `--` for dashes,
//! number punctuation (`1,000`, `3.14`, `10:30`), currency (`$ 5`, `£` → `#`, `€` → `$`, `¢` → `cents`),
//! fractions (`½` → `1/2`), and characters the Java lexer drops (astral-plane characters such as emoji,
//! variation selectors, soft hyphens). Known differences from Java are listed in
//! `tests/fixtures/metrics/ptb/README.md`.
//!
//! Deliberate deviation: the Java tool treats `\r`, `\u{b}`, `\u{c}`, `\u{85}`, `\u{2028}` and `\u{2029}`
//! inside a caption as line breaks, which shifts every later caption onto the wrong image in
//! pycocoevalcap; here they are plain spaces.

/// Tokens pycocoevalcap removes after tokenisation (exact, case-sensitive match).
pub const PUNCTUATIONS: [&str; 17] =
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"];

/// Tokenize one caption as pycocoevalcap does (PTB tokenizer, lower-cased, punctuation tokens removed).
pub fn ptb_tokenize(caption: &str) -> Vec<String> {
    ptb_tokenize_joined(caption).split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// The string pycocoevalcap hands to the scorers: filtered tokens joined by single spaces.
pub fn ptb_tokenize_joined(caption: &str) -> String {
    let raw = ptb_tokens_unfiltered(caption);
    let kept: Vec<&str> = raw.iter().map(String::as_str).filter(|t| !PUNCTUATIONS.contains(t)).collect();
    kept.join(" ")
}

/// The Java tokenizer's output tokens for one line (lower-cased, before pycocoevalcap's filter), as if
/// the line were the last of its file.
pub fn ptb_tokens_unfiltered(line: &str) -> Vec<String> {
    ptb_tokens_in_context(line, None)
}

/// Tokenize lines the way one Java run over a file of these lines does. The only cross-line effect is
/// the extra "." after a sentence-final abbreviation, which depends on the next line's first character;
/// pycocoevalcap's filter removes that "." again, so filtered output never depends on context.
pub fn ptb_tokenize_lines(lines: &[&str]) -> Vec<Vec<String>> {
    let mut following: Option<char> = None;
    let mut out: Vec<Vec<String>> = vec![Vec::new(); lines.len()];
    for (k, line) in lines.iter().enumerate().rev() {
        out[k] = ptb_tokens_in_context(line, following);
        if let Some(c) = line.chars().find(|c| !c.is_whitespace()) {
            following = Some(c);
        }
    }
    out
}

/// Tokenize one line; `following` is the first non-space character after it (None: end of input).
pub fn ptb_tokens_in_context(line: &str, following: Option<char>) -> Vec<String> {
    let chars = preprocess(line);
    let mut toks: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i] != ' ' {
            i += 1;
        }
        let last_chunk = chars[i..].iter().all(|&c| c == ' ');
        lex_chunk(&chars[start..i], last_chunk, &mut toks);
    }
    // "." after an abbreviation that ends a sentence (`... Inc. The` → `inc. . the`)
    let mut k = 0;
    while k < toks.len() {
        if toks[k].abbrev_final {
            let next = match toks.get(k + 1) {
                Some(t) => t.text.chars().next(),
                None => following,
            };
            if next.is_none_or(|c| c.is_uppercase()) {
                toks.insert(k + 1, Tok::plain("."));
                k += 1;
            }
        }
        k += 1;
    }
    // ". . ." spaced dots collapse into one "..."
    let mut out: Vec<String> = Vec::with_capacity(toks.len());
    let mut k = 0;
    while k < toks.len() {
        let dot = |t: &Tok| t.text == "." && t.spaced_dot;
        if dot(&toks[k]) && k + 2 < toks.len() && dot(&toks[k + 1]) && dot(&toks[k + 2]) {
            out.push("...".to_string());
            k += 3;
            while k < toks.len() && dot(&toks[k]) {
                k += 1;
            }
            continue;
        }
        out.push(toks[k].text.to_lowercase());
        k += 1;
    }
    out
}

struct Tok {
    text: String,
    abbrev_final: bool,
    /// A "." that formed a whole whitespace-separated chunk.
    spaced_dot: bool,
}

impl Tok {
    fn plain(s: &str) -> Tok {
        Tok { text: s.to_string(), abbrev_final: false, spaced_dot: false }
    }
}

fn preprocess(line: &str) -> Vec<char> {
    let mut out = Vec::with_capacity(line.len());
    for c in line.chars() {
        match c {
            // dropped by the Java lexer (untokenizable / invisible)
            '\u{ad}' | '\u{fe00}'..='\u{fe0f}' | '\u{200c}' | '\u{200d}' => {}
            c if (c as u32) > 0xFFFF => {}
            c if c.is_whitespace() || matches!(c, '\u{200b}' | '\u{feff}' | '\u{1c}'..='\u{1f}') => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn is_word_char(c: char) -> bool {
    (c.is_alphanumeric() && !matches!(c, '\u{bc}'..='\u{be}')) || is_mark(c)
}

fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x300..=0x36F | 0x483..=0x489 | 0x591..=0x5C7 | 0x610..=0x61A | 0x64B..=0x65F
        | 0x900..=0x903 | 0x93A..=0x94F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF)
}

/// Abbreviations that keep their period and never end a sentence (titles and the like), any case.
const ABBREV_PLAIN: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "ave", "vs", "mt", "ft", "gov", "sen", "prof", "capt", "gen", "col", "lt",
    "sgt", "rev", "dept", "cie", "jos", "messrs", "mme", "sens", "ste", "supt", "rep", "reps", "hon", "adm",
    "maj", "cmdr", "pvt", "cpl", "mfg", "assoc",
];

/// Abbreviations that keep their period and may end a sentence: when the next non-space character is an
/// upper-case letter (or the input ends) the Java lexer emits an extra "." token. Any case.
const ABBREV_FINAL: &[&str] = &[
    "blvd", "ky", "jr", "sr", "inc", "co", "corp", "ltd", "etc", "rd", "bros", "univ", "assn", "bldg", "cos",
    "esq", "intl", "pte", "sq", "ct", "ext", "bhd", "plc", "pty", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sept", "oct", "nov", "dec", "mon", "tues", "fri", "calif", "ariz", "fla", "ind", "va", "vt", "mo",
    "ga", "md", "mich", "minn", "mont", "neb", "nev", "okla", "tenn", "wis", "wyo", "conn", "colo", "ala",
    "kan", "kans", "dak", "penn",
];

/// Like [`ABBREV_FINAL`] but only when capitalised (lower-case `wash.` is a word and a period).
const ABBREV_FINAL_CAPITALISED: &[&str] = &["mass", "wash", "pa", "tex", "ill", "ore", "la", "miss", "ark", "del"];

fn lower(s: &[char]) -> String {
    s.iter().collect::<String>().to_lowercase()
}

fn is_clitic_at(c: &[char], i: usize) -> Option<usize> {
    // c[i] is an apostrophe; returns the clitic's length (apostrophe included) if one ends the word here
    let rest: String = c[i + 1..].iter().take_while(|ch| ch.is_alphabetic()).collect::<String>().to_lowercase();
    if matches!(rest.as_str(), "s" | "m" | "d" | "re" | "ve" | "ll") {
        Some(1 + rest.chars().count())
    } else {
        None
    }
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

fn is_opening(c: Option<char>) -> bool {
    matches!(c, None | Some('(' | '[' | '{' | '"' | '\u{201c}' | '`' | '\u{2018}' | '<'))
}

fn lex_chunk(c: &[char], last_chunk: bool, toks: &mut Vec<Tok>) {
    let mut i = 0;
    let n = c.len();
    let push = |toks: &mut Vec<Tok>, s: &str| toks.push(Tok::plain(s));
    if n == 1 && c[0] == '.' {
        toks.push(Tok { text: ".".into(), abbrev_final: false, spaced_dot: true });
        return;
    }
    while i < n {
        let ch = c[i];
        let prev = if i == 0 { None } else { Some(c[i - 1]) };
        match ch {
            '"' => {
                let next_opens = c.get(i + 1).is_some_and(|&x| {
                    x.is_alphanumeric() || matches!(x, '(' | '[' | '{' | '\'' | '`' | '$' | '#' | '\u{2018}' | '\u{201c}')
                });
                push(toks, if is_opening(prev) && next_opens { "``" } else { "''" });
                i += 1;
            }
            '\u{201c}' | '\u{201e}' => {
                push(toks, "``");
                i += 1;
            }
            '\u{201d}' => {
                push(toks, "''");
                i += 1;
            }
            '`' => {
                if c.get(i + 1) == Some(&'`') {
                    push(toks, "``");
                    i += 2;
                } else {
                    push(toks, "`");
                    i += 1;
                }
            }
            '\u{2018}' => {
                push(toks, "`");
                i += 1;
            }
            '\'' | '\u{2019}' => {
                let rest: String = c[i + 1..].iter().take_while(|x| x.is_alphanumeric()).collect();
                let rl = rest.chars().count();
                let low = rest.to_lowercase();
                let after_rest = c.get(i + 1 + rl).copied();
                if c.get(i + 1).is_some_and(|&x| is_apostrophe(x)) {
                    push(toks, "''");
                    i += 2;
                } else if let Some(len) =
                    is_clitic_at(c, i).filter(|_| prev.is_some_and(is_word_char) || (prev.is_none() && after_rest.is_none()))
                {
                    let mut s: String = "'".into();
                    s.extend(&c[i + 1..i + len]);
                    push(toks, &s);
                    i += len;
                } else if rl >= 2
                    && is_opening(prev)
                    && rest.chars().take(2).all(|x| x.is_ascii_digit())
                    && rest.chars().skip(2).all(|x| x == 's' || x == 'S')
                {
                    // '90s
                    push(toks, &format!("'{rest}"));
                    i += 1 + rl;
                } else if low == "n" && after_rest.is_some_and(is_apostrophe) {
                    // rock 'n' roll
                    push(toks, &format!("'{rest}'"));
                    i += 3;
                } else if is_opening(prev) && low == "em" {
                    push(toks, &format!("'{rest}"));
                    i += 1 + rl;
                } else if is_opening(prev) && (low == "tis" || low == "twas") {
                    push(toks, &format!("'{}", &rest[..1]));
                    push(toks, &rest[1..]);
                    i += 1 + rl;
                } else if c.get(i + 1).is_some_and(|x| x.is_alphabetic()) && c.get(i + 2).is_some_and(|x| x.is_alphabetic()) {
                    push(toks, "`");
                    i += 1;
                } else {
                    push(toks, "'");
                    i += 1;
                }
            }
            '(' => {
                push(toks, "-LRB-");
                i += 1;
            }
            ')' => {
                push(toks, "-RRB-");
                i += 1;
            }
            '[' => {
                push(toks, "-LSB-");
                i += 1;
            }
            ']' => {
                push(toks, "-RSB-");
                i += 1;
            }
            '{' => {
                push(toks, "-LCB-");
                i += 1;
            }
            '}' => {
                push(toks, "-RCB-");
                i += 1;
            }
            '.' => {
                let mut j = i;
                while j < n && c[j] == '.' {
                    j += 1;
                }
                if j - i >= 3 {
                    push(toks, "...");
                } else if j < n && c[j].is_ascii_digit() && j - i == 1 && is_opening(prev) {
                    // .5
                    let mut k = j;
                    while k < n && (c[k].is_ascii_digit()) {
                        k += 1;
                    }
                    push(toks, &c[i..k].iter().collect::<String>());
                    j = k;
                } else {
                    for _ in i..j {
                        push(toks, ".");
                    }
                }
                i = j;
            }
            '\u{2026}' => {
                push(toks, "...");
                i += 1;
            }
            '?' | '!' => {
                let mut j = i;
                while j < n && matches!(c[j], '?' | '!') {
                    j += 1;
                }
                push(toks, &c[i..j].iter().collect::<String>());
                i = j;
            }
            '-' | '\u{2013}' | '\u{2014}' => {
                let mut j = i;
                while j < n && c[j] == '-' {
                    j += 1;
                }
                if ch != '-' {
                    push(toks, "--");
                    i += 1;
                } else if j - i >= 2 {
                    push(toks, "--");
                    i = j;
                } else if is_opening(prev) && c.get(i + 1).is_some_and(|x| x.is_ascii_digit()) {
                    i = lex_word(c, i, last_chunk, toks);
                } else {
                    push(toks, "-");
                    i += 1;
                }
            }
            '+' if is_opening(prev) && c.get(i + 1).is_some_and(|x| x.is_ascii_digit()) => {
                i = lex_word(c, i, last_chunk, toks);
            }
            '$' | '%' | ',' | ';' | ':' | '=' | '+' | '<' | '>' | '^' | '~' | '|' | '\\' | '&' => {
                push(toks, &ch.to_string());
                i += 1;
            }
            '*' => {
                let mut j = i;
                while j < n && c[j] == '*' {
                    j += 1;
                }
                push(toks, &c[i..j].iter().collect::<String>());
                i = j;
            }
            '\u{a3}' => {
                push(toks, "#");
                i += 1;
            }
            '\u{20ac}' => {
                push(toks, "$");
                i += 1;
            }
            '\u{a2}' => {
                push(toks, "cents");
                i += 1;
            }
            '\u{bd}' => {
                push(toks, "1/2");
                i += 1;
            }
            '\u{bc}' => {
                push(toks, "1/4");
                i += 1;
            }
            '\u{be}' => {
                push(toks, "3/4");
                i += 1;
            }
            '#' if c.get(i + 1).is_some_and(|x| x.is_ascii_digit()) || i + 1 == n => {
                push(toks, "#");
                i += 1;
            }
            '#' | '@' | '_' => {
                i = lex_word(c, i, last_chunk, toks);
            }
            c0 if is_word_char(c0) => {
                i = lex_word(c, i, last_chunk, toks);
            }
            _ => {
                push(toks, &ch.to_string());
                i += 1;
            }
        }
    }
}

fn is_numberish(w: &[char]) -> bool {
    !w.is_empty()
        && w.iter().any(|c| c.is_ascii_digit())
        && w.iter().all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ':' | '-' | '+' | '/'))
}

/// Lex one word starting at `start`; returns the index after it (and any attached abbreviation period).
fn lex_word(c: &[char], start: usize, last_chunk: bool, toks: &mut Vec<Tok>) -> usize {
    let n = c.len();
    let mut i = start + 1;
    while i < n {
        let ch = c[i];
        let prev = c[i - 1];
        let next = c.get(i + 1).copied();
        let word_so_far = &c[start..i];
        if is_word_char(ch) || ch == '_' || ch == '@' || ch == '#' {
            // a decimal/time number followed by letters splits (1.5x, 3:45pm)
            if ch.is_alphabetic() && prev.is_ascii_digit() && is_numberish(word_so_far)
                && word_so_far.iter().any(|x| matches!(x, '.' | ':' | ','))
            {
                break;
            }
            i += 1;
            continue;
        }
        // currency prefixes such as US$ / A$ stay on the word: "US$10" → "us$ 10"
        if ch == '$' && word_so_far.len() <= 3 && word_so_far.iter().all(|x| x.is_ascii_uppercase() || x.is_ascii_lowercase())
            && next.is_some_and(|x| x.is_ascii_digit())
        {
            i += 1;
            break;
        }
        let next_word = next.is_some_and(is_word_char);
        let ok = match ch {
            '-' => next_word && is_word_char(prev),
            '.' => next_word && is_word_char(prev) && !(prev.is_alphabetic() && next.is_some_and(|x| x.is_ascii_digit()) && false),
            ',' | ':' => prev.is_ascii_digit() && next.is_some_and(|x| x.is_ascii_digit()),
            '/' => next_word && is_word_char(prev),
            '&' => next.is_some_and(char::is_alphabetic) && prev.is_alphabetic(),
            '\'' | '\u{2019}' => {
                // n't and clitics end the word; o'clock / d'Artagnan / ma'am stay whole
                let single = word_so_far.len() == 1
                    && matches!(prev.to_ascii_lowercase(), 'a'..='h' | 'j'..='x' | 'z')
                    && c.get(i + 1).is_some_and(|x| x.is_alphabetic())
                    && c.get(i + 2).is_some_and(|x| x.is_alphabetic());
                let vowels = matches!(prev, 'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'A' | 'E' | 'I' | 'O' | 'U' | 'Y')
                    && next.is_some_and(|x| matches!(x, 'a' | 'e' | 'i' | 'o' | 'u') || x.is_ascii_uppercase());
                is_clitic_at(c, i).is_none()
                    && (single || vowels)
                    && !(matches!(prev, 'n' | 'N') && matches!(next, Some('t' | 'T'))
                        && !c.get(i + 2).is_some_and(|x| x.is_alphabetic()))
            }
            _ => false,
        };
        if !ok {
            break;
        }
        i += 1;
    }
    let mut word: Vec<char> = c[start..i].to_vec();
    // n't: "don't" → "do" + "n't"
    if i + 2 < n + 1
        && i < n
        && is_apostrophe(c[i])
        && matches!(word.last(), Some('n' | 'N'))
        && c.get(i + 1).is_some_and(|x| matches!(x, 't' | 'T'))
        && !c.get(i + 2).is_some_and(|x| x.is_alphabetic())
        && word.len() > 1
    {
        word.pop();
        emit_word(&word, toks);
        let nt: String = ['n', '\'', c[i + 1]].iter().collect();
        toks.push(Tok::plain(&nt));
        return i + 2;
    }
    // attached abbreviation period
    if i < n && c[i] == '.' && !c.get(i + 1).is_some_and(|&x| x == '.') {
        let low = lower(&word);
        let dotted_acronym = word.len() >= 3
            && word.iter().enumerate().all(|(k, x)| if k % 2 == 1 { *x == '.' } else { x.is_alphabetic() });
        // an initial ("J. Smith") keeps its period, but not at the end of the line ("Michael L.")
        let single_letter = word.len() == 1 && word[0].is_alphabetic() && !(last_chunk && i + 1 == n);
        let capitalised = word[0].is_uppercase();
        let plain = ABBREV_PLAIN.contains(&low.as_str()) || single_letter || dotted_acronym;
        // dotted acronyms (u.s., t.v.) keep the period; the extra "." Java sometimes adds after them
        // depends on lookahead we do not model (it is filtered out by pycocoevalcap anyway)
        let final_kind = (dotted_acronym && word.len() == 3)
            || low == "ph.d"
            || ABBREV_FINAL.contains(&low.as_str())
            || (capitalised && ABBREV_FINAL_CAPITALISED.contains(&low.as_str()));
        if plain || final_kind {
            let mut text: String = word.iter().collect();
            text.push('.');
            toks.push(Tok { text, abbrev_final: final_kind, spaced_dot: false });
            return i + 1;
        }
    }
    emit_word(&word, toks);
    i
}

fn emit_word(word: &[char], toks: &mut Vec<Tok>) {
    let low = lower(word);
    let split = match low.as_str() {
        "cannot" => Some(3),
        "gonna" | "gotta" | "wanna" | "gimme" | "lemme" => Some(3),
        _ => None,
    };
    match split {
        Some(k) if word.len() == low.chars().count() => {
            toks.push(Tok::plain(&word[..k].iter().collect::<String>()));
            toks.push(Tok::plain(&word[k..].iter().collect::<String>()));
        }
        _ => toks.push(Tok::plain(&word.iter().collect::<String>())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn t(s: &str) -> String {
        ptb_tokens_unfiltered(s).join(" ")
    }
    #[test]
    fn basics() {
        assert_eq!(t("A man's \"big\" dog (brown)."), "a man 's `` big '' dog -lrb- brown -rrb- .");
        assert_eq!(t("He isn't here; they can't go."), "he is n't here ; they ca n't go .");
        assert_eq!(t("It costs $5.00."), "it costs $ 5.00 .");
        assert_eq!(ptb_tokenize("A cat, (sleeping)."), vec!["a", "cat", "-lrb-", "sleeping", "-rrb-"]);
    }
}
