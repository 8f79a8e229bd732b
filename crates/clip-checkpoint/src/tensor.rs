//! Raw tensors: element type, shape and little-endian bytes, either borrowed from a memory map
//! (safetensors, stored zip entries) or owned (converted / re-laid-out data).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};
use memmap2::Mmap;

/// Element types found in CLIP checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// IEEE half precision (`torch.float16`, safetensors `F16`).
    F16,
    /// bfloat16 (`torch.bfloat16`, safetensors `BF16`).
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer (`position_ids`, BatchNorm's `num_batches_tracked`).
    I64,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned byte.
    U8,
    /// One byte per value, 0 or 1.
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 | DType::Bool => 1,
        }
    }
    /// Whether the values are floating point (the ones a model converts to its own precision).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }
}

/// Where a tensor's bytes live: a range of a memory-mapped file (no copy) or of an owned buffer
/// (inflated zip entries, re-laid-out or mapped-name tensors). Several tensors may share one buffer.
#[derive(Clone)]
pub(crate) enum Bytes {
    Mapped {
        map: Arc<Mmap>,
        range: Range<usize>,
    },
    Owned {
        data: Arc<Vec<u8>>,
        range: Range<usize>,
    },
}

impl Bytes {
    pub(crate) fn owned(data: Vec<u8>) -> Self {
        let range = 0..data.len();
        Bytes::Owned {
            data: Arc::new(data),
            range,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped { map, range } => &map[range.clone()],
            Bytes::Owned { data, range } => &data[range.clone()],
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Bytes::Mapped { range, .. } | Bytes::Owned { range, .. } => range.len(),
        }
    }

    /// A sub-range (relative to this one), sharing the buffer. The caller checks the bounds.
    pub(crate) fn slice(&self, sub: Range<usize>) -> Self {
        debug_assert!(sub.start <= sub.end && sub.end <= self.len());
        let shift = |range: &Range<usize>| range.start + sub.start..range.start + sub.end;
        match self {
            Bytes::Mapped { map, range } => Bytes::Mapped {
                map: map.clone(),
                range: shift(range),
            },
            Bytes::Owned { data, range } => Bytes::Owned {
                data: data.clone(),
                range: shift(range),
            },
        }
    }
}

/// One tensor, contiguous in C order, little-endian.
#[derive(Clone)]
pub struct TensorData {
    dtype: DType,
    shape: Vec<usize>,
    bytes: Bytes,
}

impl std::fmt::Debug for TensorData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorData({:?}, {:?})", self.dtype, self.shape)
    }
}

impl TensorData {
    /// Owned tensor. The caller guarantees `bytes.len() == numel * dtype.size()`.
    pub fn owned(dtype: DType, shape: Vec<usize>, bytes: Vec<u8>) -> Self {
        Self::from_bytes(dtype, shape, Bytes::owned(bytes))
    }

    /// A view into a memory map. The caller guarantees the range is inside the map and sized right.
    pub fn mapped(dtype: DType, shape: Vec<usize>, map: Arc<Mmap>, range: Range<usize>) -> Self {
        Self::from_bytes(dtype, shape, Bytes::Mapped { map, range })
    }

    /// A tensor over shared bytes. The caller guarantees the length matches the shape.
    pub(crate) fn from_bytes(dtype: DType, shape: Vec<usize>, bytes: Bytes) -> Self {
        debug_assert_eq!(bytes.len(), shape.iter().product::<usize>() * dtype.size());
        Self {
            dtype,
            shape,
            bytes,
        }
    }

