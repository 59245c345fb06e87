//! Greedy and beam search, reproducing Hugging Face transformers 4.33 `generate` as OpenFlamingo calls it
//! (`num_beams`, `max_new_tokens`, `min_new_tokens`, `length_penalty`, `early_stopping=False`, stop tokens).
//!
//! The search only sees log-probabilities ([`Search`] is a state machine the model layer drives, one step
//! per decoder call for all prompts of a batch), so it is tested without a model.
//!
//! Beam search, per prompt: scores are cumulative f32 sums of log-softmax values; at the first step only beam
//! 0 is live (the others start at -1e9); each step takes the top `2 × beams` (beam, token) pairs, in order of
//! score (equal scores: lower beam, then lower token id first); a stop token among the first `beams` pairs
//! closes a hypothesis scored `sum / len^length_penalty`, other pairs continue until `beams` are kept. The
//! search ends when `beams` hypotheses exist and the best live score cannot beat the worst of them
//! (`early_stopping=False` heuristic), or at `max_new_tokens`, when live beams join the hypotheses. The best
//! hypothesis wins (equal scores: the one added last, as Python's stable sort + pop does).
//!
//! Length used for `length_penalty`: the unpadded prompt length plus the generated tokens. Transformers counts
//! the left padding of a batch too, which makes its scores depend on batch composition when the penalty is
//! not 0; the published protocol uses 0, where both agree.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    pub length_penalty: f32,
    /// Generation ends for a beam when it produces any of these (OpenFlamingo: `<|endofchunk|>`).
    pub stop_tokens: Vec<u32>,
}

impl SearchParams {
    pub fn greedy(max_new_tokens: usize, stop_tokens: Vec<u32>) -> Self {
        SearchParams { num_beams: 1, max_new_tokens, min_new_tokens: 0, length_penalty: 0.0, stop_tokens }
    }
    pub fn validate(&self) -> Result<()> {
        if self.num_beams == 0 {
            bail!("num_beams must be at least 1");
        }
        if self.max_new_tokens == 0 {
            bail!("max_new_tokens must be at least 1");
        }
        if !self.length_penalty.is_finite() {
            bail!("length_penalty must be finite");
        }
        Ok(())
    }
}

/// What [`Search::advance`] asks for next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Keep these rows of this search's current state (indices into the rows whose logits were just given,
    /// repeated for beam expansion), append one token to each, and call `advance` with the new rows' logits.
    Continue { rows: Vec<usize>, tokens: Vec<u32> },
    /// The search is over; call [`Search::finish`].
    Done,
}

/// The search for one prompt, as a state machine driven by the caller, so that the rows of many prompts can
/// share one model call per step. Start with the prompt's last-position logits (one row).
pub struct Search {
    params: SearchParams,
    prompt_len: usize,
    step: usize,
    // greedy
    tokens: Vec<u32>,
    score: f32,
    // beam
    scores: Vec<f32>,
    seqs: Vec<Vec<u32>>,
    hyps: Hypotheses,
    done: bool,
}

impl Search {
    pub fn new(params: &SearchParams, prompt_len: usize) -> Result<Search> {
        params.validate()?;
        let nb = params.num_beams;
        Ok(Search {
            params: params.clone(),
            prompt_len,
            step: 0,
            tokens: Vec::new(),
            score: 0.0,
            scores: Vec::new(),
            seqs: Vec::new(),
            hyps: Hypotheses { beams: Vec::new(), worst: 1e9, n: nb, length_penalty: params.length_penalty },
            done: false,
        })
    }

    /// Consumes the next-token logits of this search's rows (one row before the first step).
    pub fn advance(&mut self, logits: &[Vec<f32>]) -> Result<Step> {
        let r = if self.params.num_beams == 1 { self.advance_greedy(&logits[0]) } else { self.advance_beam(logits) };
        self.step += 1;
        r
    }

