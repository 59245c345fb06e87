//! The decoder's self-attention KV cache, in the decoder graph's own element type (float32, or float16 for a
//! `dtype: fp16` model: CONTRACT.md "Precision").

use crate::model::device_kv::RowGather;
use crate::model::tensors::{self, FloatBuf, FloatType, Floats, FloatsMut};
use anyhow::{anyhow, bail, Result};
use ort::session::SessionInputValue;
use ort::value::DynTensor;

/// One cached key or value tensor `[B, H, len, Dh]`: ONNX Runtime's own output (kept as is, not copied
/// out), host memory (after a row selection), or (`--io-binding`) an output bound to the memory of the
/// decoder's device, which the host never reads: it is passed back to the decoder and its rows are selected
/// on the device (`device_kv`).
#[derive(Debug)]
pub(crate) enum KvTensor {
    Host(FloatBuf),
    Ort(DynTensor),
    Device(DynTensor),
}

impl KvTensor {
    /// An ONNX Runtime output kept as the cache (any float tensor); `on_device`: an output bound to the
    /// decoder device's memory (`--io-binding`).
    pub fn from_output(v: ort::value::DynValue, name: &str, on_device: bool) -> Result<KvTensor> {
        let t = v.downcast::<ort::value::DynTensorValueType>().map_err(|e| anyhow!("output '{name}': {e}"))?;
        Ok(if on_device { KvTensor::Device(t) } else { KvTensor::Ort(t) })
    }

    /// The first `len` values of the buffer; after an in-place row selection the buffer can hold more rows
    /// than the cache uses.
    pub fn data(&self, len: usize) -> Result<Floats<'_>> {
        let all = match self {
            KvTensor::Host(v) => v.as_floats(),
            KvTensor::Ort(v) => tensors::tensor_floats(v).map_err(|e| anyhow!("KV cache: {e}"))?,
            KvTensor::Device(_) => bail!("internal error: the KV cache is in device memory and cannot be read on the host"),
        };
        if all.len() < len {
            bail!("KV cache holds {} values, {len} expected", all.len());
        }
        Ok(all.slice(0..len))
    }

    /// Like [`Self::data`], mutable.
    fn data_mut(&mut self, len: usize) -> Result<FloatsMut<'_>> {
        let all = match self {
            KvTensor::Host(v) => v.as_floats_mut(),
            KvTensor::Ort(v) => tensors::tensor_floats_mut(v).map_err(|e| anyhow!("KV cache: {e}"))?,
            KvTensor::Device(_) => bail!("internal error: the KV cache is in device memory and cannot be written on the host"),
        };
        let n = match &all {
            FloatsMut::F32(v) => v.len(),
            FloatsMut::F16(v) => v.len(),
        };
        if n < len {
            bail!("KV cache holds {n} values, {len} expected");
        }
        Ok(match all {
            FloatsMut::F32(v) => FloatsMut::F32(&mut v[..len]),
            FloatsMut::F16(v) => FloatsMut::F16(&mut v[..len]),
        })
    }

    /// The decoder input `past_*` of `shape` (`[B, H, len, Dh]`, `used` = its element count): ONNX Runtime's
    /// own tensor when it has exactly that shape (no copy), else a view of the first `used` values (float32)
    /// or a copy of them (float16; and always with `owned`, for an IoBinding: tensors::input_as).
    pub fn input(&self, shape: &[i64], used: usize, owned: bool) -> Result<SessionInputValue<'_>> {
        match self {
            KvTensor::Ort(t) if t.shape()[..] == *shape => return Ok(SessionInputValue::from(t)),
            KvTensor::Device(t) if t.shape()[..] == *shape => return Ok(SessionInputValue::from(t)),
            KvTensor::Device(t) => {
                bail!("internal error: the device KV cache has shape {:?}, the decoder call needs {shape:?}", &t.shape()[..])
            }
            _ => {}
        }
        tensors::input_as(shape.to_vec(), self.data(used)?, owned)
    }
}

/// Rearranges `buf` in place so that row `i` becomes old row `rows[i]`, for `i < rows.len()`; rows are
/// `row` values long. Only rows that change are written, and only sources that would be overwritten before
/// they are read are saved first.
fn gather_rows_in_place<T: Copy>(buf: &mut [T], row: usize, rows: &[usize]) {
    let moved: Vec<usize> = (0..rows.len()).filter(|&i| rows[i] != i).collect();
    let mut saved: Vec<(usize, Vec<T>)> = Vec::new();
    for &i in &moved {
        let src = rows[i];
        if rows.get(src).is_some_and(|&r| r != src) && !saved.iter().any(|(s, _)| *s == src) {
            saved.push((src, buf[src * row..(src + 1) * row].to_vec()));
        }
    }
    for &i in &moved {
        let src = rows[i];
        match saved.iter().find(|(s, _)| *s == src) {
            Some((_, data)) => buf[i * row..(i + 1) * row].copy_from_slice(data),
            None => buf.copy_within(src * row..(src + 1) * row, i * row),
        }
    }
}

/// Key/value cache of a batch of rows, `[B, H, len, Dh]` per layer.
#[derive(Debug)]
pub(crate) struct KvCache {
    pub batch: usize,
    pub len: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Element type of the decoder's `past_*` inputs.
    pub ty: FloatType,
    pub layers: Vec<(KvTensor, KvTensor)>,
}

