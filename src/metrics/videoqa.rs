//! Video QA (MSRVTT-QA, MSVD-QA): top-1 exact match after normalisation.
//!
//! Both the prediction and the answer go through [`super::vqa::normalize_answer`] (the full VQA
//! normalisation: newline/tab cleaning, punctuation, lowercase, number words to digits, articles dropped,
//! contractions), then must be equal. Flamingo reports this as "top-1 accuracy".

use super::vqa::normalize_answer;

/// Whether a prediction matches the answer after normalisation.
pub fn exact_match(prediction: &str, answer: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(answer)
}

/// Per-sample exact match (1.0 or 0.0), for the mean and for bootstrap.
pub fn exact_match_scores(pairs: &[(String, String)]) -> Vec<f64> {
    pairs.iter().map(|(p, a)| if exact_match(p, a) { 1.0 } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn normalises() {
        assert!(exact_match("A Dog.", "dog"));
        assert!(exact_match("two", "2"));
        assert!(!exact_match("cat", "dog"));
    }
}