    fn advance_greedy(&mut self, logits: &[f32]) -> Result<Step> {
        let lp = log_probs(logits, self.step, &self.params);
        // transformers' greedy search takes the first maximum (torch.argmax) of the processed raw logits, not of
        // the log-probabilities: rounding in log-softmax could tie two different logits.
        let masked = |i: usize| self.step < self.params.min_new_tokens && self.params.stop_tokens.contains(&(i as u32));
        let tok = logits
            .iter()
            .enumerate()
            .filter(|&(i, _)| !masked(i))
            .fold((0usize, f32::NEG_INFINITY), |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc })
            .0;
        let best = lp[tok];
        let tok = tok as u32;
        if self.params.stop_tokens.contains(&tok) {
            return Ok(Step::Done);
        }
        self.tokens.push(tok);
        self.score += best;
        if self.step + 1 == self.params.max_new_tokens {
            return Ok(Step::Done);
        }
        Ok(Step::Continue { rows: vec![0], tokens: vec![tok] })
    }

    fn advance_beam(&mut self, logits: &[Vec<f32>]) -> Result<Step> {
        let nb = self.params.num_beams;
        let k = 2 * nb;
        let first = self.step == 0;
        if first {
            // All beams start as the prompt; only beam 0 is live (the others start at -1e9 in transformers, so
            // with a vocabulary of at least 2 × beams every candidate comes from beam 0).
            self.scores = vec![0.0];
            self.seqs = vec![Vec::new()];
        }
        // Top 2×beams (score, beam, token) over all beams; ties: lower beam, then lower token first.
        let mut top: Vec<(f32, usize, u32)> = Vec::with_capacity(k + 1);
        for (b, lg) in logits.iter().enumerate() {
            let lp = log_probs(lg, self.step, &self.params);
            for (t, &v) in lp.iter().enumerate() {
                let s = v + self.scores[b];
                if top.len() == k && !(s > top[k - 1].0) {
                    continue;
                }
                let pos = top.partition_point(|e| e.0 >= s);
                top.insert(pos, (s, b, t as u32));
                top.truncate(k);
            }
        }
        let cur_len = self.prompt_len + self.step + 1;
        let mut next: Vec<(f32, usize, u32)> = Vec::with_capacity(nb);
        for (rank, &(s, b, t)) in top.iter().enumerate() {
            if self.params.stop_tokens.contains(&t) {
                if rank >= nb {
                    continue;
                }
                self.hyps.add(self.seqs[b].clone(), s, self.prompt_len + self.seqs[b].len());
            } else {
                next.push((s, b, t));
            }
            if next.len() == nb {
                break;
            }
        }
        if next.len() < nb {
            bail!("beam search found fewer than {nb} continuations (vocabulary too small for the stop tokens?)");
        }
        let best_top = top.iter().map(|e| e.0).fold(f32::NEG_INFINITY, f32::max);
        self.done = self.done || self.hyps.is_done(best_top, cur_len);
        self.seqs = next
            .iter()
            .map(|&(_, b, t)| {
                let mut s = self.seqs[b].clone();
                s.push(t);
                s
            })
            .collect();
        self.scores = next.iter().map(|e| e.0).collect();
        if self.done || self.step + 1 == self.params.max_new_tokens {
            return Ok(Step::Done);
        }
        Ok(Step::Continue { rows: next.iter().map(|e| e.1).collect(), tokens: next.iter().map(|e| e.2).collect() })
    }

    /// The generated tokens (without the stop token) and the winning score.
    pub fn finish(mut self) -> (Vec<u32>, f32) {
        if self.params.num_beams == 1 {
            return (self.tokens, self.score);
        }
        if !self.done {
            for b in 0..self.seqs.len() {
                self.hyps.add(self.seqs[b].clone(), self.scores[b], self.prompt_len + self.seqs[b].len());
            }
        }
        self.hyps.best()
    }
}

fn log_probs(logits: &[f32], step: usize, params: &SearchParams) -> Vec<f32> {
    let mut lp = crate::model::flamingo::log_softmax(logits);
    if step < params.min_new_tokens {
        for &t in &params.stop_tokens {
            if let Some(v) = lp.get_mut(t as usize) {
                *v = f32::NEG_INFINITY;
            }
        }
    }
    lp
}

struct Hypotheses {
    beams: Vec<(f32, Vec<u32>)>,
    worst: f32,
    n: usize,
    length_penalty: f32,
}

impl Hypotheses {
    fn add(&mut self, tokens: Vec<u32>, sum_logprobs: f32, full_len: usize) {
        let score = sum_logprobs / (full_len as f32).powf(self.length_penalty);
        if self.beams.len() < self.n || score > self.worst {
            self.beams.push((score, tokens));
            if self.beams.len() > self.n {
                let mut order: Vec<(f32, usize)> = self.beams.iter().enumerate().map(|(i, b)| (b.0, i)).collect();
                order.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                self.beams.remove(order[0].1);
                self.worst = order[1].0;
            } else {
                self.worst = self.worst.min(score);
            }
        }
    }

    fn is_done(&self, best_sum_logprobs: f32, cur_len: usize) -> bool {
        if self.beams.len() < self.n {
            return false;
        }
        let highest = best_sum_logprobs / (cur_len as f32).powf(self.length_penalty);
        self.worst >= highest
    }