impl KvCache {
    pub fn empty(batch: usize, n_layers: usize, heads: usize, head_dim: usize, ty: FloatType) -> Self {
        let layers =
            (0..n_layers).map(|_| (KvTensor::Host(FloatBuf::zeros(ty, 0)), KvTensor::Host(FloatBuf::zeros(ty, 0)))).collect();
        KvCache { batch, len: 0, heads, head_dim, ty, layers }
    }

    fn row_size(&self) -> usize {
        self.heads * self.len * self.head_dim
    }

    /// A new cache whose row `i` is row `rows[i]` of this one; a device-resident cache is selected on its
    /// device by `gather`.
    pub fn select_rows(&self, rows: &[usize], gather: Option<&mut RowGather>) -> Result<KvCache> {
        if self.on_device() {
            let g = gather.ok_or_else(|| anyhow!("internal error: a device-resident KV cache without its row gather"))?;
            return self.select_on_device(g, rows);
        }
        let rs = self.row_size();
        let pick = |v: &KvTensor| -> Result<KvTensor> {
            let v = v.data(self.batch * rs)?;
            let mut out = FloatBuf::with_capacity(self.ty, rows.len() * rs);
            for &r in rows {
                out.extend_from(v.slice(r * rs..(r + 1) * rs))?;
            }
            Ok(KvTensor::Host(out))
        };
        let layers = self.layers.iter().map(|(k, v)| Ok((pick(k)?, pick(v)?))).collect::<Result<_>>()?;
        Ok(KvCache { batch: rows.len(), len: self.len, heads: self.heads, head_dim: self.head_dim, ty: self.ty, layers })
    }

    /// Whether the cache is in device memory (`--io-binding`): rows are then selected by [`Self::select_on_device`].
    fn on_device(&self) -> bool {
        self.layers.iter().any(|(k, v)| matches!(k, KvTensor::Device(_)) || matches!(v, KvTensor::Device(_)))
    }

    /// A new cache whose row `i` is row `rows[i]` of this one, selected by `gather` on the device that holds
    /// the cache (nothing goes through host memory).
    fn select_on_device(&self, gather: &mut RowGather, rows: &[usize]) -> Result<KvCache> {
        let mut all: Vec<&DynTensor> = Vec::with_capacity(2 * self.layers.len());
        for (k, v) in &self.layers {
            for t in [k, v] {
                match t {
                    KvTensor::Device(t) => all.push(t),
                    _ => bail!("internal error: a KV cache partly in device memory"),
                }
            }
        }
        let mut out = gather.gather(&all, rows)?.into_iter();
        let mut layers = Vec::with_capacity(self.layers.len());
        while let (Some(k), Some(v)) = (out.next(), out.next()) {
            layers.push((KvTensor::Device(k), KvTensor::Device(v)));
        }
        Ok(KvCache { batch: rows.len(), len: self.len, heads: self.heads, head_dim: self.head_dim, ty: self.ty, layers })
    }

    /// Like [`Self::select_rows`], reusing this cache's buffers: no allocation, and only the rows that change
    /// are copied. Falls back to a copy when `rows` has more rows than the cache; a device-resident cache is
    /// gathered on its device.
    pub fn into_selected_rows(mut self, rows: &[usize], gather: Option<&mut RowGather>) -> Result<KvCache> {
        if rows.len() == self.batch && rows.iter().enumerate().all(|(i, &r)| i == r) {
            return Ok(self); // every row in order (greedy decoding): nothing moves, wherever the cache lives
        }
        if self.on_device() || rows.len() > self.batch || rows.iter().any(|&r| r >= self.batch) {
            return self.select_rows(rows, gather);
        }
        let (rs, n) = (self.row_size(), self.batch * self.row_size());
        for (k, v) in &mut self.layers {
            for t in [k, v] {
                match t.data_mut(n)? {
                    FloatsMut::F32(b) => gather_rows_in_place(b, rs, rows),
                    FloatsMut::F16(b) => gather_rows_in_place(b, rs, rows),
                }
            }
        }
        self.batch = rows.len();
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::gather_rows_in_place;

    #[test]
    fn in_place_row_gather_matches_a_copy() {
        // Every selection of up to 4 rows out of 4 (beam reorders, duplicates, shrinking batches).
        let (b, row) = (4usize, 3usize);
        let orig: Vec<f32> = (0..b * row).map(|x| x as f32).collect();
        for m in 1..=b {
            for code in 0..b.pow(m as u32) {
                let rows: Vec<usize> = (0..m).map(|i| code / b.pow(i as u32) % b).collect();
                let mut buf = orig.clone();
                gather_rows_in_place(&mut buf, row, &rows);
                let want: Vec<f32> = rows.iter().flat_map(|&r| orig[r * row..(r + 1) * row].to_vec()).collect();
                assert_eq!(&buf[..m * row], &want[..], "rows {rows:?}");
                let orig16: Vec<u16> = (0..(b * row) as u16).collect();
                let mut buf16 = orig16.clone();
                gather_rows_in_place(&mut buf16, row, &rows);
                assert!(buf16[..m * row].iter().zip(&want).all(|(&h, &f)| h as f32 == f), "rows {rows:?} (u16)");
            }
        }
    }
}
