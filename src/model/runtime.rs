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
    /// Explicit path of `libonnxruntime.so` (`--ort-lib`); otherwise found at run time, see [`candidate_libs`].
    pub ort_lib: Option<PathBuf>,
    pub device: Device,
    /// Run on the CPU when the requested device cannot be used (`--allow-cpu-fallback`); default: an error.
    pub allow_cpu_fallback: bool,
    /// Intra-op threads per session (0 = ONNX Runtime's default: one per physical core).
    pub intra_threads: usize,
    /// Let ORT worker threads spin after a run (faster for back-to-back calls, burns CPU when idle).
    pub spinning: bool,
    /// How generation prompts of different lengths share decoder calls (`--batching`).
    pub batching: super::Batching,
    /// Run the decoder through ONNX Runtime's IoBinding (`--io-binding`) with a device-resident KV cache: the
    /// `present_*` outputs are bound to the decoder device's memory and fed back without a host copy, rows are
    /// selected on the device (`device_kv`), logits come back to the host. Byte-identical predictions (tested).
    pub io_binding: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { ort_lib: None, device: Device::Cpu, allow_cpu_fallback: false, intra_threads: 0, spinning: false, batching: super::Batching::EqualLength, io_binding: false }
    }
}

/// Minimum ONNX Runtime version this build accepts (ort's `api-31`).
pub const MIN_ORT_VERSION: &str = "1.31";

static ENVIRONMENT: OnceLock<std::result::Result<(Environment, PathBuf), String>> = OnceLock::new();

const HOW_TO_GET: &str = "run scripts/setup_ort.sh (it downloads the pinned onnxruntime wheel from PyPI into .ort/), \
or point --ort-lib / ORT_DYLIB_PATH at libonnxruntime.so (version >= 1.31)";

const LIB_NAMES: &[&str] = &["libonnxruntime.so", "libonnxruntime.so.1"];

/// The flamingo-eval checkout a binary belongs to, found at run time: the nearest ancestor of the executable
/// (`target/{debug,release}/flamingo-eval` → two levels up) holding this crate's Cargo.toml. None for a binary
/// copied out of its checkout. Never a path recorded at build time: a copied or moved tree must not use the
/// original checkout's files.
pub fn project_root() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    exe.ancestors().skip(1).find(|d| is_checkout(d)).map(Path::to_path_buf)
}

fn is_checkout(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"flamingo-eval\""))
}

/// Where the ONNX Runtime library is looked for, in order: `--ort-lib`; `$ORT_DYLIB_PATH`; next to the
/// executable; the project's `.ort/` (of the current directory when it is a checkout, then of the checkout the
/// executable lives in); the system (`$LD_LIBRARY_PATH`, then the standard library folders). All decided at
/// run time.
pub fn candidate_libs(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        if is_checkout(&cwd) {
            dirs.push(cwd.join(".ort"));
        }
    }
    if let Some(root) = project_root() {
        dirs.push(root.join(".ort"));
    }
    if let Some(ld) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&ld).filter(|p| !p.as_os_str().is_empty()));
    }
    for d in ["/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib"] {
        dirs.push(PathBuf::from(d));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dirs {
        for n in LIB_NAMES {
            let p = d.join(n);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// ONNX Runtime's messages can carry ANSI colour codes (its logger colours errors); they are removed before
/// a message is shown or stored.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
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
        // ONNX Runtime's own logger prints every failed call in ANSI colours before returning the same message
        // as an error, which flamingo-eval reports itself (named, colour codes removed): only fatal lines stay.
        env.set_log_level(ort::logging::LogLevel::Fatal);
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

/// How far ONNX Runtime optimises a graph when the session is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimization {
    /// Level 3 (`ORT_ENABLE_LAYOUT`): every fp32 model, unchanged since the goldens were pinned.
    Standard,
    /// `ORT_ENABLE_ALL`: float16 graphs (contract 4 `dtype: fp16`). Below it, the CPU provider runs the Casts it
    /// inserts around nodes without float16 kernels in a way whose results depend on the batch size (measured:
    /// logits of one prompt ~1e-6 apart alone and in a batch of two, onnxruntime 1.32); at this level they fold
    /// into the neighbouring fp32 kernels and a row's logits are the same bits in any batch.
    Full,
}

/// Creates a session for one component file with the configured provider and threads.
pub fn create_session(path: &Path, component: &str, opts: &RuntimeOptions) -> Result<(Session, ProviderReport)> {
    create_session_with(path, component, opts, Optimization::Standard)
}

/// [`create_session`] at an explicit optimisation level.
pub fn create_session_with(path: &Path, component: &str, opts: &RuntimeOptions, optimization: Optimization) -> Result<(Session, ProviderReport)> {
    let (mut builder, report) = session_builder(component, opts, optimization)?;
    let session = builder
        .commit_from_file(path)
        .map_err(|e| anyhow!("{}", strip_ansi(&e.to_string())))
        .with_context(|| format!("could not load {} ({component}) into ONNX Runtime", path.display()))?;
    Ok((session, report))
}

/// A session for a graph held in memory (flamingo-eval's own small graphs, e.g. the KV cache row gather of
/// `device_kv`), with the configured provider and threads.
pub(crate) fn create_session_from_bytes(model: &[u8], component: &str, opts: &RuntimeOptions) -> Result<(Session, ProviderReport)> {
    let (mut builder, report) = session_builder(component, opts, Optimization::Standard)?;
    let session = builder
        .commit_from_memory(model)
        .map_err(|e| anyhow!("{}", strip_ansi(&e.to_string())))
        .with_context(|| format!("could not create the {component} session"))?;
    Ok((session, report))
}

fn session_builder(component: &str, opts: &RuntimeOptions, optimization: Optimization) -> Result<(Builder, ProviderReport)> {
    let env = environment(opts.ort_lib.as_deref())?;
    let level = match optimization {
        Optimization::Standard => GraphOptimizationLevel::Level3,
        Optimization::Full => GraphOptimizationLevel::All,
    };
    let mut builder = Session::builder(env)
        .map_err(|e| anyhow!("{e}"))?
        .with_optimization_level(level)
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
                if !opts.allow_cpu_fallback {
                    bail!("{component}: {}", device_error(opts.device, &why));
                }
                builder = b;
                report.fell_back = true;
                report.note = Some(why);
            }
        }
    }
    Ok((builder, report))
}

