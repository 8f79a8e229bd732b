//! `.safetensors` files, memory-mapped; the header is validated against the file size before any
//! tensor is touched, so a lying header can neither make us allocate nor read out of bounds.

use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::{CheckpointError, DType, StateDict, TensorData};

/// Reads every tensor of a safetensors file (names as stored).
pub fn read_safetensors(path: &Path) -> Result<StateDict, CheckpointError> {
    let file = std::fs::File::open(path).map_err(|e| CheckpointError::io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| CheckpointError::io(path, e))?
        .len();
    if len < 8 {
        return Err(CheckpointError::invalid(
            path,
            format!("not a safetensors file: only {len} bytes"),
        ));
    }
    // SAFETY: the map is read-only; a checkpoint changed underneath us is the user's problem, as
    // with every mmap-based loader (candle, safetensors).
    let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| CheckpointError::io(path, e))?);
    let header_len = u64::from_le_bytes(map[..8].try_into().unwrap());
    if header_len > len - 8 {
        return Err(CheckpointError::invalid(
            path,
            format!("header length {header_len} exceeds file size {len}"),
        ));
    }
    let header_end = 8 + header_len as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&map[8..header_end])
            .map_err(|e| CheckpointError::invalid(path, format!("bad safetensors header: {e}")))?;
    let data_len = map.len() - header_end;
    let mut state = StateDict::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |reason: String| CheckpointError::tensor(path, name, reason);
        let dtype = match info.get("dtype").and_then(|d| d.as_str()) {
            Some("F16") => DType::F16,
            Some("BF16") => DType::BF16,
            Some("F32") => DType::F32,
            Some("F64") => DType::F64,
            Some("I64") => DType::I64,
            Some("I32") => DType::I32,
            Some("U8") => DType::U8,
            Some("BOOL") => DType::Bool,
            other => return Err(bad(format!("unsupported dtype {other:?}"))),
        };
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|v| v.as_u64().map(|x| x as usize)).collect())
            .ok_or_else(|| bad("missing or invalid shape".into()))?;
        let offsets: Vec<usize> = info
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|v| v.as_u64().map(|x| x as usize)).collect())
            .filter(|v: &Vec<usize>| v.len() == 2)
            .ok_or_else(|| bad("missing or invalid data_offsets".into()))?;
        let (a, b) = (offsets[0], offsets[1]);
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
        if b < a || b - a != expected {
            return Err(bad(format!(
                "data_offsets [{a}, {b}) do not match shape {shape:?} of {dtype:?}"
            )));
        }
        if b > data_len {
            return Err(bad(format!(
                "truncated: tensor {name} needs bytes [{a}, {b}) but the file has {data_len}"
            )));
        }
        let range = header_end + a..header_end + b;
        state.insert(
            name.clone(),
            TensorData::mapped(dtype, shape, map.clone(), range),
        );
    }
    Ok(state)
}
