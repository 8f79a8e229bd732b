//! Writing `.npy` files (format 1.0, little-endian, C order): whole arrays (`clip preprocess
//! --output`) and `[rows, dim]` matrices streamed row batch by row batch (exports), whose row
//! count is only known at the end, so the header is written with room to spare and rewritten on
//! [`NpyWriter::finish`].

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use clip::Embeddings;

/// Element type of a written array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `<f4`.
    F32,
    /// `<f2` (IEEE half).
    F16,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F16 => "<f2",
        }
    }

    fn write(self, out: &mut impl Write, values: &[f32]) -> std::io::Result<()> {
        for &v in values {
            match self {
                Dtype::F32 => out.write_all(&v.to_le_bytes())?,
                Dtype::F16 => out.write_all(&half::f16::from_f32(v).to_le_bytes())?,
            }
        }
        Ok(())
    }
}

/// Fixed size of magic + version + header length + header: a multiple of 64 (numpy aligns the
/// data so) with room for any shape a header is rewritten to.
const PREAMBLE: usize = 128;

/// npy v1.0 preamble padded to [`PREAMBLE`] bytes.
fn header(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        dtype.descr()
    );
    dict.push_str(&" ".repeat(PREAMBLE.saturating_sub(10 + dict.len() + 1)));
    dict.push('\n');
    let mut out = Vec::with_capacity(PREAMBLE);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a whole array of `shape` in one go.
///
/// Fails with `InvalidInput` when `shape` does not describe `data.len()` values.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32], dtype: Dtype) -> std::io::Result<()> {
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
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(&header(dtype, shape))?;
    dtype.write(&mut out, data)?;
    out.flush()
}

/// A `.npy` of `[rows, dim]` written row batch by row batch.
pub struct NpyWriter {
    file: BufWriter<File>,
    dtype: Dtype,
    dim: usize,
    rows: usize,
}

impl NpyWriter {
    /// Creates (or truncates) `path` with an empty `[0, dim]` array.
    pub fn create(path: &Path, dim: usize, dtype: Dtype) -> std::io::Result<Self> {
        let mut file = BufWriter::new(File::create(path)?);
        file.write_all(&header(dtype, &[0, dim]))?;
        Ok(Self {
            file,
            dtype,
            dim,
            rows: 0,
        })
    }

    /// Appends the rows of `e`.
    ///
    /// # Panics
    /// If `e`'s width is not the writer's (a caller's bug: one export has one model).
    pub fn append(&mut self, e: &Embeddings) -> std::io::Result<()> {
        assert_eq!(
            e.dim(),
            self.dim,
            "embedding dimension changed within one export"
        );
        self.dtype.write(&mut self.file, e.as_slice())?;
        self.rows += e.len();
        Ok(())
    }

    /// Writes the final shape into the header and flushes; returns the row count.
    pub fn finish(mut self) -> std::io::Result<usize> {
        self.file.seek(SeekFrom::Start(0))?;
        self.file
            .write_all(&header(self.dtype, &[self.rows, self.dim]))?;
        self.file.flush()?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_rewritten_with_the_final_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let mut w = NpyWriter::create(&path, 2, Dtype::F32).unwrap();
        w.append(&Embeddings::new(2, vec![1.0, 2.0, 3.0, 4.0]))
            .unwrap();
        w.append(&Embeddings::new(2, vec![5.0, 6.0])).unwrap();
        assert_eq!(w.finish().unwrap(), 3);
        let arr = clip_fixtures::read_npy(&path);
        assert_eq!(arr.shape, vec![3, 2]);
        assert_eq!(arr.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), PREAMBLE + 6 * 4);

        let mut w = NpyWriter::create(&path, 2, Dtype::F16).unwrap();
        w.append(&Embeddings::new(2, vec![0.5, -2.0])).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(String::from_utf8_lossy(&bytes[..PREAMBLE]).contains("'<f2'"));
        assert_eq!(
            half::f16::from_le_bytes([bytes[PREAMBLE], bytes[PREAMBLE + 1]]).to_f32(),
            0.5
        );
    }

    #[test]
    fn whole_arrays_check_their_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy(
            &path,
            &[3, 1, 2],
            &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            Dtype::F32,
        )
        .unwrap();
        let arr = clip_fixtures::read_npy(&path);
        assert_eq!(arr.shape, vec![3, 1, 2]);
        assert_eq!(arr.data[5], 5.0);
        let err = write_npy(&path, &[2, 2], &[0.0; 3], Dtype::F32).unwrap_err();
        assert!(err.to_string().contains("holds 4 values but 3"), "{err}");
    }
}