type Builder = ort::session::builder::SessionBuilder;

/// The refusal of a device that cannot be used, naming the fix.
fn device_error(device: Device, why: &str) -> String {
    let fix = if cfg!(feature = "cuda") {
        "point --ort-lib / ORT_DYLIB_PATH at the libonnxruntime.so of the onnxruntime-gpu wheel (1.32, with CUDA 12 \
         and cuDNN 9 installed) on a machine with an NVIDIA GPU"
    } else {
        "rebuild with `cargo build --release --features cuda` and use the onnxruntime-gpu library (--ort-lib / \
         ORT_DYLIB_PATH)"
    };
    format!("--device {device} cannot be used: {}. To fix: {fix}; or pass --allow-cpu-fallback to run on the CPU instead", why.trim_end_matches('.'))
}

/// Checks, before any model file is read, that the requested device can be used: a CUDA device needs a build
/// with the `cuda` feature and an ONNX Runtime library with the CUDA execution provider. Ok(None) when it
/// can; Ok(Some(note)) when it cannot but `allow_cpu_fallback` is set.
pub fn check_device(opts: &RuntimeOptions) -> Result<Option<String>> {
    let Device::Cuda(id) = opts.device else { return Ok(None) };
    let env = environment(opts.ort_lib.as_deref())?;
    let builder = Session::builder(env).map_err(|e| anyhow!("{e}"))?;
    match register_cuda(builder, id) {
        Ok(_) => Ok(None),
        Err((_, why)) if opts.allow_cpu_fallback => Ok(Some(format!("{} was requested but cannot be used ({why}); running on the CPU (--allow-cpu-fallback)", opts.device))),
        Err((_, why)) => bail!("{}", device_error(opts.device, &why)),
    }
}

#[cfg(feature = "cuda")]
fn register_cuda(builder: Builder, id: i32) -> std::result::Result<Builder, (Builder, String)> {
    use ort::ep::CUDA;
    let ep = CUDA::default().with_device_id(id).build().error_on_failure();
    let mut builder = builder;
    match ep.register(&mut builder) {
        Ok(()) => Ok(builder),
        Err(e) => Err((builder, strip_ansi(&e.to_string()))),
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

    #[test]
    fn ansi_codes_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[1;31m2026 [E:onnxruntime] bad index\u{1b}[m done"), "2026 [E:onnxruntime] bad index done");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn the_library_is_never_looked_up_in_the_build_checkout() {
        // Run time only: the executable's folder and checkout, the current checkout, the system.
        assert_eq!(candidate_libs(Some(Path::new("/x/lib.so"))), vec![PathBuf::from("/x/lib.so")]);
        if std::env::var_os("ORT_DYLIB_PATH").is_some_and(|v| !v.is_empty()) {
            return; // the environment decides
        }
        let c = candidate_libs(None);
        let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
        assert_eq!(c[0], exe_dir.join("libonnxruntime.so"));
        assert!(c.iter().any(|p| p.starts_with("/usr/lib")));
    }
}
