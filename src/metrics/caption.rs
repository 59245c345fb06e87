//! Caption metrics exactly as pycocoevalcap 1.2 computes them: CIDEr-D (`Cider`), BLEU-1..4 (`Bleu`,
//! option "closest") and ROUGE-L (`Rouge`), on captions already passed through the PTB tokenizer
//! ([`super::ptb`]). The arithmetic follows the reference code's order (dict insertion order for n-gram
//! sums, numpy's pairwise summation for corpus means) so results agree to the last bit or within a few ulp.
//!
//! Inputs are [`CaptionSample`]s whose strings are *tokenized* captions (tokens joined by one space, the
//! form pycocoevalcap hands to its scorers); [`CaptionSample::from_raw`] tokenizes raw text.
//!
//! Not here: METEOR and SPICE (not computed), reading files ([`super::formats`]).

use super::numeric::{numpy_mean, py_split};
use super::ptb::{has_line_terminator, ptb_tokenize_joined, ptb_tokenize_joined_lines};
use std::collections::HashMap;

/// One image: a candidate caption and its references, all PTB-tokenized (tokens joined by spaces).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionSample {
    pub id: String,
    pub candidate: String,
    pub references: Vec<String>,
}

impl CaptionSample {
    /// Build one sample from raw (untokenized) captions, tokenizing each caption as if it were alone in
    /// its tokenizer call. Scoring a corpus should use [`samples_from_raw`], which reproduces
    /// pycocoevalcap's calls exactly (the Java tokenizer's output for a caption can depend on the next).
    pub fn from_raw(id: impl Into<String>, candidate: &str, references: &[impl AsRef<str>]) -> Self {
        CaptionSample {
            id: id.into(),
            candidate: ptb_tokenize_joined(candidate),
            references: references.iter().map(|r| ptb_tokenize_joined(r.as_ref())).collect(),
        }
    }
}

/// Tokenize a corpus of raw captions exactly as the COCO caption evaluation does: all references in one
/// PTB tokenizer call (images in the given order, each image's references in order) and all candidates
/// in another, so that a caption is tokenized with the same following text as in the Java run.
/// `items`: (sample id, candidate, references), in the evaluation's image order.
pub fn samples_from_raw<S: AsRef<str>>(items: &[(String, &str, &[S])]) -> Vec<CaptionSample> {
    let candidates: Vec<&str> = items.iter().map(|(_, c, _)| *c).collect();
    let references: Vec<&str> = items.iter().flat_map(|(_, _, r)| r.iter().map(|x| x.as_ref())).collect();
    let (cand, refs) = rayon::join(|| ptb_tokenize_joined_lines(&candidates), || ptb_tokenize_joined_lines(&references));
    let mut refs = refs.into_iter();
    items
        .iter()
        .zip(cand)
        .map(|((id, _, r), candidate)| CaptionSample { id: id.clone(), candidate, references: refs.by_ref().take(r.len()).collect() })
        .collect()
}

/// Ids of the samples whose candidate or references hold a character the Java tokenizer reads as a line
/// break (\r \v \f U+2028 U+2029): pycocoevalcap would shift every later caption onto the wrong image; we
/// read those characters as spaces.
pub fn line_terminator_samples<S: AsRef<str>>(items: &[(String, &str, &[S])]) -> Vec<String> {
    items
        .iter()
        .filter(|(_, c, r)| has_line_terminator(c) || r.iter().any(|x| has_line_terminator(x.as_ref())))
        .map(|(id, _, _)| id.clone())
        .collect()
}

/// The warning printed when [`line_terminator_samples`] finds any (`what` names the input).
pub fn line_terminator_warning(what: &str, ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(20).map(String::as_str).collect();
    let more = if ids.len() > shown.len() { format!(" and {} more", ids.len() - shown.len()) } else { String::new() };
    format!(
        "warning: {what}: {} sample(s) have a caption (prediction or reference) containing a line break character \
         (\\r, \\v, \\f, U+2028 or U+2029): {}{more}. pycocoevalcap's Java tokenizer would split such a caption into \
         several lines and score every later caption against the wrong image; these scores read the characters \
         as spaces instead (remove them from the captions to match a pycocoevalcap run exactly)",
        ids.len(),
        shown.join(", ")
    )
}

/// A corpus score and the per-sample scores it was computed from (same order as the input).
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusScores {
    pub corpus: f64,
    pub per_sample: Vec<f64>,
}

