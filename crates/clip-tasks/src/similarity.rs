//! The arithmetic every job shares once embeddings exist: cosine matrices, logits and
//! probabilities under the model's [`Scoring`], rankings. Written to follow the reference's order
//! of operations (normalise, then `scale * a @ b.T`, then `+ bias`).

use clip::{dot, Embeddings, Scoring};

/// `[a.len()][b.len()]` cosine similarities between every row of `a` and every row of `b`
/// (raw or normalised rows: both are normalised first).
pub fn cosine_matrix(a: &Embeddings, b: &Embeddings) -> Vec<Vec<f32>> {
    let (a, b) = (a.normalized(), b.normalized());
    a.rows()
        .map(|x| b.rows().map(|y| dot(x, y)).collect())
        .collect()
}

/// The logit of every cosine (`logits_per_image` when rows are images and columns texts).
pub fn logits(cosines: &[Vec<f32>], scoring: &Scoring) -> Vec<Vec<f32>> {
    cosines
        .iter()
        .map(|row| row.iter().map(|&c| scoring.logit(c)).collect())
        .collect()
}

/// Each row's probabilities: a softmax over the row for CLIP, a sigmoid per value for SigLIP.
pub fn probabilities(logits: &[Vec<f32>], scoring: &Scoring) -> Vec<Vec<f32>> {
    logits
        .iter()
        .map(|row| scoring.probabilities(row))
        .collect()
}

/// Images against texts: the three matrices `clip similarity` and `/v1/similarity` report, rows
/// images, columns texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Similarity {
    /// Cosine similarities.
    pub cosine: Vec<Vec<f32>>,
    /// The model's logits (`logits_per_image`).
    pub logits: Vec<Vec<f32>>,
    /// Per image, the probabilities of its logits under the model's scoring.
    pub probs: Vec<Vec<f32>>,
}

impl Similarity {
    /// All three matrices of `images` against `texts` (raw or normalised embeddings).
    pub fn new(images: &Embeddings, texts: &Embeddings, scoring: &Scoring) -> Self {
        let cosine = cosine_matrix(images, texts);
        let logits = logits(&cosine, scoring);
        let probs = probabilities(&logits, scoring);
        Self {
            cosine,
            logits,
            probs,
        }
    }
}

/// The transpose of a rectangular matrix (`logits_per_text` from `logits_per_image`).
pub fn transpose(m: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let cols = m.first().map_or(0, Vec::len);
    (0..cols)
        .map(|j| m.iter().map(|row| row[j]).collect())
        .collect()
}

/// Indices of `scores` sorted best first (ties keep their order), cut to `top_k` when given.
pub fn ranked(scores: &[f32], top_k: Option<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(top_k.unwrap_or(order.len()));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_vectors_is_one() {
        let a = Embeddings::new(2, vec![3.0, 4.0]);
        let b = Embeddings::new(2, vec![6.0, 8.0, -4.0, 3.0]);
        let c = cosine_matrix(&a, &b);
        assert!((c[0][0] - 1.0).abs() < 1e-6);
        assert!(c[0][1].abs() < 1e-6);
    }

    #[test]
    fn logits_scale_cosines_and_transpose() {
        let img = Embeddings::new(2, vec![1.0, 0.0]);
        let txt = Embeddings::new(2, vec![1.0, 0.0, 0.0, 1.0]);
        let s = Similarity::new(&img, &txt, &Scoring::softmax(100.0));
        assert_eq!(s.logits, vec![vec![100.0, 0.0]]);
        assert_eq!(transpose(&s.logits), vec![vec![100.0], vec![0.0]]);
        assert!((s.probs[0].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let sig = Similarity::new(&img, &txt, &Scoring::sigmoid(10.0, -10.0));
        assert_eq!(sig.logits, vec![vec![0.0, -10.0]]);
        assert_eq!(sig.probs[0][0], 0.5);
    }

    #[test]
    fn ranked_sorts_best_first_and_cuts() {
        assert_eq!(ranked(&[0.1, 0.7, 0.2], None), vec![1, 2, 0]);
        assert_eq!(ranked(&[0.1, 0.7, 0.2], Some(1)), vec![1]);
    }
}
