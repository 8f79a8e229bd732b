//! The arithmetic every job shares once embeddings exist: L2 normalisation, cosine matrices,
//! CLIP logits and softmax. Kept free of candle so the CLI, the index and the server can use it on
//! plain vectors, and written to follow the reference's order of operations (normalise, then
//! `logit_scale.exp() * a @ b.T`).

/// A row-major matrix of embeddings: `rows` vectors of `dim` floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    dim: usize,
    data: Vec<f32>,
}

impl Embeddings {
    /// Panics if `data.len()` is not a multiple of `dim` (a programming error, never user input).
    pub fn new(dim: usize, data: Vec<f32>) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "embedding data of length {} is not a multiple of {dim}",
            data.len()
        );
        Self { dim, data }
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim)
    }
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
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

/// `[a.len()][b.len()]` cosine similarities between every row of `a` and every row of `b`.
pub fn cosine_matrix(a: &Embeddings, b: &Embeddings) -> Vec<Vec<f32>> {
    let (a, b) = (a.normalized(), b.normalized());
    a.rows()
        .map(|x| b.rows().map(|y| dot(x, y)).collect())
        .collect()
}

/// CLIP's `logits_per_image`: `scale * cos(image_i, text_j)`, where `scale` is `logit_scale.exp()`.
/// `logits_per_text` is its transpose.
pub fn logits_per_image(images: &Embeddings, texts: &Embeddings, scale: f32) -> Vec<Vec<f32>> {
    cosine_matrix(images, texts)
        .into_iter()
        .map(|row| row.into_iter().map(|c| scale * c).collect())
        .collect()
}

/// The transpose of a rectangular matrix (`logits_per_text` from `logits_per_image`).
pub fn transpose(m: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let cols = m.first().map_or(0, Vec::len);
    (0..cols)
        .map(|j| m.iter().map(|row| row[j]).collect())
        .collect()
}

/// Numerically stable softmax of one row (what `logits.softmax(dim=-1)` gives).
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[2] && p[2] > p[0]);
    }

    #[test]
    fn softmax_survives_large_logits() {
        let p = softmax(&[1000.0, 0.0]);
        assert!((p[0] - 1.0).abs() < 1e-6 && p[1] >= 0.0);
    }

    #[test]
    fn cosine_of_parallel_vectors_is_one() {
        let a = Embeddings::new(2, vec![3.0, 4.0]);
        let b = Embeddings::new(2, vec![6.0, 8.0, -4.0, 3.0]);
        let c = cosine_matrix(&a, &b);
        assert!((c[0][0] - 1.0).abs() < 1e-6);
        assert!(c[0][1].abs() < 1e-6);
    }

    #[test]
    fn zero_vector_normalises_to_zero() {
        let mut v = [0.0f32; 4];
        normalize(&mut v);
        assert_eq!(v, [0.0; 4]);
    }

    #[test]
    fn logits_scale_cosines_and_transpose() {
        let img = Embeddings::new(2, vec![1.0, 0.0]);
        let txt = Embeddings::new(2, vec![1.0, 0.0, 0.0, 1.0]);
        let l = logits_per_image(&img, &txt, 100.0);
        assert_eq!(l, vec![vec![100.0, 0.0]]);
        assert_eq!(transpose(&l), vec![vec![100.0], vec![0.0]]);
    }
}
