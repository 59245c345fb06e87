//! The evaluation engine: turns a benchmark's requests into model calls, writes one record per sample
//! (`samples.jsonl`, appended durably so a run can resume), and computes the summary (`summary.json`,
//! `summary.csv`) with provenance.
//!
//! Determinism: requests are processed and written in request order; the model layer never pads prompts of
//! different lengths into one call, so records are byte-identical across batch sizes, thread counts and
//! resumes.

pub mod identity;
pub mod lock;
pub mod outcome;
pub mod preflight;
pub mod progress;
pub mod records;
pub mod reuse;
pub mod run;
pub mod scoring;

pub use records::{read_records, SampleRecord};
pub use run::{run, RunConfig, Summary};
