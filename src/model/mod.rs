//! The model layer: the only code that knows ONNX Runtime.
//!
//! It loads an exported model directory (`model.yaml` + three ONNX graphs + `tokenizer.json`, see
//! `export/CONTRACT.md`), preprocesses images exactly as OpenFlamingo's CLIP transform does, encodes each
//! distinct image once, and offers prefill / KV-cached decoding, greedy and beam search, and candidate
//! log-likelihoods. Everything above this module speaks token ids, media handles and log-probabilities.

pub mod batching;
pub mod checks;
pub mod clip;
pub(crate) mod device_kv;
pub mod flamingo;
pub(crate) mod kv;
pub mod manifest;
pub mod preprocess;
pub mod prompt_format;
pub mod runtime;
pub mod search;
pub mod session;
pub mod tensors;
pub mod tokenizer;
pub(crate) mod xattn;

pub use batching::Batching;
pub use flamingo::{CandidateScore, EncodedMedia, FlamingoModel, Generation, Media, ModelStats, Prompt};
pub use manifest::Manifest;
pub use runtime::{Device, ProviderReport, RuntimeOptions};
pub use search::SearchParams;
