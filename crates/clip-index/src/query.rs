//! Combined queries: "beach" minus "people", an image plus "at night". Each part is normalised
//! first so a weight means the same thing whatever the part's raw norm, then the weighted sum is
//! normalised again so scores stay cosines.

use clip::normalize;

/// Weighted sum of normalised parts, normalised; `None` when there are no parts or the sum is
/// zero (the parts cancel out), which no search can use.
pub fn combine(parts: &[(f32, &[f32])]) -> Option<Vec<f32>> {
    let dim = parts.first()?.1.len();
    let mut sum = vec![0.0f32; dim];
    for (weight, v) in parts {
        let mut v = v.to_vec();
        normalize(&mut v);
        sum.iter_mut().zip(&v).for_each(|(s, x)| *s += weight * x);
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 1e-12).then(|| sum.into_iter().map(|x| x / norm).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_part_is_normalised() {
        assert_eq!(combine(&[(1.0, &[3.0, 4.0])]), Some(vec![0.6, 0.8]));
    }

    #[test]
    fn minus_moves_away_and_cancelling_is_none() {
        let q = combine(&[(1.0, &[1.0, 0.0]), (-0.5, &[0.0, 2.0])]).unwrap();
        assert!(q[0] > 0.0 && q[1] < 0.0);
        assert_eq!(combine(&[(1.0, &[1.0, 0.0]), (-1.0, &[2.0, 0.0])]), None);
        assert_eq!(combine(&[]), None);
    }
}
