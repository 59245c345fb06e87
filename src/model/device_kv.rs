//! A device-resident KV cache (`--io-binding`): the decoder's `present_*` outputs are bound to the memory of the
//! device the decoder runs on (CUDA memory under the CUDA execution provider, host memory under the CPU one)
//! and passed back as the next call's `past_*` without leaving it. Rows are selected (beam reorders, finished
//! rows dropped, a prompt's cache repeated for candidate scoring) by [`RowGather`]: one ONNX `Gather` per cached
//! tensor, in a small graph this module writes itself and runs on the same execution provider, so the cache is
//! never copied through host memory. A gather is a copy: the selected rows are the same bits as the host-side
//! selection of [`super::kv`] (tested).

use crate::model::runtime::{create_session_from_bytes, Device, RuntimeOptions};
use crate::model::tensors::FloatType;
use anyhow::{anyhow, Result};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::DynTensor;

/// Where the device-resident cache lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvMemory {
    Cpu,
    Cuda(i32),
}

impl KvMemory {
    /// The memory of the device `provider` (an execution provider's name, as [`super::ProviderReport`] has it)
    /// runs on, for a session created for `device`.
    pub fn for_provider(device: Device, provider: &str) -> KvMemory {
        match device {
            Device::Cuda(id) if provider == "CUDAExecutionProvider" => KvMemory::Cuda(id),
            _ => KvMemory::Cpu,
        }
    }

    pub fn info(&self) -> Result<MemoryInfo<'static>> {
        let (dev, id) = match self {
            KvMemory::Cpu => (AllocationDevice::CPU, 0),
            KvMemory::Cuda(id) => (AllocationDevice::CUDA, *id),
        };
        MemoryInfo::new(dev, id, AllocatorType::Device, MemoryType::Default).map_err(|e| anyhow!("memory info for {self:?}: {e}"))
    }
}

/// Selects rows of `n` tensors `[B, ...]` at once on the device that holds them.
pub(crate) struct RowGather {
    session: Session,
    n: usize,
    memory: KvMemory,
    /// Gathers run so far.
    pub calls: usize,
}

impl std::fmt::Debug for RowGather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowGather({} tensors on {:?})", self.n, self.memory)
    }
}

impl RowGather {
    /// A gather of `n` tensors of element type `ty`, on the execution provider of `opts` (the decoder's).
    pub fn new(n: usize, ty: FloatType, memory: KvMemory, opts: &RuntimeOptions) -> Result<RowGather> {
        let mut opts = opts.clone();
        // the cache lives where the decoder runs: if the decoder fell back to the CPU, so does the gather
        if memory == KvMemory::Cpu {
            opts.device = Device::Cpu;
        }
        let (session, _) = create_session_from_bytes(&gather_rows_model(n, ty), "kv_row_gather", &opts)?;
        Ok(RowGather { session, n, memory, calls: 0 })
    }

    pub fn memory(&self) -> KvMemory {
        self.memory
    }

    /// `out[i][j] = tensors[i][rows[j]]` for every tensor, computed and kept on the device.
    pub fn gather(&mut self, tensors: &[&DynTensor], rows: &[usize]) -> Result<Vec<DynTensor>> {
        if tensors.len() != self.n {
            return Err(anyhow!("row gather built for {} tensors, called with {}", self.n, tensors.len()));
        }
        let err = |e: ort::Error| anyhow!("KV cache row selection on the device: ONNX Runtime failed: {}", crate::model::runtime::strip_ansi(&e.to_string()));
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = ort::value::Tensor::from_array((vec![idx.len() as i64], idx)).map_err(|e| anyhow!("{e}"))?;
        let mem = self.memory.info()?;
        let mut b = self.session.create_binding().map_err(err)?;
        b.bind_input("rows", &idx).map_err(err)?;
        for (i, t) in tensors.iter().enumerate() {
            b.bind_input(format!("x{i}"), *t).map_err(err)?;
            b.bind_output_to_device(format!("y{i}"), &mem).map_err(err)?;
        }
        let mut out = self.session.run_binding(&b).map_err(err)?;
        self.calls += 1;
        (0..self.n)
            .map(|i| {
                let name = format!("y{i}");
                let v = out.remove(&name).ok_or_else(|| anyhow!("row gather returned no output '{name}'"))?;
                v.downcast::<ort::value::DynTensorValueType>().map_err(|e| anyhow!("row gather output '{name}': {e}"))
            })
            .collect()
    }
}

/// A minimal protobuf writer for the few ONNX messages the gather graph needs (onnx.proto field numbers).
struct Pb(Vec<u8>);

