//! Flags shared by every subcommand that runs a model.

use crate::model::{Device, RuntimeOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// Where to run: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda` and onnxruntime-gpu). A
    /// device that cannot be used is an error naming the fix, unless --allow-cpu-fallback.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Run on the CPU (with a warning) when the requested device cannot be used, instead of failing.
    #[arg(long)]
    pub allow_cpu_fallback: bool,
    /// Accepted for compatibility: failing on an unusable device is now the default.
    #[arg(long, hide = true, conflicts_with = "allow_cpu_fallback")]
    pub require_device: bool,
    /// Path of libonnxruntime.so (default, looked up at run time: $ORT_DYLIB_PATH, next to the executable,
    /// the project's .ort/ from scripts/setup_ort.sh, then the system library folders).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// ONNX Runtime intra-op threads per session (0 = one per physical core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Let ONNX Runtime's worker threads spin between runs (faster back-to-back calls, burns idle CPU).
    #[arg(long)]
    pub ort_spinning: bool,
    /// How generation prompts of different lengths share decoder calls: equal-length (default: only prompts of
    /// the same token length, byte-identical whatever --batch-size) or padded (left-padded to the longest of
    /// the batch: fewer calls; recorded in run.json and summary.json, results kept apart from equal-length).
    #[arg(long, default_value = "equal-length")]
    pub batching: crate::model::Batching,
}

impl RuntimeArgs {
    pub fn options(&self) -> RuntimeOptions {
        RuntimeOptions {
            ort_lib: self.ort_lib.clone(),
            device: self.device,
            allow_cpu_fallback: self.allow_cpu_fallback,
            intra_threads: self.threads,
            spinning: self.ort_spinning,
            batching: self.batching,
        }
    }
}

/// Prints which provider runs each component, loudly when a requested device was not used.
pub fn report_providers(reports: &[crate::model::ProviderReport]) {
    for r in reports {
        if r.fell_back {
            eprintln!(
                "WARNING: {} runs on CPUExecutionProvider although {} was requested ({}); --allow-cpu-fallback is set.",
                r.component,
                r.requested,
                r.note.as_deref().unwrap_or("provider unavailable")
            );
        }
    }
}
