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
    /// Run the decoder through ONNX Runtime's IoBinding with a device-resident KV cache: the cache outputs stay in
    /// the memory of the decoder's device (GPU memory with --device cuda) and their rows (beam reorders) are
    /// selected there; only logits come back to the host. Byte-identical predictions; see docs/PERFORMANCE.md.
    #[arg(long)]
    pub io_binding: bool,
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
            io_binding: self.io_binding,
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

/// A deprecated spelling was used: say what replaces it (the old one keeps working, hidden from --help).
pub fn deprecated(old: &str, new: &str) {
    eprintln!("warning: {old} is deprecated and will be removed; use {new}");
}

/// The bootstrap confidence-interval options, spelled the same in `run`, `compare` and `score`.
#[derive(Args, Debug, Clone)]
pub struct BootstrapArgs {
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub bootstrap_resamples: usize,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0, value_name = "SEED")]
    pub bootstrap_seed: u64,
    /// Two-sided confidence level of the bootstrap intervals.
    #[arg(long, default_value_t = 0.95, value_name = "LEVEL")]
    pub bootstrap_confidence: f64,
}

/// Old spellings of the bootstrap options (`compare --resamples/--seed`, `score --bootstrap/--seed/--confidence`),
/// kept hidden so existing scripts go on working, with a warning.
#[derive(Args, Debug, Clone, Default)]
pub struct LegacyBootstrapArgs {
    /// Deprecated: --bootstrap-resamples.
    #[arg(long = "resamples", hide = true, conflicts_with = "bootstrap_resamples", value_name = "N")]
    pub resamples: Option<usize>,
    /// Deprecated: --bootstrap-resamples.
    #[arg(long = "bootstrap", hide = true, conflicts_with_all = ["bootstrap_resamples", "resamples"], value_name = "N")]
    pub bootstrap: Option<usize>,
    /// Deprecated: --bootstrap-seed.
    #[arg(long = "seed", hide = true, conflicts_with = "bootstrap_seed", value_name = "SEED")]
    pub seed: Option<u64>,
    /// Deprecated: --bootstrap-confidence.
    #[arg(long = "confidence", hide = true, conflicts_with = "bootstrap_confidence", value_name = "LEVEL")]
    pub confidence: Option<f64>,
}

impl BootstrapArgs {
    /// The configuration, with any old spelling applied (and warned about).
    pub fn config(&self, legacy: Option<&LegacyBootstrapArgs>) -> crate::metrics::BootstrapConfig {
        if let Some(l) = legacy {
            for (used, old, new) in [
                (l.resamples.is_some(), "--resamples", "--bootstrap-resamples"),
                (l.bootstrap.is_some(), "--bootstrap N", "--bootstrap-resamples N"),
                (l.seed.is_some(), "--seed (the bootstrap seed)", "--bootstrap-seed"),
                (l.confidence.is_some(), "--confidence", "--bootstrap-confidence"),
            ] {
                if used {
                    deprecated(old, new);
                }
            }
        }
        self.resolved(legacy)
    }

    /// [`Self::config`] without the warnings.
    pub fn resolved(&self, legacy: Option<&LegacyBootstrapArgs>) -> crate::metrics::BootstrapConfig {
        let l = legacy.cloned().unwrap_or_default();
        crate::metrics::BootstrapConfig {
            resamples: l.resamples.or(l.bootstrap).unwrap_or(self.bootstrap_resamples),
            seed: l.seed.unwrap_or(self.bootstrap_seed),
            confidence: l.confidence.unwrap_or(self.bootstrap_confidence),
        }
    }
}

/// Trial seeds replacing the benchmark file's `trials.seeds`.
#[derive(Args, Debug, Clone, Default)]
pub struct SeedArgs {
    /// Run one trial with this seed instead of the benchmark's trials.seeds.
    #[arg(long, value_name = "SEED", conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Trial seeds replacing the benchmark's trials.seeds, e.g. 1,2,3 (one trial per seed).
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
}

impl SeedArgs {
    pub fn seeds(&self) -> Option<Vec<u64>> {
        self.seeds.clone().or(self.seed.map(|s| vec![s]))
    }
}

/// Results folders given as `--results DIR...` (the spelling of every subcommand that reads them) or, as
/// before, as positional arguments (deprecated, with a warning).
pub fn results_folders(flag: &[PathBuf], positional: &[PathBuf]) -> Vec<PathBuf> {
    if !positional.is_empty() {
        deprecated("giving results folders as positional arguments", "--results DIR");
    }
    flag.iter().chain(positional).cloned().collect()
}
