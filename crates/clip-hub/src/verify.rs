//! Checks a finished download before it is moved into place: the published SHA-256 where there is
//! one, else the structure of the file (a truncated or HTML-error-page "model" must not land in
//! the cache, where every later run would trust it).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of a file's content.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// What a file is checked as, from its name: `None` means no check.
pub(crate) fn structural_kind(name: &str) -> Option<&'static str> {
    if name.ends_with(".safetensors") {
        Some("safetensors")
    } else if name.ends_with(".json") {
        Some("JSON")
    } else if [".pt", ".pth", ".bin"].iter().any(|e| name.ends_with(e)) {
        Some("PyTorch")
    } else {
        None
    }
}

/// Checks a file of the given [`structural_kind`]; the error is the reason it is malformed.
pub(crate) fn check_structure(kind: &str, path: &Path) -> Result<(), String> {
    match kind {
        "safetensors" => check_safetensors(path),
        "PyTorch" => check_torch(path),
        _ => {
            let text = std::fs::read(path).map_err(|e| e.to_string())?;
            serde_json::from_slice::<serde_json::Value>(&text)
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

/// A `torch.save` zip (or TorchScript archive) ends with a zip end-of-central-directory record;
/// a legacy `torch.save` file starts with a pickle protocol opcode. An HTML page or a cut zip
/// is neither. The loader picks the format from the content, not the name, so a whole
/// safetensors file placed under a `.pt` name by hand is a usable model too.
fn check_torch(path: &Path) -> Result<(), String> {
    match check_torch_archive(path) {
        Err(reason) if check_safetensors(path).is_err() => Err(reason),
        _ => Ok(()),
    }
}

fn check_torch_archive(path: &Path) -> Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; 4];
    file.read_exact(&mut head)
        .map_err(|_| "shorter than any PyTorch file".to_string())?;
    if head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Ok(());
    }
    if &head != b"PK\x03\x04" {
        return Err("neither a zip archive nor a pickle".into());
    }
    // The end record is 22 bytes plus a comment of at most 64 KiB.
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))
        .map_err(|e| e.to_string())?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail).map_err(|e| e.to_string())?;
    if tail.windows(4).any(|w| w == b"PK\x05\x06") {
        Ok(())
    } else {
        Err("a zip archive without its end record (cut short?)".into())
    }
}

/// The header parses and the tensors' data ends exactly at the end of the file.
fn check_safetensors(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .map_err(|_| "shorter than a safetensors header".to_string())?;
    let header_len = u64::from_le_bytes(n);
    if header_len > len.saturating_sub(8) || header_len > 100 << 20 {
        return Err(format!(
            "header length {header_len} does not fit in a {len}-byte file"
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| format!("header is not a JSON object: {e}"))?;
    let data_end = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let data_len = len - 8 - header_len;
    if data_end != data_len {
        return Err(format!(
            "tensor data ends at byte {data_end} but the file holds {data_len} data bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/models/tiny-vit.safetensors"
    );

    #[test]
    fn sha256_of_the_fixture_model() {
        assert_eq!(
            sha256_file(Path::new(TINY)).unwrap(),
            "9a6fbba57ad1ce97fd6979e2a822bb8dcde03ea311b7d4fdc39865c24a06407f"
        );
    }

    #[test]
    fn safetensors_check_accepts_whole_files_and_rejects_cut_ones() {
        assert_eq!(check_structure("safetensors", Path::new(TINY)), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(TINY).unwrap();
        for (name, content) in [
            ("cut", &bytes[..bytes.len() - 10]),
            ("html", b"<html>not found</html>".as_slice()),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, content).unwrap();
            assert!(check_structure("safetensors", &p).is_err(), "{name}");
        }
        let p = dir.path().join("c.json");
        std::fs::write(&p, "{\"a\": ").unwrap();
        assert!(check_structure("JSON", &p).is_err());
    }

    #[test]
    fn torch_check_accepts_a_whole_safetensors_file_and_rejects_html() {
        assert_eq!(check_structure("PyTorch", Path::new(TINY)), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.pt");
        std::fs::write(&p, b"<html>not found</html>").unwrap();
        assert_eq!(
            check_structure("PyTorch", &p),
            Err("neither a zip archive nor a pickle".to_string())
        );
    }
}