/// BLEU-1..4: corpus scores (index 0 = BLEU-1) and per-sample scores as pycocoevalcap returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScores {
    pub corpus: [f64; 4],
    pub per_sample: Vec<[f64; 4]>,
}

type Ngram = (u8, [u32; 4]);

/// Token and n-gram interning shared by CIDEr and BLEU.
#[derive(Default)]
struct Interner {
    tokens: HashMap<String, u32>,
    ngrams: HashMap<Ngram, u32>,
    ngram_len: Vec<u8>,
}

impl Interner {
    /// `precook`: n-gram counts (n = 1..4) in Python dict insertion order, plus the word count.
    fn cook(&mut self, s: &str) -> (usize, Vec<(u32, u32)>) {
        let words: Vec<u32> = py_split(s)
            .map(|w| {
                let next = self.tokens.len() as u32;
                *self.tokens.entry(w.to_string()).or_insert(next)
            })
            .collect();
        let mut counts: Vec<(u32, u32)> = Vec::new();
        let mut index: HashMap<u32, usize> = HashMap::new();
        for k in 1..=4usize {
            if words.len() < k {
                break;
            }
            for i in 0..=(words.len() - k) {
                let mut key = [0u32; 4];
                key[..k].copy_from_slice(&words[i..i + k]);
                let next = self.ngrams.len() as u32;
                let id = *self.ngrams.entry((k as u8, key)).or_insert(next);
                if id as usize == self.ngram_len.len() {
                    self.ngram_len.push(k as u8);
                }
                match index.get(&id) {
                    Some(&pos) => counts[pos].1 += 1,
                    None => {
                        index.insert(id, counts.len());
                        counts.push((id, 1));
                    }
                }
            }
        }
        (words.len(), counts)
    }
}

/// Pre-cooked CIDEr-D data for a fixed list of samples; scores any multiset of them (for bootstrap).
pub struct CiderPrepared {
    tests: Vec<Vec<(u32, u32)>>,
    refs: Vec<Vec<Vec<(u32, u32)>>>,
    /// Per reference: (n-gram id, position in `refs`) sorted by id, for lookups.
    refs_sorted: Vec<Vec<Vec<(u32, u32)>>>,
    /// Distinct n-grams over each sample's references (for document frequency).
    ref_ngrams: Vec<Vec<u32>>,
    ngram_len: Vec<u8>,
}

const SIGMA: f64 = 6.0;

impl CiderPrepared {
    pub fn new(samples: &[CaptionSample]) -> Self {
        let mut it = Interner::default();
        let mut tests = Vec::with_capacity(samples.len());
        let mut refs = Vec::with_capacity(samples.len());
        let mut ref_ngrams = Vec::with_capacity(samples.len());
        let mut refs_sorted = Vec::with_capacity(samples.len());
        for s in samples {
            tests.push(it.cook(&s.candidate).1);
            let r: Vec<Vec<(u32, u32)>> = s.references.iter().map(|r| it.cook(r).1).collect();
            let mut uniq: Vec<u32> = r.iter().flat_map(|c| c.iter().map(|&(id, _)| id)).collect();
            uniq.sort_unstable();
            uniq.dedup();
            ref_ngrams.push(uniq);
            refs_sorted.push(
                r.iter()
                    .map(|c| {
                        let mut v: Vec<(u32, u32)> = c.iter().enumerate().map(|(p, &(g, _))| (g, p as u32)).collect();
                        v.sort_unstable();
                        v
                    })
                    .collect(),
            );
            refs.push(r);
        }
        CiderPrepared { tests, refs, refs_sorted, ref_ngrams, ngram_len: it.ngram_len }
    }

    pub fn len(&self) -> usize {
        self.tests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }

