//! [`Embeddings`]: what the engine hands back, a row-major matrix of vectors, and the two vector
//! operations every consumer needs on it (L2 normalisation, the dot product). The maths built on
//! them (cosine matrices, logits, ensembles) lives in the task layer, `clip-tasks`.

/// A row-major matrix of embeddings: `rows` vectors of `dim` floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    dim: usize,
    data: Vec<f32>,
}

impl Embeddings {
    /// `data.len() / dim` rows of `dim` floats, row-major.
    ///
    /// Panics if `data.len()` is not a multiple of `dim` (a programming error, never user input).
    pub fn new(dim: usize, data: Vec<f32>) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "embedding data of length {} is not a multiple of {dim}",
            data.len()
        );
        Self { dim, data }
    }
    /// Floats per embedding (the model's embedding width).
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Number of embeddings (rows).
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Embedding `i` (panics if `i >= len()`).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    /// The embeddings in input order.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim)
    }
    /// All rows back to back, `[len, dim]` row-major (for writers of whole matrices).
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
    /// The row-major data, without a copy.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
    /// Appends the rows of `other` (same dimension).
    pub fn extend(&mut self, other: &Embeddings) {
        assert_eq!(self.dim, other.dim, "embedding dimensions differ");
        self.data.extend_from_slice(&other.data);
    }
    /// Each row divided by its L2 norm (`x / x.norm(dim=-1, keepdim=True)` in the reference).
    pub fn normalized(&self) -> Embeddings {
        let mut data = self.data.clone();
        for row in data.chunks_exact_mut(self.dim) {
            normalize(row);
        }
        Embeddings {
            dim: self.dim,
            data,
        }
    }
}

/// Divides `v` by its L2 norm in place; a zero vector stays zero rather than becoming NaN.
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product; for normalised vectors this is the cosine similarity.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_vector_normalises_to_zero() {
        let mut v = [0.0f32; 4];
        normalize(&mut v);
        assert_eq!(v, [0.0; 4]);
    }

    #[test]
    fn normalized_rows_have_unit_norm_and_keep_direction() {
        let e = Embeddings::new(2, vec![3.0, 4.0, 0.0, -2.0]).normalized();
        assert_eq!(e.row(0), &[0.6, 0.8]);
        assert_eq!(e.row(1), &[0.0, -1.0]);
        assert_eq!(dot(e.row(0), e.row(0)), 1.0);
    }
}
