//! Zip archives written by torch: `torch.save` state dicts (`.pt`, `.pth`, `.bin`) and TorchScript
//! archives (`torch.jit.save`, OpenAI's released `ViT-B-32.pt`). Both hold `<name>/data.pkl` and
//! storages `<name>/data/<key>`; TorchScript adds `code/` and `constants.pkl` and pickles a module
//! object tree instead of a dict (see `torchscript.rs`).
//!
//! torch writes entries stored (uncompressed, 64-byte aligned), so tensor bytes are mapped straight
//! from the file; deflated entries (re-zipped archives) are inflated once per storage.

use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;
use zip::{CompressionMethod, ZipArchive};

use crate::pickle::{self, Allowlist, Node};
use crate::tensor::Bytes;
use crate::torch_tensor::{state_dict_entries, StorageSource, TensorReader};
use crate::{torchscript, CheckpointError, CheckpointFormat, StateDict};

/// Reads a torch zip or TorchScript archive into a state dict (names as stored).
pub(crate) fn read(path: &Path) -> Result<(CheckpointFormat, StateDict), CheckpointError> {
    let mut archive = Archive::open(path)?;
    let invalid = |reason: String| CheckpointError::invalid(path, reason);
    if let Some(order) = archive.record("byteorder").map_err(invalid)? {
        if order.as_slice() != b"little" {
            return Err(invalid(format!(
                "byte order {:?} is not supported",
                String::from_utf8_lossy(order.as_slice())
            )));
        }
    }
    let script = archive.has("constants.pkl") || archive.has_folder("code/");
    let pkl_name = format!("{}data.pkl", archive.prefix);
    let pkl = archive
        .record("data.pkl")
        .map_err(invalid)?
        .ok_or_else(|| invalid(format!("{pkl_name} is missing")))?;
    let unpickled = pickle::unpickle(
        pkl.as_slice(),
        0,
        Allowlist {
            script_classes: script,
        },
    )
    .map_err(|e| invalid(format!("{pkl_name}: {e}")))?;
    let (heap, root) = (&unpickled.heap, &unpickled.root);
    let (format, entries) = match heap.node(root) {
        Some(Node::Object { .. }) => (
            CheckpointFormat::TorchScript,
            torchscript::module_entries(heap, root),
        ),
        _ => (CheckpointFormat::TorchZip, state_dict_entries(heap, root)),
    };
    let entries = entries.map_err(|e| invalid(format!("{pkl_name}: {e}")))?;
    let state = TensorReader::new(path, heap, &mut archive).collect(entries)?;
    Ok((format, state))
}

/// The mapped file, shared by the zip reader and every stored tensor.
struct SharedMap(Arc<Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

struct Archive {
    map: Arc<Mmap>,
    zip: ZipArchive<Cursor<SharedMap>>,
    /// `<name>/`, the folder torch puts every record in.
    prefix: String,
}

impl Archive {
    fn open(path: &Path) -> Result<Self, CheckpointError> {
        let file = std::fs::File::open(path).map_err(|e| CheckpointError::io(path, e))?;
        // SAFETY: read-only map; see safetensors_file.rs.
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| CheckpointError::io(path, e))?);
        let zip = ZipArchive::new(Cursor::new(SharedMap(map.clone()))).map_err(|e| {
            CheckpointError::invalid(path, format!("corrupt or truncated zip archive: {e}"))
        })?;
        // torch names every record `<archive name>/<record>`; find the folder holding data.pkl.
        let prefix = zip
            .file_names()
            .filter_map(Result::ok)
            .find_map(|n| {
                n.strip_suffix("data.pkl")
                    .filter(|p| p.is_empty() || p.find('/') == Some(p.len() - 1))
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                CheckpointError::invalid(
                    path,
                    "zip archive without data.pkl: not a PyTorch checkpoint",
                )
            })?;
        Ok(Self { map, zip, prefix })
    }

    fn has(&self, record: &str) -> bool {
        self.zip
            .index_for_name(&format!("{}{record}", self.prefix))
            .is_some()
    }

    fn has_folder(&self, folder: &str) -> bool {
        let folder = format!("{}{folder}", self.prefix);
        self.zip
            .file_names()
            .filter_map(Result::ok)
            .any(|n| n.starts_with(&folder))
    }

    /// The bytes of `<prefix><record>`, or `None` when there is no such entry. Stored entries are
    /// mapped; deflated ones are inflated, growing only with the data really produced (a lying
    /// size cannot make us allocate it up front).
    fn record(&mut self, record: &str) -> Result<Option<Bytes>, String> {
        let name = format!("{}{record}", self.prefix);
        let Some(index) = self.zip.index_for_name(&name) else {
            return Ok(None);
        };
        let corrupt =
            |e: zip::result::ZipError| format!("corrupt or truncated zip archive: {name}: {e}");
        let entry = self.zip.by_index_raw(index).map_err(corrupt)?;
        if entry.encrypted() {
            return Err(format!("{name} is encrypted"));
        }
        let size = entry.size();
        match entry.compression() {
            CompressionMethod::Stored => {
                let start = entry
                    .data_start()
                    .ok_or_else(|| format!("corrupt or truncated zip archive: {name}"))?;
                let end = start.checked_add(size).filter(|&e| e <= self.map.len() as u64).ok_or_else(|| {
                    format!(
                        "corrupt or truncated zip archive: {name} needs bytes up to {} but the file has {}",
                        start.saturating_add(size),
                        self.map.len()
                    )
                })?;
                Ok(Some(Bytes::Mapped {
                    map: self.map.clone(),
                    range: start as usize..end as usize,
                }))
            }
            CompressionMethod::Deflated => {
                drop(entry);
                let mut out = Vec::new();
                let reader = self.zip.by_index(index).map_err(corrupt)?;
                reader
                    .take(size)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("corrupt zip entry {name}: {e}"))?;
                if out.len() as u64 != size {
                    return Err(format!(
                        "corrupt zip entry {name}: {} bytes inflated, {size} declared",
                        out.len()
                    ));
                }
                Ok(Some(Bytes::owned(out)))
            }
            other => Err(format!("{name}: unsupported zip compression {other:?}")),
        }
    }
}

impl StorageSource for &mut Archive {
    fn storage(&mut self, key: &str) -> Result<Bytes, String> {
        self.record(&format!("data/{key}"))?
            .ok_or_else(|| format!("storage record {}data/{key} is missing", self.prefix))
    }
}