    /// CIDEr-D over the samples at `indices` (repeats allowed: each occurrence is one document).
    pub fn score(&self, indices: &[usize]) -> CorpusScores {
        let mut df = vec![0.0f64; self.ngram_len.len()];
        for &i in indices {
            for &g in &self.ref_ngrams[i] {
                df[g as usize] += 1.0;
            }
        }
        let ref_len = (indices.len() as f64).ln();
        // document frequencies are whole numbers <= len: tabulate ln(max(1, df)) once
        let ln_df: Vec<f64> = (0..=indices.len()).map(|k| (k as f64).max(1.0).ln()).collect();
        let vec_of = |cnts: &[(u32, u32)]| -> (Vec<f64>, [f64; 4], i64) {
            let mut v = Vec::with_capacity(cnts.len());
            let mut norm = [0.0f64; 4];
            let mut length = 0i64;
            for &(g, tf) in cnts {
                let d = ln_df[df[g as usize] as usize];
                let n = self.ngram_len[g as usize] as usize - 1;
                let w = tf as f64 * (ref_len - d);
                v.push(w);
                norm[n] += w * w;
                if n == 1 {
                    length += tf as i64;
                }
            }
            (v, [norm[0].sqrt(), norm[1].sqrt(), norm[2].sqrt(), norm[3].sqrt()], length)
        };
        // Within one call every occurrence of a sample scores the same (document frequencies are fixed), so a
        // bootstrap resample's repeated indices are scored once.
        let mut memo: Vec<Option<f64>> = vec![None; self.tests.len()];
        let mut per = Vec::with_capacity(indices.len());
        for &i in indices {
            if let Some(v) = memo[i] {
                per.push(v);
                continue;
            }
            let test = &self.tests[i];
            let (tv, tn, tl) = vec_of(test);
            let mut score = [0.0f64; 4];
            for (r, sorted) in self.refs[i].iter().zip(&self.refs_sorted[i]) {
                let (rv, rn, rl) = vec_of(r);
                let delta = (tl - rl) as f64;
                let penalty = std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
                let mut val = [0.0f64; 4];
                for (&(g, _), &wh) in test.iter().zip(&tv) {
                    let n = self.ngram_len[g as usize] as usize - 1;
                    let wr = match sorted.binary_search_by_key(&g, |&(id, _)| id) {
                        Ok(k) => rv[sorted[k].1 as usize],
                        Err(_) => 0.0,
                    };
                    val[n] += wh.min(wr) * wr;
                }
                for n in 0..4 {
                    if tn[n] != 0.0 && rn[n] != 0.0 {
                        val[n] /= tn[n] * rn[n];
                    }
                    val[n] *= penalty;
                    score[n] += val[n];
                }
            }
            let mut avg = (((-0.0 + score[0]) + score[1]) + score[2]) + score[3];
            avg /= 4.0;
            avg /= self.refs[i].len() as f64;
            avg *= 10.0;
            memo[i] = Some(avg);
            per.push(avg);
        }
        CorpusScores { corpus: numpy_mean(&per), per_sample: per }
    }
}

/// CIDEr-D (pycocoevalcap `Cider`, n = 4, sigma = 6): corpus mean and per-sample scores.
/// Document frequencies are taken over the given samples only, as pycocoevalcap does.
pub fn cider_d(samples: &[CaptionSample]) -> CorpusScores {
    let prep = CiderPrepared::new(samples);
    let all: Vec<usize> = (0..samples.len()).collect();
    prep.score(&all)
}

/// Per-sample BLEU statistics (pycocoevalcap `cook_test` with option "closest").
#[derive(Debug, Clone)]
pub struct BleuStats {
    pub testlen: usize,
    pub reflen: usize,
    pub guess: [usize; 4],
    pub correct: [usize; 4],
}

/// Cook every sample's BLEU statistics once; combine any multiset of them with [`bleu_from_stats`].
pub fn bleu_stats(samples: &[CaptionSample]) -> Vec<BleuStats> {
    let mut it = Interner::default();
    samples
        .iter()
        .map(|s| {
            let mut reflens = Vec::with_capacity(s.references.len());
            let mut maxcounts: HashMap<u32, u32> = HashMap::new();
            for r in &s.references {
                let (len, counts) = it.cook(r);
                reflens.push(len);
                for (g, c) in counts {
                    let e = maxcounts.entry(g).or_insert(0);
                    *e = (*e).max(c);
                }
            }
            let (testlen, counts) = it.cook(&s.candidate);
            // closest reference length; ties go to the shorter one (Python tuple ordering)
            let reflen = reflens
                .iter()
                .map(|&l| ((l as i64 - testlen as i64).abs(), l))
                .min()
                .map(|(_, l)| l)
                .unwrap_or(0);
            let mut guess = [0usize; 4];
            for (k, g) in guess.iter_mut().enumerate() {
                *g = (testlen + 1).saturating_sub(k + 1);
            }
            let mut correct = [0usize; 4];
            for (g, c) in counts {
                let n = it.ngram_len[g as usize] as usize - 1;
                correct[n] += maxcounts.get(&g).copied().unwrap_or(0).min(c) as usize;
            }
            BleuStats { testlen, reflen, guess, correct }
        })
        .collect()
}

