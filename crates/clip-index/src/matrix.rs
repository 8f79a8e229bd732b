//! Exact nearest-neighbour search: all vectors of a space in one contiguous row-major matrix, one
//! dot product per row (vectors are stored L2-normalised, so the dot product is the cosine).
//! f16 halves memory and disk at a small score error; f32 is the reference.

use half::{f16, slice::HalfFloatSliceExt};

/// Element type of stored and searched vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VectorType {
    /// Exact: the reference.
    #[default]
    F32,
    /// IEEE half: half the memory and disk, scores rounded.
    F16,
}

impl VectorType {
    /// Little-endian bytes of `v` in this type (the SQLite blob).
    pub fn encode(self, v: &[f32]) -> Vec<u8> {
        match self {
            VectorType::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            VectorType::F16 => v
                .iter()
                .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                .collect(),
        }
    }
}

/// Decodes a blob of `dim` f32 or f16 values (told apart by length); `None` if it is neither.
pub(crate) fn decode_vector(bytes: &[u8], dim: usize) -> Option<Vec<f32>> {
    if bytes.len() == dim * 4 {
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    } else if bytes.len() == dim * 2 {
        Some(
            bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        )
    } else {
        None
    }
}

#[derive(Debug, Clone)]
enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

/// A row-major matrix of `dim`-sized vectors.
#[derive(Debug, Clone)]
pub struct Matrix {
    dim: usize,
    data: Data,
}

impl Matrix {
    /// An empty matrix of `dim`-wide rows held as `ty`.
    pub fn new(dim: usize, ty: VectorType) -> Self {
        let data = match ty {
            VectorType::F32 => Data::F32(Vec::new()),
            VectorType::F16 => Data::F16(Vec::new()),
        };
        Self { dim, data }
    }

    /// Appends one row (`v.len()` must be `dim`).
    pub fn push(&mut self, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        match &mut self.data {
            Data::F32(d) => d.extend_from_slice(v),
            Data::F16(d) => d.extend(v.iter().map(|x| f16::from_f32(*x))),
        }
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(d) => d.len() / self.dim,
            Data::F16(d) => d.len() / self.dim,
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` as f32.
    pub fn row(&self, i: usize) -> Vec<f32> {
        let r = i * self.dim..(i + 1) * self.dim;
        match &self.data {
            Data::F32(d) => d[r].to_vec(),
            Data::F16(d) => d[r].iter().map(|x| x.to_f32()).collect(),
        }
    }

    /// Dot product of `query` with every row.
    pub fn scores(&self, query: &[f32]) -> Vec<f32> {
        match &self.data {
            Data::F32(d) => d
                .chunks_exact(self.dim)
                .map(|row| dot_f32(row, query))
                .collect(),
            Data::F16(d) => {
                // Widen each row with the slice conversion (F16C when the CPU has it), then the f32
                // kernel: much faster than converting element by element.
                let mut wide = vec![0.0f32; self.dim];
                d.chunks_exact(self.dim)
                    .map(|row| {
                        row.convert_to_f32_slice(&mut wide);
                        dot_f32(&wide, query)
                    })
                    .collect()
            }
        }
    }

    /// The `k` best rows as `(row, score)`, best first, keeping only scores `>= threshold`.
    pub fn top_k(&self, query: &[f32], k: usize, threshold: f32) -> Vec<(usize, f32)> {
        let mut hits: Vec<(usize, f32)> = self
            .scores(query)
            .into_iter()
            .enumerate()
            .filter(|(_, s)| *s >= threshold)
            .collect();
        let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if hits.len() > k && k > 0 {
            hits.select_nth_unstable_by(k - 1, by_score);
        }
        hits.truncate(k);
        hits.sort_by(by_score);
        hits
    }
}

/// Eight independent accumulators so the compiler vectorises the loop (SIMD without intrinsics).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, ar) = a.split_at(a.len() / 8 * 8);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(ty: VectorType) -> Matrix {
        let mut m = Matrix::new(9, ty);
        for i in 0..20 {
            let v: Vec<f32> = (0..9)
                .map(|j| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.4)
                .collect();
            m.push(&v);
        }
        m
    }

    #[test]
    fn top_k_is_sorted_and_matches_brute_force() {
        let m = matrix(VectorType::F32);
        let q: Vec<f32> = (0..9).map(|j| j as f32 / 9.0 - 0.5).collect();
        let all = m.scores(&q);
        let mut expect: Vec<(usize, f32)> = all.iter().copied().enumerate().collect();
        expect.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(m.top_k(&q, 5, f32::NEG_INFINITY), expect[..5].to_vec());
    }

    #[test]
    fn threshold_filters_and_k_zero_is_empty() {
        let m = matrix(VectorType::F32);
        let q = vec![0.1f32; 9];
        assert!(m.top_k(&q, 20, 0.5).iter().all(|(_, s)| *s >= 0.5));
        assert!(m.top_k(&q, 0, f32::NEG_INFINITY).is_empty());
    }

    #[test]
    fn f16_scores_are_close_to_f32() {
        let (a, b) = (matrix(VectorType::F32), matrix(VectorType::F16));
        let q: Vec<f32> = (0..9).map(|j| (j as f32).sin()).collect();
        for (x, y) in a.scores(&q).iter().zip(b.scores(&q)) {
            assert!((x - y).abs() < 1e-2, "{x} vs {y}");
        }
    }

    /// Search latency at collection sizes (a benchmark, not a timed test):
    /// `cargo test --release -p clip-index -- --ignored --nocapture exact_search_latency`.
    #[test]
    #[ignore]
    fn exact_search_latency() {
        let dim = 512;
        for n in [10_000usize, 100_000] {
            for ty in [VectorType::F32, VectorType::F16] {
                let mut m = Matrix::new(dim, ty);
                let mut x = 1u32;
                let mut v = vec![0.0f32; dim];
                for _ in 0..n {
                    for e in v.iter_mut() {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        *e = x as f32 / u32::MAX as f32 - 0.5;
                    }
                    m.push(&v);
                }
                let start = std::time::Instant::now();
                let reps = 20;
                for _ in 0..reps {
                    std::hint::black_box(m.top_k(&v, 10, f32::NEG_INFINITY));
                }
                println!(
                    "n={n} dim={dim} {ty:?}: {:.2} ms per top-10 query",
                    start.elapsed().as_secs_f64() * 1e3 / reps as f64
                );
            }
        }
    }

    #[test]
    fn blobs_round_trip_in_both_types() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(
            decode_vector(&VectorType::F32.encode(&v), 3),
            Some(v.clone())
        );
        assert_eq!(decode_vector(&VectorType::F16.encode(&v), 3), Some(v));
        assert_eq!(decode_vector(&[0u8; 5], 3), None);
    }
}