    fn best(self) -> (Vec<u32>, f32) {
        let mut best: Option<(f32, Vec<u32>)> = None;
        for (s, t) in self.beams {
            if best.as_ref().is_none_or(|b| s >= b.0) {
                best = Some((s, t));
            }
        }
        let (s, t) = best.unwrap_or((0.0, Vec::new()));
        (t, s)
    }
}

/// Runs one search to the end with a single-prompt scorer: `step(rows, tokens)` keeps the given rows of the
/// previous state, appends the tokens and returns one logits row per kept row.
pub fn run_single(
    mut step: impl FnMut(&[usize], &[u32]) -> Result<Vec<Vec<f32>>>,
    first: Vec<f32>,
    prompt_len: usize,
    params: &SearchParams,
) -> Result<(Vec<u32>, f32)> {
    let mut search = Search::new(params, prompt_len)?;
    let mut logits = vec![first];
    loop {
        match search.advance(&logits)? {
            Step::Done => return Ok(search.finish()),
            Step::Continue { rows, tokens } => logits = step(&rows, &tokens)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy "model": next-token log-probs depend only on the last token, from a fixed table.
    struct Table {
        table: Vec<Vec<f32>>,
    }

    fn run(m: &mut Table, _state: Vec<u32>, first: Vec<f32>, prompt_len: usize, p: &SearchParams) -> Result<(Vec<u32>, f32)> {
        run_single(|_rows, tokens| Ok(tokens.iter().map(|&t| m.table[t as usize].clone()).collect()), first, prompt_len, p)
    }

    fn ln(p: &[f32]) -> Vec<f32> {
        p.iter().map(|v| v.ln()).collect()
    }

    #[test]
    fn greedy_stops_at_stop_token_and_excludes_it() {
        // tokens: 0 = stop, 1, 2
        let mut m = Table { table: vec![ln(&[0.1, 0.2, 0.7]), ln(&[0.1, 0.1, 0.8]), ln(&[0.9, 0.05, 0.05])] };
        let (toks, score) = run(&mut m, vec![1], ln(&[0.2, 0.1, 0.7]), 3, &SearchParams::greedy(10, vec![0])).unwrap();
        assert_eq!(toks, vec![2]);
        assert!((score - 0.7f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn greedy_respects_max_new_tokens() {
        let mut m = Table { table: vec![ln(&[0.1, 0.9]), ln(&[0.1, 0.9])] };
        let (toks, _) = run(&mut m, vec![1], ln(&[0.1, 0.9]), 1, &SearchParams::greedy(4, vec![0])).unwrap();
        assert_eq!(toks, vec![1, 1, 1, 1]);
    }

    #[test]
    fn beam_finds_better_sequence_than_greedy() {
        // From the start: 1 (0.6) or 2 (0.4). After 1: stop 0.5, 1: 0.25, 2: 0.25; after 2: stop 0.95.
        // Greedy: 1 then stop → 0.6*0.5 = 0.30. Beam: 2 then stop → 0.4*0.95 = 0.38.
        let table = vec![ln(&[1.0, 1e-9, 1e-9]), ln(&[0.5, 0.25, 0.25]), ln(&[0.95, 0.025, 0.025])];
        let first = ln(&[1e-9, 0.6, 0.4]);
        let mut m = Table { table: table.clone() };
        let (g, _) = run(&mut m, vec![0], first.clone(), 2, &SearchParams::greedy(5, vec![0])).unwrap();
        assert_eq!(g, vec![1]);
        let p = SearchParams { num_beams: 2, max_new_tokens: 5, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![0] };
        let mut m = Table { table };
        let (b, s) = run(&mut m, vec![0], first, 2, &p).unwrap();
        assert_eq!(b, vec![2]);
        assert!((s - (0.4f32.ln() + 0.95f32.ln())).abs() < 1e-5);
    }

    #[test]
    fn min_new_tokens_blocks_stop() {
        let mut m = Table { table: vec![ln(&[0.9, 0.1]), ln(&[0.9, 0.1])] };
        let mut p = SearchParams::greedy(5, vec![0]);
        p.min_new_tokens = 2;
        let (toks, _) = run(&mut m, vec![1], ln(&[0.9, 0.1]), 1, &p).unwrap();
        assert_eq!(toks, vec![1, 1]);
    }

    #[test]
    fn invalid_params_are_errors() {
        let mut m = Table { table: vec![vec![0.0]] };
        let p = SearchParams { num_beams: 0, max_new_tokens: 1, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![] };
        assert!(run(&mut m, vec![0], vec![0.0], 1, &p).is_err());
    }
}