const SMALL: f64 = 1e-9;
const TINY: f64 = 1e-15;

/// BLEU-1..4 of one sample (as in pycocoevalcap's per-image `bleu_list`).
pub fn bleu_of_stats(s: &BleuStats) -> [f64; 4] {
    combine(s.testlen, s.reflen, &s.guess, &s.correct)
}

fn combine(testlen: usize, reflen: usize, guess: &[usize; 4], correct: &[usize; 4]) -> [f64; 4] {
    let mut out = [0.0; 4];
    let mut b = 1.0f64;
    for k in 0..4 {
        b *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        out[k] = b.powf(1.0 / (k as f64 + 1.0));
    }
    let ratio = (testlen as f64 + TINY) / (reflen as f64 + SMALL);
    if ratio < 1.0 {
        for o in out.iter_mut() {
            *o *= (1.0 - 1.0 / ratio).exp();
        }
    }
    out
}

/// Corpus BLEU-1..4 over the samples at `indices` (repeats allowed).
pub fn bleu_from_stats(stats: &[BleuStats], indices: &[usize]) -> [f64; 4] {
    let (mut tl, mut rl) = (0usize, 0usize);
    let mut guess = [0usize; 4];
    let mut correct = [0usize; 4];
    for &i in indices {
        let s = &stats[i];
        tl += s.testlen;
        rl += s.reflen;
        for k in 0..4 {
            guess[k] += s.guess[k];
            correct[k] += s.correct[k];
        }
    }
    combine(tl, rl, &guess, &correct)
}

/// BLEU-1..4 (pycocoevalcap `Bleu(4)`, option "closest"): corpus and per-sample scores.
pub fn bleu(samples: &[CaptionSample]) -> BleuScores {
    let stats = bleu_stats(samples);
    let all: Vec<usize> = (0..samples.len()).collect();
    BleuScores { corpus: bleu_from_stats(&stats, &all), per_sample: stats.iter().map(bleu_of_stats).collect() }
}

fn lcs(a: &[&str], b: &[&str]) -> usize {
    let (long, short) = if a.len() < b.len() { (b, a) } else { (a, b) };
    let mut prev = vec![0usize; short.len() + 1];
    let mut cur = vec![0usize; short.len() + 1];
    for x in long {
        for j in 1..=short.len() {
            cur[j] = if *x == short[j - 1] { prev[j - 1] + 1 } else { prev[j].max(cur[j - 1]) };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

/// ROUGE-L of one candidate against its references (pycocoevalcap `Rouge.calc_score`, beta = 1.2).
/// Tokens are split on single spaces, as the reference does.
pub fn rouge_l_single(candidate: &str, references: &[String]) -> f64 {
    let beta: f64 = 1.2;
    let c: Vec<&str> = candidate.split(' ').collect();
    let mut prec_max = f64::NEG_INFINITY;
    let mut rec_max = f64::NEG_INFINITY;
    for r in references {
        let r: Vec<&str> = r.split(' ').collect();
        let l = lcs(&r, &c) as f64;
        prec_max = prec_max.max(l / c.len() as f64);
        rec_max = rec_max.max(l / r.len() as f64);
    }
    if prec_max != 0.0 && rec_max != 0.0 && references.len() > 0 {
        ((1.0 + beta * beta) * prec_max * rec_max) / (rec_max + beta * beta * prec_max)
    } else {
        0.0
    }
}

/// ROUGE-L (pycocoevalcap `Rouge`): corpus mean and per-sample scores.
pub fn rouge_l(samples: &[CaptionSample]) -> CorpusScores {
    let per: Vec<f64> = samples.iter().map(|s| rouge_l_single(&s.candidate, &s.references)).collect();
    CorpusScores { corpus: numpy_mean(&per), per_sample: per }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn single_image_cider_is_zero() {
        let s = vec![CaptionSample {
            id: "1".into(),
            candidate: "a cat".into(),
            references: vec!["a cat".into(), "a dog".into()],
        }];
        assert_eq!(cider_d(&s).corpus, 0.0);
    }
    #[test]
    fn lcs_basic() {
        assert_eq!(lcs(&["a", "b", "c"], &["a", "c"]), 2);
    }
}
