//! Metrics: pure functions from predictions and references to scores.
//!
//! This module owns every number the harness reports: VQA accuracy (official `vqaEval.py` rules and
//! OpenFlamingo's variant), the COCO caption metrics as pycocoevalcap computes them (PTB tokenisation
//! reimplemented in Rust, CIDEr-D, BLEU-1..4, ROUGE-L), classification metrics (ROC-AUC, top-k), video-QA
//! exact match, and bootstrap confidence intervals for all of them.
//!
//! Everything here except [`formats`] is free of I/O: the engine calls these functions with in-memory
//! predictions. [`formats`] reads the official file layouts (for `flamingo-eval score`) and turns them into
//! the plain structs the metric functions take, with errors that name the file and the record.
//!
//! Not here: METEOR and SPICE (they need Java jars / a CoreNLP download and are out of scope).

pub mod bootstrap;
pub mod caption;
pub mod classification;
pub mod formats;
pub mod numeric;
pub mod ptb;
pub mod ptb_chars;
pub mod videoqa;
pub mod vqa;

pub use bootstrap::{bootstrap_ci, bootstrap_mean_ci, BootstrapConfig, ConfidenceInterval};
pub use caption::{bleu, cider_d, rouge_l, BleuScores, CaptionSample, CorpusScores};
pub use classification::{roc_auc, top_k_accuracy};
pub use ptb::ptb_tokenize;
pub use vqa::{evaluate_vqa, normalize_answer, vqa_accuracy, VqaMode};

/// Errors raised by metric functions on inputs for which the metric is undefined.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    #[error("no samples to score")]
    Empty,
    /// scikit-learn's `roc_auc_score` (1.9.1) returns NaN here, with an `UndefinedMetricWarning` ("Only one
    /// class is present in y_true. ROC AUC score is not defined in that case."); this harness reports it as
    /// undefined, never as a number.
    #[error("ROC-AUC is undefined: only one class is present in the labels ({0}); scikit-learn's roc_auc_score (1.9.1) returns NaN with an UndefinedMetricWarning in this case")]
    SingleClass(String),
    #[error("score {index} is not a finite number ({value})")]
    NonFinite { index: usize, value: f64 },
    #[error("{0}")]
    Invalid(String),
}