    /// An f32 tensor from values.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self::owned(DType::F32, shape, bytes)
    }

    /// The element type of the stored bytes.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Dimensions, outermost first (row-major, contiguous).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether every value is finite (no NaN, no infinity), read from the stored bits without
    /// widening them. Integers are always finite.
    pub fn all_finite(&self) -> bool {
        let b = self.bytes();
        // Folds without early exit, so that they vectorise.
        match self.dtype {
            DType::F32 => le_u32s(b)
                .iter()
                .fold(true, |ok, &x| ok & (x & 0x7F80_0000 != 0x7F80_0000)),
            DType::F16 => le_u16s(b)
                .iter()
                .fold(true, |ok, &x| ok & (x & 0x7C00 != 0x7C00)),
            DType::BF16 => le_u16s(b)
                .iter()
                .fold(true, |ok, &x| ok & (x & 0x7F80 != 0x7F80)),
            DType::F64 => b
                .chunks_exact(8)
                .all(|c| f64::from_le_bytes(c.try_into().unwrap()).is_finite()),
            DType::I64 | DType::I32 | DType::U8 | DType::Bool => true,
        }
    }

    /// Whether the bytes are borrowed from a memory-mapped file (no copy was made).
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped { .. })
    }
    /// Little-endian element bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Lets the OS drop this tensor's resident file pages (memory-mapped tensors only; whole
    /// pages inside its bytes). A model converts each tensor once: without this the process
    /// would keep the file's pages *and* the converted copy resident. The bytes stay readable:
    /// touched again, they are read back from the page cache.
    pub fn release_pages(&self) {
        #[cfg(unix)]
        if let Bytes::Mapped { map, range } = &self.bytes {
            const PAGE: usize = 4096;
            let start = range.start.next_multiple_of(PAGE);
            let end = range.end / PAGE * PAGE;
            if end > start {
                // SAFETY: a read-only shared file mapping: MADV_DONTNEED only drops the pages,
                // later reads fault them in again from the file, so no reference sees other data.
                // A failure (unsupported advice) leaves the pages resident, which is harmless.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    )
                };
            }
        }
    }

    /// Values widened to f32 (integers converted numerically). Exact for f16/bf16.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let b = self.bytes();
        match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            // Whole slices through `half`'s converters (F16C eight at a time where the CPU has
            // it): the per-value conversion was a large share of loading a half-precision model.
            DType::F16 | DType::BF16 => {
                let (bits, mut out) = (le_u16s(b), vec![0f32; b.len() / 2]);
                if self.dtype == DType::F16 {
                    bits.reinterpret_cast::<f16>()
                        .convert_to_f32_slice(&mut out);
                } else {
                    bits.reinterpret_cast::<bf16>()
                        .convert_to_f32_slice(&mut out);
                }
                out
            }
            DType::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            DType::I64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            DType::I32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            DType::U8 | DType::Bool => b.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as f32 of the tensor read as a row-major `[rows, cols]` matrix (a conv kernel
    /// `[out, c, h, w]` is `[out, c*h*w]`), transposed to `[cols, rows]`, in one pass over the
    /// stored bytes (no intermediate f32 copy). `None` when `rows * cols` is not its size.
    pub fn to_f32_transposed(&self, rows: usize, cols: usize) -> Option<Vec<f32>> {
        if rows.checked_mul(cols) != Some(self.numel()) {
            return None;
        }
        let b = self.bytes();
        Some(match self.dtype {
            DType::F32 => transpose_with(rows, cols, |i| {
                f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap())
            }),
            DType::F16 => transpose_with(rows, cols, |i| {
                f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32()
            }),
            DType::BF16 => transpose_with(rows, cols, |i| {
                bf16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32()
            }),
            _ => {
                let v = self.to_f32_vec();
                transpose_with(rows, cols, |i| v[i])
            }
        })
    }

    /// The transpose of a 2-D tensor (Hugging Face `nn.Linear` projections are `[out, in]`, OpenAI's
    /// are `[in, out]`). `None` when the tensor is not 2-D.
    pub fn transposed(&self) -> Option<Self> {
        let &[rows, cols] = self.shape.as_slice() else {
            return None;
        };
        let es = self.dtype.size();
        let src = self.bytes();
        let mut out = vec![0u8; src.len()];
        for r in 0..rows {
            for c in 0..cols {
                let from = (r * cols + c) * es;
                let to = (c * rows + r) * es;
                out[to..to + es].copy_from_slice(&src[from..from + es]);
            }
        }
        Some(Self::owned(self.dtype, vec![cols, rows], out))
    }

    /// Tensors of one dtype and equal trailing dimensions stacked along dim 0 (Hugging Face's
    /// separate q/k/v projections into OpenAI's packed `in_proj`). `None` when they do not fit.
    pub fn concat_rows(parts: &[&TensorData]) -> Option<Self> {
        let first = parts.first()?;
        let tail = first.shape.get(1..)?;
        if parts
            .iter()
            .any(|p| p.dtype != first.dtype || p.shape.get(1..) != Some(tail))
        {
            return None;
        }
        let mut shape = first.shape.clone();
        shape[0] = parts.iter().map(|p| p.shape[0]).sum();
        Some(Self::owned(
            first.dtype,
            shape,
            parts.iter().flat_map(|p| p.bytes()).copied().collect(),
        ))
    }

    /// The same data under a new shape with the same element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), self.numel());
        Self {
            shape,
            ..self.clone()
        }
    }
}

/// Tensors by name. Names are the OpenAI names once a loader has mapped them.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    tensors: BTreeMap<String, TensorData>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a tensor, replacing any tensor of the same name.
    pub fn insert(&mut self, name: impl Into<String>, t: TensorData) {
        self.tensors.insert(name.into(), t);
    }
    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&TensorData> {
        self.tensors.get(name)
    }
    /// Takes the tensor named `name` out, so a model can drop each source tensor once converted.
    pub fn remove(&mut self, name: &str) -> Option<TensorData> {
        self.tensors.remove(name)
    }
    /// Whether a tensor named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    /// The names, sorted (the map is ordered so that iteration and errors are deterministic).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }
    /// Names and tensors, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TensorData)> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl IntoIterator for StateDict {
    type Item = (String, TensorData);
    type IntoIter = std::collections::btree_map::IntoIter<String, TensorData>;
    fn into_iter(self) -> Self::IntoIter {
        self.tensors.into_iter()
    }
}

