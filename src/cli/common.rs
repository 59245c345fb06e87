//! Flags shared by every subcommand that runs a model.

use crate::model::{Device, RuntimeOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// Where to run: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda` and onnxruntime-gpu).
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Fail instead of falling back to the CPU when the requested device cannot be used.
    #[arg(long)]
    pub require_device: bool,
    /// Path of libonnxruntime.so (default: $ORT_DYLIB_PATH, then .ort/ from scripts/setup_ort.sh).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// ONNX Runtime intra-op threads per session (0 = one per physical core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Let ONNX Runtime's worker threads spin between runs (faster back-to-back calls, burns idle CPU).
    #[arg(long)]
    pub ort_spinning: bool,
}

impl RuntimeArgs {
    pub fn options(&self) -> RuntimeOptions {
        RuntimeOptions {
            ort_lib: self.ort_lib.clone(),
            device: self.device,
            require_device: self.require_device,
            intra_threads: self.threads,
            spinning: self.ort_spinning,
        }
    }
}

/// Prints which provider runs each component, loudly when a requested device was not used.
pub fn report_providers(reports: &[crate::model::ProviderReport]) {
    for r in reports {
        if r.fell_back {
            eprintln!(
                "WARNING: {} runs on CPUExecutionProvider although {} was requested ({}). Use --require-device to make this an error.",
                r.component,
                r.requested,
                r.note.as_deref().unwrap_or("provider unavailable")
            );
        }
    }
}
