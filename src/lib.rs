//! flamingo-eval: a few-shot evaluation harness for Flamingo-style visual language models.
//!
//! Layers, bottom up:
//! - [`model`]: the only code that knows ONNX Runtime. Loads an exported model directory (see
//!   `export/CONTRACT.md`), encodes media, prefills/decodes with a KV cache, generates and scores.
//! - [`metrics`]: pure functions from predictions and references to the official metric values.
//! - [`benchmark`]: declarative benchmark/prompt files, dataset loaders, prompt building and
//!   demonstration selection.
//! - [`engine`]: turns benchmark samples into requests, batches them through the model, writes results.
//! - [`report`]: reads finished results folders: reports, comparisons (CI gate), shard merging, exports.
//! - [`cli`]: the `flamingo-eval` command line.

pub mod benchmark;
pub mod cli;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod hashing;
pub mod metrics;
pub mod model;
pub mod report;
