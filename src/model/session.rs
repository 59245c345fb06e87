//! One ONNX component: its session, and the check of its inputs/outputs against the contract.

use crate::model::runtime::{create_session_with, Optimization, ProviderReport, RuntimeOptions};
use anyhow::{anyhow, bail, Result};
use ort::session::{Session, SessionInputValue, SessionOutputs};
use ort::value::TensorElementType;
use ort::value::ValueType;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Expected element type of a tensor in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    /// float16 (the float tensors of a `dtype: fp16` model, CONTRACT.md "Precision").
    F16,
    I64,
}

impl DType {
    fn matches(self, t: TensorElementType) -> bool {
        matches!(
            (self, t),
            (DType::F32, TensorElementType::Float32) | (DType::F16, TensorElementType::Float16) | (DType::I64, TensorElementType::Int64)
        )
    }
    fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::I64 => "int64",
        }
    }
    /// The contract dtype of a float tensor whose type the manifest's `dtype` decides.
    pub fn float(ty: crate::model::tensors::FloatType) -> DType {
        match ty {
            crate::model::tensors::FloatType::F32 => DType::F32,
            crate::model::tensors::FloatType::F16 => DType::F16,
        }
    }
}

/// One tensor of the contract: name, dtype, and the shape written for humans (e.g. `[N,3,H,W]`).
#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: String,
}

impl TensorSpec {
    pub fn new(name: impl Into<String>, dtype: DType, shape: &str) -> Self {
        TensorSpec { name: name.into(), dtype, shape: shape.to_string() }
    }
    fn rank(&self) -> usize {
        self.shape.trim_matches(|c| c == '[' || c == ']').split(',').filter(|s| !s.is_empty()).count()
    }
}

/// Where an IoBinding call puts its outputs: those `on_device` names in `memory`, the rest in host memory.
pub(crate) struct OutputBinding {
    pub memory: crate::model::device_kv::KvMemory,
    pub on_device: fn(&str) -> bool,
}

pub struct Component {
    pub name: &'static str,
    pub path: PathBuf,
    pub session: Session,
    pub provider: ProviderReport,
}

impl Component {
    /// Loads a component and checks it against the contract's inputs/outputs.
    pub fn load(
        name: &'static str,
        path: &Path,
        inputs: &[TensorSpec],
        outputs: &[TensorSpec],
        opts: &RuntimeOptions,
        optimization: Optimization,
    ) -> Result<Component> {
        if !path.exists() {
            bail!(
                "{}: component file missing ({name}); the model directory is incomplete — re-export it with \
                 export/export_openflamingo.py",
                path.display()
            );
        }
        let (session, provider) = create_session_with(path, name, opts, optimization)?;
        check_io(path, "input", session.inputs().iter().map(|o| (o.name(), o.dtype())), inputs)?;
        check_io(path, "output", session.outputs().iter().map(|o| (o.name(), o.dtype())), outputs)?;
        Ok(Component { name, path: path.to_path_buf(), session, provider })
    }

    pub fn run<'s>(&'s mut self, inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)>) -> Result<SessionOutputs<'s>> {
        let path = self.path.display().to_string();
        self.session.run(inputs).map_err(|e| anyhow!("{path}: ONNX Runtime failed: {}", crate::model::runtime::strip_ansi(&e.to_string())))
    }

    /// Runs the session and hands its outputs to `f`. With a `binding`, through ONNX Runtime's IoBinding: every
    /// input bound (values ONNX Runtime owns, such as a previous call's KV cache, without a copy; borrowed views
    /// are copied once by the binding), the outputs `binding.on_device` names allocated by ONNX Runtime in
    /// `binding.memory` (the device's memory: a device-resident KV cache), the others in host memory. The same
    /// numbers either way.
    pub(crate) fn run_with<R>(
        &mut self,
        inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)>,
        binding: Option<&OutputBinding>,
        f: impl FnOnce(&mut SessionOutputs<'_>) -> Result<R>,
    ) -> Result<R> {
        let Some(binding) = binding else {
            let mut out = self.run(inputs)?;
            return f(&mut out);
        };
        let path = self.path.display().to_string();
        let err = |e: ort::Error| anyhow!("{path}: ONNX Runtime failed: {}", crate::model::runtime::strip_ansi(&e.to_string()));
        use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
        let mut b = self.session.create_binding().map_err(err)?;
        for (name, value) in &inputs {
            b.bind_input(name.as_ref(), &**value).map_err(err)?;
        }
        let cpu = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default).map_err(err)?;
        let device = binding.memory.info()?;
        let names: Vec<String> = self.session.outputs().iter().map(|o| o.name().to_string()).collect();
        for name in names {
            let mem = if (binding.on_device)(&name) { &device } else { &cpu };
            b.bind_output_to_device(name, mem).map_err(err)?;
        }
        let mut out = self.session.run_binding(&b).map_err(err)?;
        f(&mut out)
    }
}

fn check_io<'a>(
    path: &Path,
    kind: &str,
    actual: impl Iterator<Item = (&'a str, &'a ValueType)>,
    expected: &[TensorSpec],
) -> Result<()> {
    let actual: Vec<(&str, &ValueType)> = actual.collect();
    for spec in expected {
        let Some((_, ty)) = actual.iter().find(|(n, _)| *n == spec.name) else {
            let names: Vec<&str> = actual.iter().map(|(n, _)| *n).collect();
            bail!(
                "{}: {kind} tensor '{}' ({} {}) is missing; the graph has {kind}s {:?}. The file does not follow \
                 flamingo-eval model contract (export/CONTRACT.md)",
                path.display(),
                spec.name,
                spec.dtype.name(),
                spec.shape,
                names
            );
        };
        let (Some(elem), Some(shape)) = (ty.tensor_type(), ty.tensor_shape()) else {
            bail!("{}: {kind} '{}' is not a tensor; expected {} {}", path.display(), spec.name, spec.dtype.name(), spec.shape);
        };
        if !spec.dtype.matches(elem) {
            let floats = matches!(spec.dtype, DType::F32 | DType::F16)
                && matches!(elem, TensorElementType::Float32 | TensorElementType::Float16);
            let hint = if floats {
                ". model.yaml's `dtype` decides the graphs' float type (fp32 and bf16: float32; fp16: float16, \
                 except pixels, image_embedding and logits; export/CONTRACT.md \"Precision\"): this graph was \
                 exported with another --dtype than model.yaml says — re-export the model, or fix `dtype` in model.yaml"
            } else {
                ""
            };
            bail!(
                "{}: {kind} '{}' has dtype {elem}, expected {} with shape {}{hint}",
                path.display(),
                spec.name,
                spec.dtype.name(),
                spec.shape
            );
        }
        if shape.len() != spec.rank() {
            bail!(
                "{}: {kind} '{}' has rank {} ({:?}), expected shape {}",
                path.display(),
                spec.name,
                shape.len(),
                &shape[..],
                spec.shape
            );
        }
    }
    if kind == "input" {
        for (name, _) in &actual {
            if !expected.iter().any(|s| s.name == *name) {
                bail!(
                    "{}: unexpected input tensor '{name}' (not in the model contract, export/CONTRACT.md; expected {:?})",
                    path.display(),
                    expected.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()
                );
            }
        }
    }
    Ok(())
}