impl FromIterator<(String, TensorData)> for StateDict {
    fn from_iter<I: IntoIterator<Item = (String, TensorData)>>(iter: I) -> Self {
        Self {
            tensors: iter.into_iter().collect(),
        }
    }
}

impl Extend<(String, TensorData)> for StateDict {
    fn extend<I: IntoIterator<Item = (String, TensorData)>>(&mut self, iter: I) {
        self.tensors.extend(iter);
    }
}

/// `out[c * rows + r] = get(r * cols + c)`, in cache-sized tiles.
fn transpose_with(rows: usize, cols: usize, get: impl Fn(usize) -> f32) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0f32; rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = get(r * cols + c);
                }
            }
        }
    }
    out
}

/// Little-endian 16-bit values of `b`: see [`le_words`].
fn le_u16s(b: &[u8]) -> Cow<'_, [u16]> {
    le_words(b, |c| u16::from_le_bytes([c[0], c[1]]))
}

/// Little-endian 32-bit values of `b`: see [`le_words`].
fn le_u32s(b: &[u8]) -> Cow<'_, [u32]> {
    le_words(b, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// The little-endian words of `b`: the bytes themselves where they are aligned on a
/// little-endian host (checkpoint data is), a copy made with `from_le` otherwise.
fn le_words<T: Copy + bytemuck::Pod>(b: &[u8], from_le: impl Fn(&[u8]) -> T) -> Cow<'_, [T]> {
    #[cfg(target_endian = "little")]
    if let Ok(words) = bytemuck::try_cast_slice(b) {
        return Cow::Borrowed(words);
    }
    Cow::Owned(
        b.chunks_exact(std::mem::size_of::<T>())
            .map(from_le)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` at an odd offset of a buffer: the unaligned path of [`le_words`].
    fn unaligned(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> TensorData {
        let mut buf = vec![0u8];
        buf.extend_from_slice(bytes);
        let n = bytes.len();
        TensorData::from_bytes(dtype, shape, Bytes::owned(buf).slice(1..1 + n))
    }

    #[test]
    fn half_precision_widens_exactly_aligned_or_not() {
        let values = [0.0f32, -1.5, 65504.0, 6.1e-5, 1.0e-7, -0.333];
        let f16s: Vec<u8> = values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        let bf16s: Vec<u8> = values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect();
        for (dtype, bytes, widen) in [
            (
                DType::F16,
                &f16s,
                (|b: [u8; 2]| f16::from_le_bytes(b).to_f32()) as fn([u8; 2]) -> f32,
            ),
            (DType::BF16, &bf16s, |b: [u8; 2]| {
                bf16::from_le_bytes(b).to_f32()
            }),
        ] {
            let want: Vec<f32> = bytes.chunks(2).map(|c| widen([c[0], c[1]])).collect();
            let aligned = TensorData::owned(dtype, vec![values.len()], bytes.clone());
            assert_eq!(aligned.to_f32_vec(), want);
            assert_eq!(
                unaligned(dtype, vec![values.len()], bytes).to_f32_vec(),
                want
            );
        }
    }

    #[test]
    fn all_finite_reads_the_stored_bits() {
        let f32s = |v: &[f32]| TensorData::from_f32(vec![v.len()], v);
        assert!(f32s(&[1.0, -3.0e38, f32::MIN_POSITIVE]).all_finite());
        assert!(!f32s(&[1.0, f32::INFINITY]).all_finite());
        assert!(!f32s(&[f32::NAN, 1.0]).all_finite());
        let halves = |dtype, bits: &[u16]| {
            let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
            (
                TensorData::owned(dtype, vec![bits.len()], bytes.clone()),
                unaligned(dtype, vec![bits.len()], &bytes),
            )
        };
        for (dtype, finite, inf, nan) in [
            (
                DType::F16,
                f16::MAX.to_bits(),
                f16::INFINITY.to_bits(),
                f16::NAN.to_bits(),
            ),
            (
                DType::BF16,
                bf16::MAX.to_bits(),
                bf16::NEG_INFINITY.to_bits(),
                bf16::NAN.to_bits(),
            ),
        ] {
            for (bits, ok) in [
                ([finite, 0], true),
                ([0, inf], false),
                ([nan, finite], false),
            ] {
                let (a, u) = halves(dtype, &bits);
                assert_eq!(
                    (a.all_finite(), u.all_finite()),
                    (ok, ok),
                    "{dtype:?} {bits:?}"
                );
            }
        }
        assert!(TensorData::owned(DType::I64, vec![1], vec![0xFF; 8]).all_finite());
    }
}
