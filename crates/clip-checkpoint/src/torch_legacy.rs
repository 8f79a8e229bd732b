//! The pre-zip `torch.save` format (torch < 1.6, or `_use_new_zipfile_serialization=False`): five
//! pickles back to back (magic number, protocol version, system info, the object, the storage keys),
//! then each storage as an 8-byte element count and its raw elements. Also the path every bare
//! pickle file takes, so a hostile `.pkl` meets the same restricted reader.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::pickle::{unpickle, Allowlist, Node, Unpickled, Value};
use crate::tensor::Bytes;
use crate::torch_tensor::{state_dict_entries, storage_ref, StorageSource, TensorReader};
use crate::{CheckpointError, StateDict};

/// `0x1950a86a20f9469cfc6c`, little-endian, as `torch.save` pickles it first.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Reads a legacy `torch.save` file (names as stored).
pub(crate) fn read(path: &Path) -> Result<StateDict, CheckpointError> {
    let file = std::fs::File::open(path).map_err(|e| CheckpointError::io(path, e))?;
    // SAFETY: read-only map; see safetensors_file.rs.
    let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| CheckpointError::io(path, e))?);
    let invalid = |reason: String| CheckpointError::invalid(path, reason);
    let next = |start: usize| {
        unpickle(&map, start, Allowlist::default()).map_err(|e| invalid(e.to_string()))
    };

    let magic = next(0)?;
    if !matches!(&magic.root, Value::BigInt(b) if **b == MAGIC) {
        return Err(invalid(
            "a pickle, but not a torch.save checkpoint (no torch magic number)".into(),
        ));
    }
    let protocol = next(magic.end)?;
    let sys_info = next(protocol.end)?;
    if sys_info.heap.dict_get(&sys_info.root, "little_endian") == Some(&Value::Bool(false)) {
        return Err(invalid(
            "big-endian legacy checkpoints are not supported".into(),
        ));
    }
    let object = next(sys_info.end)?;
    let keys = next(object.end)?;
    let storages = storages(&map, &object, &keys).map_err(invalid)?;
    let entries = state_dict_entries(&object.heap, &object.root).map_err(invalid)?;
    TensorReader::new(path, &object.heap, storages).collect(entries)
}

/// Locates every storage after the pickles. Their element size comes from the storage records
/// that name them, so a key no tensor refers to cannot be sized (and is refused).
fn storages(
    map: &Arc<Mmap>,
    object: &Unpickled,
    keys: &Unpickled,
) -> Result<HashMap<String, Bytes>, String> {
    let mut dtypes = HashMap::new();
    for node in object.heap.nodes() {
        if let Node::Persistent(pid) = node {
            let sref = storage_ref(&object.heap, pid)?;
            dtypes.insert(sref.key, sref.dtype);
        }
    }
    let mut pos = keys.end;
    let keys = keys
        .heap
        .seq(&keys.root)
        .ok_or("storage key list missing")?;
    let mut out = HashMap::new();
    for key in keys {
        let key = key.as_str().ok_or("storage key is not a string")?;
        let dtype = dtypes
            .get(key)
            .ok_or_else(|| format!("storage {key} is not used by any tensor"))?;
        let count = map
            .get(pos..pos + 8)
            .ok_or_else(|| format!("truncated: storage {key} header past the end"))?;
        let len = u64::from_le_bytes(count.try_into().expect("8 bytes"))
            .checked_mul(dtype.size() as u64)
            .ok_or_else(|| format!("storage {key} size overflows"))?;
        let start = pos + 8;
        let end = (start as u64)
            .checked_add(len)
            .filter(|&e| e <= map.len() as u64)
            .ok_or_else(|| {
                format!(
                    "truncated: storage {key} needs {len} bytes at {start} but the file has {}",
                    map.len()
                )
            })? as usize;
        out.insert(
            key.to_string(),
            Bytes::Mapped {
                map: map.clone(),
                range: start..end,
            },
        );
        pos = end;
    }
    Ok(out)
}

impl StorageSource for HashMap<String, Bytes> {
    fn storage(&mut self, key: &str) -> Result<Bytes, String> {
        self.get(key)
            .cloned()
            .ok_or_else(|| format!("storage {key} is not in the file"))
    }
}
