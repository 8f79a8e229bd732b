//! [`Scoring`]: how a model family turns a cosine similarity into a logit and logits into
//! probabilities. It is part of the loaded model's description, so every consumer (zero-shot,
//! similarity, moderation, the server) scores the same way without knowing the family.
//!
//! CLIP (OpenAI, OpenCLIP) trains with a softmax over the candidates: `logit = scale * cos`, and
//! the labels of one image compete. SigLIP trains each pair on its own with a sigmoid:
//! `logit = scale * cos + bias`, and every label is judged alone.

/// How probabilities come out of logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probability {
    /// One distribution over all candidates (the row sums to 1): CLIP's contrastive loss.
    Softmax,
    /// Each candidate on its own, `1 / (1 + exp(-logit))`: SigLIP's pairwise loss.
    Sigmoid,
}

/// The logit function of a model: `scale * cos + bias`, then [`Probability`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring {
    /// `logit_scale.exp()` as the reference computes it in float32.
    pub scale: f32,
    /// Added after scaling (`logit_bias`; 0 for CLIP).
    pub bias: f32,
    /// Softmax over candidates or a sigmoid per candidate.
    pub probability: Probability,
}

impl Scoring {
    /// CLIP's scoring: `scale * cos`, softmax over the candidates.
    pub fn softmax(scale: f32) -> Self {
        Self {
            scale,
            bias: 0.0,
            probability: Probability::Softmax,
        }
    }

    /// SigLIP's scoring: `scale * cos + bias`, a sigmoid per candidate.
    pub fn sigmoid(scale: f32, bias: f32) -> Self {
        Self {
            scale,
            bias,
            probability: Probability::Sigmoid,
        }
    }

    /// The logit of one cosine similarity, in the reference's order (`scale * cos`, then `+ bias`).
    pub fn logit(&self, cosine: f32) -> f32 {
        let scaled = self.scale * cosine;
        if self.bias == 0.0 {
            scaled
        } else {
            scaled + self.bias
        }
    }

    /// Probabilities of one row of logits (one image against its candidates).
    pub fn probabilities(&self, logits: &[f32]) -> Vec<f32> {
        match self.probability {
            Probability::Softmax => softmax(logits),
            Probability::Sigmoid => logits.iter().map(|&l| sigmoid(l)).collect(),
        }
    }

    /// Whether the probabilities of one row compete (sum to 1) rather than stand alone.
    pub fn is_exclusive(&self) -> bool {
        self.probability == Probability::Softmax
    }
}

/// Numerically stable softmax of one row (what `logits.softmax(dim=-1)` gives).
fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// `torch.sigmoid` on one value, stable at both ends.
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = Scoring::softmax(1.0).probabilities(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[2] && p[2] > p[0]);
    }

    #[test]
    fn softmax_survives_large_logits() {
        let p = Scoring::softmax(1.0).probabilities(&[1000.0, 0.0]);
        assert!((p[0] - 1.0).abs() < 1e-6 && p[1] >= 0.0);
    }

    #[test]
    fn sigmoid_judges_each_label_alone() {
        let s = Scoring::sigmoid(10.0, -2.5);
        assert_eq!(s.logit(0.25), 0.0);
        let p = s.probabilities(&[0.0, 100.0, -100.0]);
        assert_eq!(p[0], 0.5);
        assert!((p[1] - 1.0).abs() < 1e-6 && p[2] < 1e-30 && p[2] >= 0.0);
        assert!(!s.is_exclusive() && Scoring::softmax(1.0).is_exclusive());
    }
}
