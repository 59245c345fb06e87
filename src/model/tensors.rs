//! Float tensors at the graph boundary, in the graphs' own element type (export/CONTRACT.md, "Precision").
//!
//! A contract-4 model with `dtype: fp16` has float16 graphs: every float input and output is float16 except
//! `pixels`, `image_embedding` and `logits`, which stay float32. The runtime keeps what it only passes from
//! one graph to the next in the graph's type — the decoder's KV cache and the cross-attention keys/values —
//! and converts at this boundary what it computes with: media latents and patch tokens are held as f32
//! (float16 → float32 → float16 is exact, so the graphs see the same bits). Conversions are IEEE 754
//! binary16, round-to-nearest-even, written out here (no `half` crate in the offline build).

use anyhow::{anyhow, bail, Result};
use ort::memory::Allocator;
use ort::session::SessionInputValue;
use ort::value::{DynTensor, TensorElementType, TensorRef};

/// Element type of a graph's float tensors (those the manifest's `dtype` decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
}

/// Borrowed floats of either element type (binary16 as its bit pattern).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Floats<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
}

/// Mutable [`Floats`].
pub(crate) enum FloatsMut<'a> {
    F32(&'a mut [f32]),
    F16(&'a mut [u16]),
}

/// Owned floats of either element type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FloatBuf {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl FloatBuf {
    pub fn zeros(ty: FloatType, n: usize) -> FloatBuf {
        match ty {
            FloatType::F32 => FloatBuf::F32(vec![0.0; n]),
            FloatType::F16 => FloatBuf::F16(vec![0; n]),
        }
    }
    pub fn with_capacity(ty: FloatType, n: usize) -> FloatBuf {
        match ty {
            FloatType::F32 => FloatBuf::F32(Vec::with_capacity(n)),
            FloatType::F16 => FloatBuf::F16(Vec::with_capacity(n)),
        }
    }
    pub fn as_floats(&self) -> Floats<'_> {
        match self {
            FloatBuf::F32(v) => Floats::F32(v),
            FloatBuf::F16(v) => Floats::F16(v),
        }
    }
    pub fn as_floats_mut(&mut self) -> FloatsMut<'_> {
        match self {
            FloatBuf::F32(v) => FloatsMut::F32(v),
            FloatBuf::F16(v) => FloatsMut::F16(v),
        }
    }
    /// Appends `src` (same element type).
    pub fn extend_from(&mut self, src: Floats<'_>) -> Result<()> {
        match (self, src) {
            (FloatBuf::F32(d), Floats::F32(s)) => d.extend_from_slice(s),
            (FloatBuf::F16(d), Floats::F16(s)) => d.extend_from_slice(s),
            _ => bail!("internal error: float16 and float32 tensors mixed"),
        }
        Ok(())
    }
    /// `self[at..at + src.len()] = src` (same element type).
    pub fn write_at(&mut self, at: usize, src: Floats<'_>) -> Result<()> {
        match (self, src) {
            (FloatBuf::F32(d), Floats::F32(s)) => d[at..at + s.len()].copy_from_slice(s),
            (FloatBuf::F16(d), Floats::F16(s)) => d[at..at + s.len()].copy_from_slice(s),
            _ => bail!("internal error: float16 and float32 tensors mixed"),
        }
        Ok(())
    }
}

impl<'a> Floats<'a> {
    pub fn len(&self) -> usize {
        match self {
            Floats::F32(v) => v.len(),
            Floats::F16(v) => v.len(),
        }
    }
    pub fn slice(self, r: std::ops::Range<usize>) -> Floats<'a> {
        match self {
            Floats::F32(v) => Floats::F32(&v[r]),
            Floats::F16(v) => Floats::F16(&v[r]),
        }
    }
    pub fn to_buf(self) -> FloatBuf {
        match self {
            Floats::F32(v) => FloatBuf::F32(v.to_vec()),
            Floats::F16(v) => FloatBuf::F16(v.to_vec()),
        }
    }
    pub fn to_f32(self) -> Vec<f32> {
        match self {
            Floats::F32(v) => v.to_vec(),
            Floats::F16(v) => v.iter().map(|&h| f16_to_f32(h)).collect(),
        }
    }
}

/// binary16 bits → f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: m * 2^-24, normalised for f32
            let shift = m.leading_zeros() - 21; // bring the top set bit to bit 10
            let m = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// f32 → binary16 bits, round to nearest, ties to even (what numpy's `astype(float16)` and ONNX Runtime's
