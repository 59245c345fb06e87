//! ONNX Runtime: finding and loading the shared library, the process-wide environment, execution
//! providers and session options. Nothing outside `crate::model` sees these types.

use anyhow::{anyhow, bail, Context, Result};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(i32),
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<i32>()
                    .map(Device::Cuda)
                    .map_err(|_| format!("invalid device '{s}': expected cpu, cuda or cuda:N")),
                None => Err(format!("invalid device '{s}': expected cpu, cuda or cuda:N")),
            },
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// How sessions are created.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Explicit path of `libonnxruntime.so` (`--ort-lib`); otherwise `ORT_DYLIB_PATH`, then `.ort/` of the
    /// checkout the binary was built in or the current directory.
    pub ort_lib: Option<PathBuf>,
    pub device: Device,
    /// Fail instead of falling back to CPU when the requested device cannot be used.
    pub require_device: bool,
    /// Intra-op threads per session (0 = ONNX Runtime's default: one per physical core).
    pub intra_threads: usize,
    /// Let ORT worker threads spin after a run (faster for back-to-back calls, burns CPU when idle).
    pub spinning: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { ort_lib: None, device: Device::Cpu, require_device: false, intra_threads: 0, spinning: false }
    }
}

/// Minimum ONNX Runtime version this build accepts (ort's `api-31`).
pub const MIN_ORT_VERSION: &str = "1.31";

static ENVIRONMENT: OnceLock<std::result::Result<(Environment, PathBuf), String>> = OnceLock::new();

const HOW_TO_GET: &str = "run scripts/setup_ort.sh (it downloads the pinned onnxruntime wheel from PyPI into .ort/), \
or point --ort-lib / ORT_DYLIB_PATH at libonnxruntime.so (version >= 1.31)";

fn candidate_libs(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    let mut roots = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/flamingo-eval → the checkout root is two levels up.
        for anc in exe.ancestors().skip(1).take(4) {
            roots.push(anc.to_path_buf());
        }
    }
    for r in roots {
        out.push(r.join(".ort").join("libonnxruntime.so"));
    }
    out
}

/// Loads ONNX Runtime once per process and returns the shared environment.
pub fn environment(explicit_lib: Option<&Path>) -> Result<&'static Environment> {
    let entry = ENVIRONMENT.get_or_init(|| {
        let candidates = candidate_libs(explicit_lib);
        let Some(lib) = candidates.iter().find(|p| p.exists()) else {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            return Err(format!("ONNX Runtime library not found (looked for {}); {HOW_TO_GET}", tried.join(", ")));
        };
        let builder = ort::init_from(lib).map_err(|e| {
            format!("could not load ONNX Runtime from {}: {e}; it must be version >= {MIN_ORT_VERSION}; {HOW_TO_GET}", lib.display())
        })?;
        let env = builder
            .with_name("flamingo-eval")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("could not create the ONNX Runtime environment from {}: {e}", lib.display()))?;
        Ok((env, lib.clone()))
    });
    match entry {
        Ok((env, _)) => Ok(env),
        Err(msg) => Err(anyhow!("{msg}")),
    }
}

/// Path of the library that was loaded (after [`environment`] succeeded).
pub fn loaded_library() -> Option<PathBuf> {
    ENVIRONMENT.get().and_then(|r| r.as_ref().ok().map(|(_, p)| p.clone()))
}

/// Which execution provider a component ended up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderReport {
    pub component: String,
    pub requested: Device,
    /// "CPUExecutionProvider" or "CUDAExecutionProvider".
    pub provider: String,
    pub fell_back: bool,
    pub note: Option<String>,
}

/// Creates a session for one component file with the configured provider and threads.
pub fn create_session(path: &Path, component: &str, opts: &RuntimeOptions) -> Result<(Session, ProviderReport)> {
    let env = environment(opts.ort_lib.as_deref())?;
    let mut builder = Session::builder(env)
        .map_err(|e| anyhow!("{e}"))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| anyhow!("{e}"))?
        .with_intra_op_spinning(opts.spinning)
        .map_err(|e| anyhow!("{e}"))?
        .with_inter_op_spinning(opts.spinning)
        .map_err(|e| anyhow!("{e}"))?;
    if opts.intra_threads > 0 {
        builder = builder.with_intra_threads(opts.intra_threads).map_err(|e| anyhow!("{e}"))?;
    }
    let mut report = ProviderReport {
        component: component.to_string(),
        requested: opts.device,
        provider: "CPUExecutionProvider".into(),
        fell_back: false,
        note: None,
    };
    if let Device::Cuda(id) = opts.device {
        match register_cuda(builder, id) {
            Ok(b) => {
                builder = b;
                report.provider = "CUDAExecutionProvider".into();
            }
            Err((b, why)) => {
                if opts.require_device {
                    bail!("{component}: the CUDA execution provider could not be used ({why}) and --require-device is set");
                }
                builder = b;
                report.fell_back = true;
                report.note = Some(why);
            }
        }
    }
    let session = builder
        .commit_from_file(path)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("could not load {} ({component}) into ONNX Runtime", path.display()))?;
    Ok((session, report))
}

type Builder = ort::session::builder::SessionBuilder;

#[cfg(feature = "cuda")]
fn register_cuda(builder: Builder, id: i32) -> std::result::Result<Builder, (Builder, String)> {
    use ort::ep::{ExecutionProvider, CUDA};
    let ep = CUDA::default().with_device_id(id).build().error_on_failure();
    let mut builder = builder;
    match ep.register(&mut builder) {
        Ok(()) => Ok(builder),
        Err(e) => Err((builder, format!("{e}"))),
    }
}

#[cfg(not(feature = "cuda"))]
fn register_cuda(builder: Builder, _id: i32) -> std::result::Result<Builder, (Builder, String)> {
    Err((builder, "this flamingo-eval was built without the `cuda` cargo feature".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert!("gpu".parse::<Device>().is_err());
        assert!("cuda:x".parse::<Device>().is_err());
    }
}
