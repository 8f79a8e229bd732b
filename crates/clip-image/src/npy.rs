//! Writing `.npy` files, so that `clip preprocess --output x.npy` can be compared with the
//! reference in numpy directly.

use std::io::Write;
use std::path::Path;

/// Writes a little-endian float32 C-order `.npy` (format version 1.0).
///
/// Fails with `InvalidInput` when `shape` does not describe `data.len()` values.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "shape {shape:?} holds {count} values but {} were given",
                data.len()
            ),
        ));
    }
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_str = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "npy header too long")
    })?;

    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut file = std::fs::File::create(path)?;
    file.write_all(&out)?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_fixture_reader() {
        let dir = std::env::temp_dir().join(format!("clip-image-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        write_npy_f32(&path, &[2, 3, 4], &data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            (bytes.len() - 4 * 24) % 64,
            0,
            "data must start 64-byte aligned"
        );
        let arr = clip_fixtures::read_npy(&path);
        assert_eq!(arr.shape, vec![2, 3, 4]);
        assert_eq!(arr.data, data);
        write_npy_f32(&path, &[5], &data[..5]).unwrap();
        assert_eq!(clip_fixtures::read_npy(&path).shape, vec![5]);
        assert!(write_npy_f32(&path, &[2, 2], &data).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