/// Cast do); beyond the largest finite half → ±inf, NaN stays NaN.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | if man == 0 { 0x7c00 } else { 0x7e00 | (man >> 13) as u16 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // subnormal half (or zero): value = man_full * 2^(exp-150); half subnormal unit 2^-24
        if e < -10 {
            return sign; // below half the smallest subnormal (ties included) → ±0
        }
        let full = man | 0x80_0000;
        let shift = (14 - e) as u32; // 24-bit significand → units of 2^-24
        let q = full >> shift;
        let rem = full & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        let q = if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q };
        return sign | q as u16;
    }
    let q = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    let q = if rem > 0x1000 || (rem == 0x1000 && q & 1 == 1) { q + 1 } else { q }; // may carry into inf: correct
    sign | q as u16
}

pub fn f32s_to_f16(v: &[f32]) -> Vec<u16> {
    v.iter().map(|&x| f32_to_f16(x)).collect()
}

/// The floats of a CPU tensor, in its element type (float32 or float16).
pub(crate) fn tensor_floats(t: &DynTensor) -> Result<Floats<'_>> {
    match t.data_type() {
        TensorElementType::Float32 => Ok(Floats::F32(t.try_extract_tensor::<f32>().map_err(|e| anyhow!("{e}"))?.1)),
        TensorElementType::Float16 => {
            if !t.memory_info().is_cpu_accessible() {
                bail!("a float16 tensor is not in CPU memory");
            }
            let n = t.shape().num_elements();
            if n == 0 {
                return Ok(Floats::F16(&[]));
            }
            // SAFETY: a CPU float16 tensor holds `n` contiguous 2-byte elements, owned by `t` for the borrow.
            Ok(Floats::F16(unsafe { std::slice::from_raw_parts(t.data_ptr().cast::<u16>(), n) }))
        }
        other => bail!("tensor of element type {other}, expected float32 or float16"),
    }
}

/// Mutable [`tensor_floats`].
pub(crate) fn tensor_floats_mut(t: &mut DynTensor) -> Result<FloatsMut<'_>> {
    match *t.data_type() {
        TensorElementType::Float32 => Ok(FloatsMut::F32(t.try_extract_tensor_mut::<f32>().map_err(|e| anyhow!("{e}"))?.1)),
        TensorElementType::Float16 => {
            if !t.memory_info().is_cpu_accessible() {
                bail!("a float16 tensor is not in CPU memory");
            }
            let n = t.shape().num_elements();
            if n == 0 {
                return Ok(FloatsMut::F16(&mut []));
            }
            // SAFETY: as in tensor_floats; `&mut t` makes the borrow exclusive.
            Ok(FloatsMut::F16(unsafe { std::slice::from_raw_parts_mut(t.data_ptr_mut().cast::<u16>(), n) }))
        }
        other => bail!("tensor of element type {other}, expected float32 or float16"),
    }
}

/// A float16 tensor of `shape` holding `data` (copied into memory ONNX Runtime allocates).
pub(crate) fn f16_tensor(shape: &[i64], data: &[u16]) -> Result<DynTensor> {
    let n: i64 = shape.iter().product();
    if n as usize != data.len() {
        bail!("internal error: {} float16 values for shape {shape:?}", data.len());
    }
    let mut t = DynTensor::new(&Allocator::default(), TensorElementType::Float16, shape.to_vec()).map_err(|e| anyhow!("{e}"))?;
    if let FloatsMut::F16(dst) = tensor_floats_mut(&mut t)? {
        dst.copy_from_slice(data);
    }
    Ok(t)
}

/// A graph input from floats of its element type: float32 by reference (no copy), float16 copied.
pub(crate) fn input<'a>(shape: Vec<i64>, data: Floats<'a>) -> Result<SessionInputValue<'a>> {
    Ok(match data {
        Floats::F32(v) => SessionInputValue::from(TensorRef::from_array_view((shape, v)).map_err(|e| anyhow!("{e}"))?),
        Floats::F16(v) => SessionInputValue::from(f16_tensor(&shape, v)?),
    })
}

/// Like [`input`], or with `owned` always a copy the input owns: what an IoBinding needs (ort 2.0.0-rc.15's
/// `IoBinding::bind_input` would clone a borrowed view, and that clone deadlocks).
pub(crate) fn input_as<'a>(shape: Vec<i64>, data: Floats<'a>, owned: bool) -> Result<SessionInputValue<'a>> {
    if !owned {
        return input(shape, data);
    }
    Ok(match data {
        Floats::F32(v) => SessionInputValue::from(ort::value::Tensor::from_array((shape, v.to_vec())).map_err(|e| anyhow!("{e}"))?),
        Floats::F16(v) => SessionInputValue::from(f16_tensor(&shape, v)?),
    })
}