impl Pb {
    fn new() -> Pb {
        Pb(Vec::new())
    }
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.varint(u64::from(field) << 3);
        self.varint(v as u64);
        self
    }
    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.varint((u64::from(field) << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(&mut self, field: u32, m: Pb) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// ValueInfoProto of a tensor with element type `elem` (TensorProto.DataType) and symbolic dims.
fn value_info(name: &str, elem: i64, dims: &[String]) -> Pb {
    let mut shape = Pb::new();
    for d in dims {
        let mut dim = Pb::new();
        dim.str(2, d); // Dimension.dim_param
        shape.msg(1, dim); // TensorShapeProto.dim
    }
    let mut tensor = Pb::new();
    tensor.int(1, elem).msg(2, shape); // TypeProto.Tensor: elem_type, shape
    let mut ty = Pb::new();
    ty.msg(1, tensor); // TypeProto.tensor_type
    let mut vi = Pb::new();
    vi.str(1, name).msg(2, ty); // ValueInfoProto: name, type
    vi
}

/// The ONNX model (opset 13, IR 7): inputs `rows` (int64 `[R]`) and `x0..x{n-1}` (`ty`, `[B, d1, d2, d3]`),
/// outputs `y{i} = Gather(x{i}, rows, axis = 0)` (`[R, d1, d2, d3]`).
pub(crate) fn gather_rows_model(n: usize, ty: FloatType) -> Vec<u8> {
    let elem = match ty {
        FloatType::F32 => 1, // FLOAT
        FloatType::F16 => 10, // FLOAT16
    };
    let mut graph = Pb::new();
    for i in 0..n {
        let mut axis = Pb::new();
        axis.str(1, "axis").int(3, 0).int(20, 2); // AttributeProto: name, i, type = INT
        let mut node = Pb::new();
        node.str(1, &format!("x{i}")).str(1, "rows").str(2, &format!("y{i}")).str(3, &format!("gather{i}")).str(4, "Gather").msg(5, axis);
        graph.msg(1, node); // GraphProto.node
    }
    graph.str(2, "kv_row_gather");
    graph.msg(11, value_info("rows", 7, &["R".into()])); // INT64
    for i in 0..n {
        let dims = |b: &str| [b.to_string(), format!("d1_{i}"), format!("d2_{i}"), format!("d3_{i}")];
        graph.msg(11, value_info(&format!("x{i}"), elem, &dims("B")));
        graph.msg(12, value_info(&format!("y{i}"), elem, &dims("R")));
    }
    let mut opset = Pb::new();
    opset.str(1, "").int(2, 13);
    let mut model = Pb::new();
    model.int(1, 7).str(2, "flamingo-eval").msg(7, graph).msg(8, opset); // ir_version, producer_name, graph, opset_import
    model.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensors::{self, Floats};

    fn tensor(ty: FloatType, shape: &[i64], seed: u32) -> DynTensor {
        let n: i64 = shape.iter().product();
        let v: Vec<f32> = (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 7.0 - 50.0).collect();
        match ty {
            FloatType::F32 => ort::value::Tensor::from_array((shape.to_vec(), v)).unwrap().upcast(),
            FloatType::F16 => tensors::f16_tensor(shape, &tensors::f32s_to_f16(&v)).unwrap(),
        }
    }

    fn rows_of(t: &DynTensor, rows: &[usize]) -> Vec<f32> {
        let row: usize = t.shape()[1..].iter().product::<i64>() as usize;
        let all = tensors::tensor_floats(t).unwrap().to_f32();
        rows.iter().flat_map(|&r| all[r * row..(r + 1) * row].to_vec()).collect()
    }

    #[test]
    fn the_gather_graph_selects_exactly_the_rows() {
        let opts = RuntimeOptions { intra_threads: 1, ..Default::default() };
        for ty in [FloatType::F32, FloatType::F16] {
            let mut g = RowGather::new(3, ty, KvMemory::Cpu, &opts).unwrap();
            let xs: Vec<DynTensor> = (0..3).map(|i| tensor(ty, &[4, 2, 3 + i, 5], i as u32)).collect();
            let refs: Vec<&DynTensor> = xs.iter().collect();
            // beam reorders with duplicates, a shrinking batch, a growing one (a prompt's cache per candidate)
            for rows in [vec![2, 0, 2, 1], vec![3, 1], vec![0, 0, 0, 0, 0, 0], vec![1]] {
                let ys = g.gather(&refs, &rows).unwrap();
                for (x, y) in xs.iter().zip(&ys) {
                    let mut want = x.shape().to_vec();
                    want[0] = rows.len() as i64;
                    assert_eq!(y.shape()[..], want[..], "{ty:?} {rows:?}");
                    let got = tensors::tensor_floats(y).unwrap().to_f32();
                    let exp = rows_of(x, &rows);
                    assert!(got.iter().zip(&exp).all(|(a, b)| a.to_bits() == b.to_bits()) && got.len() == exp.len(), "{ty:?} {rows:?}");
                    assert!(matches!((tensors::tensor_floats(y).unwrap(), ty), (Floats::F32(_), FloatType::F32) | (Floats::F16(_), FloatType::F16)));
                }
            }
            assert_eq!(g.calls, 4);
            assert!(g.gather(&refs[..2], &[0]).unwrap_err().to_string().contains("built for 3 tensors"));
        }
    }

    #[test]
    fn varints_and_fields_are_protobuf() {
        let mut p = Pb::new();
        p.int(1, 300).str(2, "ab");
        assert_eq!(p.0, vec![0x08, 0xAC, 0x02, 0x12, 0x02, b'a', b'b']);
    }
}
