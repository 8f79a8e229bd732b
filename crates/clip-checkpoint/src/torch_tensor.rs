//! Tensors as torch pickles describe them: `_rebuild_tensor_v2(storage, offset, size, stride, ...)`
//! over a storage record named by a persistent id `('storage', torch.HalfStorage, key, location,
//! numel)`. Shared by the zip, TorchScript and legacy readers, which differ only in where a
//! storage's bytes come from ([`StorageSource`]).

use std::collections::HashMap;
use std::path::Path;

use crate::pickle::{Global, Heap, Node, Value};
use crate::tensor::Bytes;
use crate::{CheckpointError, DType, StateDict, TensorData};

/// Finds the bytes of a storage record.
pub(crate) trait StorageSource {
    /// The bytes of storage `key` (the reader checks they cover the elements its records claim).
    fn storage(&mut self, key: &str) -> Result<Bytes, String>;
}

/// A storage reference, decoded from a persistent id.
#[derive(Debug, PartialEq)]
pub(crate) struct StorageRef {
    pub key: String,
    pub dtype: DType,
    pub numel: usize,
}

/// Decodes `('storage', <storage type>, key, location, numel[, view_metadata])`; the sixth item
/// only exists in legacy (non-zip) files and must be `None` (storage views are not supported).
pub(crate) fn storage_ref(heap: &Heap, pid: &Value) -> Result<StorageRef, String> {
    let bad = || "persistent id is not a ('storage', type, key, location, numel) tuple".to_string();
    let items = heap.seq(pid).ok_or_else(bad)?;
    let (kind, dtype, key, numel) = match items {
        [kind, Value::Global(Global::Storage(dtype)), key, _location, numel] => {
            (kind, *dtype, key, numel)
        }
        [kind, Value::Global(Global::Storage(dtype)), key, _location, numel, Value::None] => {
            (kind, *dtype, key, numel)
        }
        [_, _, _, _, _, _] => {
            return Err("storage views (legacy view_metadata) are not supported".into())
        }
        _ => return Err(bad()),
    };
    match (kind.as_str(), key.as_str(), numel.as_int()) {
        (Some("storage"), Some(key), Some(numel)) if numel >= 0 => Ok(StorageRef {
            key: key.to_string(),
            dtype,
            numel: usize::try_from(numel).map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// `(name, value)` pairs of a pickled state dict: the root dict itself, or the dict under its
/// `"state_dict"` key (open_clip training checkpoints: `{"epoch", "state_dict", "optimizer", ...}`).
pub(crate) fn state_dict_entries(
    heap: &Heap,
    root: &Value,
) -> Result<Vec<(String, Value)>, String> {
    let not_dict = || "the pickled object is not a dict of tensors".to_string();
    let root_items = heap.dict(root).ok_or_else(not_dict)?;
    let items = match heap.dict_get(root, "state_dict").and_then(|v| heap.dict(v)) {
        Some(inner) => inner,
        None => root_items,
    };
    Ok(items
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
        .collect())
}

/// Turns pickled tensor records into [`TensorData`], reading each storage once.
pub(crate) struct TensorReader<'a, S> {
    path: &'a Path,
    heap: &'a Heap,
    source: S,
    storages: HashMap<String, Bytes>,
}

impl<'a, S: StorageSource> TensorReader<'a, S> {
    pub(crate) fn new(path: &'a Path, heap: &'a Heap, source: S) -> Self {
        Self {
            path,
            heap,
            source,
            storages: HashMap::new(),
        }
    }

    /// Every entry whose value is a tensor, under its name; other values (ints, strings, nested
    /// non-tensor state) are skipped.
    pub(crate) fn collect(
        mut self,
        entries: Vec<(String, Value)>,
    ) -> Result<StateDict, CheckpointError> {
        let mut state = StateDict::new();
        for (name, value) in entries {
            if let Some(t) = self
                .tensor(&value)
                .map_err(|e| CheckpointError::tensor(self.path, &name, e))?
            {
                state.insert(name, t);
            }
        }
        Ok(state)
    }

    /// `Ok(None)` when `value` is not a tensor record.
    fn tensor(&mut self, value: &Value) -> Result<Option<TensorData>, String> {
        let Some(Node::Call {
            func: Global::RebuildTensorV2,
            args,
        }) = self.heap.node(value)
        else {
            return Ok(None);
        };
        let [storage, offset, size, stride, ..] = args.as_slice() else {
            return Err("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)".into());
        };
        let Some(Node::Persistent(pid)) = self.heap.node(storage) else {
            return Err("tensor storage is not a storage record".into());
        };
        let sref = storage_ref(self.heap, pid)?;
        let offset = offset
            .as_int()
            .and_then(|o| usize::try_from(o).ok())
            .ok_or("bad storage offset")?;
        let size = self.dims(size).ok_or("bad tensor size")?;
        let stride = self.dims(stride).ok_or("bad tensor stride")?;
        if size.len() != stride.len() {
            return Err(format!(
                "size {size:?} and stride {stride:?} differ in rank"
            ));
        }
        let bytes = self.storage_bytes(&sref)?;
        let layout = Layout {
            offset,
            size: &size,
            stride: &stride,
        };
        let data = layout.read(bytes, sref.dtype.size(), sref.numel)?;
        Ok(Some(TensorData::from_bytes(sref.dtype, size, data)))
    }

    fn dims(&self, v: &Value) -> Option<Vec<usize>> {
        self.heap
            .seq(v)?
            .iter()
            .map(|d| d.as_int().and_then(|d| usize::try_from(d).ok()))
            .collect()
    }

    fn storage_bytes(&mut self, sref: &StorageRef) -> Result<Bytes, String> {
        let need = sref
            .numel
            .checked_mul(sref.dtype.size())
            .ok_or("storage size overflows")?;
        let bytes = match self.storages.get(&sref.key) {
            Some(b) => b.clone(),
            None => {
                let b = self.source.storage(&sref.key)?;
                self.storages.insert(sref.key.clone(), b.clone());
                b
            }
        };
        if bytes.len() < need {
            return Err(format!(
                "storage {} holds {} bytes, {} claimed",
                sref.key,
                bytes.len(),
                need
            ));
        }
        Ok(bytes.slice(0..need))
    }
}

/// Where a tensor's elements sit in its storage.
struct Layout<'a> {
    offset: usize,
    size: &'a [usize],
    stride: &'a [usize],
}

impl Layout<'_> {
    /// The tensor's bytes in C order: a shared slice of the storage when the layout is already
    /// contiguous (the usual case, zero-copy from a mapped file), else a gathered copy. Bounds are
    /// checked against the storage, and a strided view may not hold more elements than its
    /// storage, so a stride-0 "broadcast" cannot make us allocate more than the file holds.
    fn read(&self, storage: Bytes, es: usize, storage_numel: usize) -> Result<Bytes, String> {
        let numel = self
            .size
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or("tensor size overflows")?;
        if numel == 0 {
            return Ok(Bytes::owned(Vec::new()));
        }
        let last = self
            .size
            .iter()
            .zip(self.stride)
            .try_fold(self.offset, |acc, (&n, &s)| {
                acc.checked_add((n - 1).checked_mul(s)?)
            })
            .ok_or("tensor extent overflows")?;
        if last >= storage_numel {
            return Err(format!(
                "offset {} with size {:?} and stride {:?} reaches element {last} of a storage of {storage_numel}",
                self.offset, self.size, self.stride
            ));
        }
        if self.is_contiguous() {
            return Ok(storage.slice(self.offset * es..(self.offset + numel) * es));
        }
        if numel > storage_numel {
            return Err(format!(
                "a strided view of {numel} elements over a storage of {storage_numel}"
            ));
        }
        let src = storage.as_slice();
        let mut out = Vec::with_capacity(numel * es);
        let mut index = vec![0usize; self.size.len()];
        let mut pos = self.offset;
        // Odometer over the indices. Wrapping arithmetic: a size-1 dimension may carry any stride,
        // and stepping over it and back must not trap; every position actually read is <= `last`.
        for _ in 0..numel {
            out.extend_from_slice(&src[pos * es..(pos + 1) * es]);
            for d in (0..self.size.len()).rev() {
                index[d] += 1;
                pos = pos.wrapping_add(self.stride[d]);
                if index[d] < self.size[d] {
                    break;
                }
                pos = pos.wrapping_sub(self.stride[d].wrapping_mul(self.size[d]));
                index[d] = 0;
            }
        }
        Ok(Bytes::owned(out))
    }

    /// C-contiguous, ignoring the strides of size-1 dimensions (torch does the same).
    fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&n, &s) in self.size.iter().zip(self.stride).rev() {
            if n != 1 && s != expected {
                return false;
            }
            expected *= n;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(values: &[u16]) -> Bytes {
        Bytes::owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn read(
        offset: usize,
        size: &[usize],
        stride: &[usize],
        numel: usize,
    ) -> Result<Vec<u16>, String> {
        let values: Vec<u16> = (0..numel as u16).collect();
        let b = Layout {
            offset,
            size,
            stride,
        }
        .read(storage(&values), 2, numel)?;
        Ok(b.as_slice()
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    #[test]
    fn contiguous_views_share_the_storage() {
        assert_eq!(read(2, &[2, 3], &[3, 1], 8).unwrap(), [2, 3, 4, 5, 6, 7]);
        // size-1 dimensions may carry any stride
        assert_eq!(read(0, &[1, 4], &[99, 1], 4).unwrap(), [0, 1, 2, 3]);
        assert_eq!(read(0, &[], &[], 1).unwrap(), [0]);
        assert_eq!(read(5, &[0, 3], &[3, 1], 1).unwrap(), Vec::<u16>::new());
    }

    #[test]
    fn strided_views_are_gathered_in_c_order() {
        // the transpose of a 2x3 matrix
        assert_eq!(read(0, &[3, 2], &[1, 3], 6).unwrap(), [0, 3, 1, 4, 2, 5]);
        // every other column, from an offset
        assert_eq!(read(1, &[2, 2], &[4, 2], 8).unwrap(), [1, 3, 5, 7]);
        // a size-1 dimension with an absurd stride, in a non-contiguous view
        assert_eq!(
            read(0, &[2, 1, 2], &[1, usize::MAX, 2], 4).unwrap(),
            [0, 2, 1, 3]
        );
    }

    #[test]
    fn out_of_bounds_and_broadcast_views_are_refused() {
        assert!(read(3, &[2, 3], &[3, 1], 8)
            .unwrap_err()
            .contains("reaches element 8"));
        assert!(read(0, &[1 << 40], &[0], 1)
            .unwrap_err()
            .contains("strided view"));
        assert!(read(0, &[usize::MAX, 2], &[1, 1], 1)
            .unwrap_err()
            .contains("overflows"));
    }
}