/// A tensor ONNX Runtime owns, holding a copy of `data`.
pub(crate) fn owned_tensor(shape: Vec<i64>, data: Floats<'_>) -> Result<DynTensor> {
    Ok(match data {
        Floats::F32(v) => ort::value::Tensor::from_array((shape, v.to_vec())).map_err(|e| anyhow!("{e}"))?.upcast(),
        Floats::F16(v) => f16_tensor(&shape, v)?,
    })
}

/// An int64 graph input: borrowed, or with `owned` a copy (see [`input_as`]).
pub(crate) fn i64_input<'a>(shape: Vec<i64>, data: &'a [i64], owned: bool) -> Result<SessionInputValue<'a>> {
    Ok(if owned {
        SessionInputValue::from(ort::value::Tensor::from_array((shape, data.to_vec())).map_err(|e| anyhow!("{e}"))?)
    } else {
        SessionInputValue::from(TensorRef::from_array_view((shape, data)).map_err(|e| anyhow!("{e}"))?)
    })
}

/// A graph input of element type `ty` from f32 values (converted for a float16 input).
pub(crate) fn input_from_f32<'a>(shape: Vec<i64>, data: &'a [f32], ty: FloatType) -> Result<SessionInputValue<'a>> {
    match ty {
        FloatType::F32 => input(shape, Floats::F32(data)),
        FloatType::F16 => Ok(SessionInputValue::from(f16_tensor(&shape, &f32s_to_f16(data))?)),
    }
}

/// Output `name` as f32 (float16 outputs converted exactly); its shape must be `want` (sizes from model.yaml),
/// so a manifest that disagrees with its graphs is an error rather than misaligned rows.
pub(crate) fn output_f32(out: &ort::session::SessionOutputs<'_>, name: &str, want: &[usize]) -> Result<Vec<f32>> {
    Ok(output_floats(out, name, want, |f| f.to_f32())?)
}

/// Output `name` in its own element type; shape checked as in [`output_f32`].
pub(crate) fn output_buf(out: &ort::session::SessionOutputs<'_>, name: &str, want: &[usize]) -> Result<FloatBuf> {
    output_floats(out, name, want, |f| f.to_buf())
}

fn output_floats<T>(out: &ort::session::SessionOutputs<'_>, name: &str, want: &[usize], f: impl FnOnce(Floats<'_>) -> T) -> Result<T> {
    let value = out.get(name).ok_or_else(|| anyhow!("ONNX Runtime returned no output '{name}'"))?;
    let t = value.view().downcast::<ort::value::DynTensorValueType>().map_err(|e| anyhow!("output '{name}': {e}"))?;
    let shape = t.shape().clone();
    if shape.len() != want.len() || shape.iter().zip(want).any(|(&a, &b)| a != b as i64) {
        bail!(
            "output '{name}' has shape {:?}, but model.yaml's sizes give {want:?}; the manifest does not match its ONNX files",
            &shape[..]
        );
    }
    let floats = tensor_floats(&t).map_err(|e| anyhow!("output '{name}': {e}"))?;
    Ok(f(floats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_ieee_binary16() {
        // (f32, expected half bits): exact values, rounding ties to even, subnormals, overflow, specials
        let cases: &[(f32, u16)] = &[
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (65504.0, 0x7bff),
            (65520.0, 0x7c00),         // halfway to the next (inf): ties to even = inf
            (65519.99, 0x7bff),
            (1.0 + 1.0 / 2048.0, 0x3c00), // tie between 1 and 1+2^-10: to even
            (1.0 + 3.0 / 2048.0, 0x3c02), // tie: to even (up)
            (6.103515625e-05, 0x0400), // smallest normal
            (5.960464477539063e-08, 0x0001), // smallest subnormal
            (2.9802322387695312e-08, 0x0000), // half of it: tie to even = 0
            (4.470348358154297e-08, 0x0001), // 0.75 of it: rounds up
            (1e-10, 0x0000),
            (f32::INFINITY, 0x7c00),
            (f32::NEG_INFINITY, 0xfc00),
            (-65504.0, 0xfbff),
            (0.333333343, 0x3555),
        ];
        for &(x, h) in cases {
            assert_eq!(f32_to_f16(x), h, "{x} -> {:#06x}, expected {h:#06x}", f32_to_f16(x));
        }
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        // every finite half round-trips exactly through f32
        for h in 0u16..=0xffff {
            let x = f16_to_f32(h);
            if x.is_nan() {
                continue;
            }
            assert_eq!(f32_to_f16(x), h, "{h:#06x} -> {x} -> {:#06x}", f32_to_f16(x));
        }
        assert_eq!(f16_to_f32(0x0001), 5.960464477539063e-08);
        assert_eq!(f16_to_f32(0x03ff), 6.097555160522461e-05);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }
}
