//! The text tower: token + positional embedding, causal transformer, `ln_final` and
//! `@ text_projection` at the end-of-text position (`argmax` of the token ids).

use candle_core::{DType, Device, Tensor};
use clip_checkpoint::Activation;

use super::config::TextConfig;
use super::error::{Context, ModelError};
use super::layers::{LayerNorm, Layout, Linear, Transformer};
use super::weights::Weights;

pub(crate) struct TextTransformer {
    token_embedding: Tensor,      // [V, D]
    positional_embedding: Tensor, // [C, D]
    transformer: Transformer,
    ln_final: LayerNorm,
    text_projection: Linear, // [D, E]
    cfg: TextConfig,
}

impl TextTransformer {
    pub fn load(w: &Weights, cfg: &TextConfig, act: Activation) -> Result<Self, ModelError> {
        Ok(Self {
            token_embedding: w.tensor("token_embedding.weight")?,
            positional_embedding: w.tensor("positional_embedding")?,
            transformer: Transformer::load(
                w,
                "transformer.resblocks",
                cfg.width,
                cfg.layers,
                cfg.heads,
                act,
            )?,
            ln_final: LayerNorm::load(w, "ln_final")?,
            text_projection: Linear::load_matrix(w, "text_projection", Layout::InOut, None)?,
            cfg: cfg.clone(),
        })
    }

    /// Token ids `[B][L]` (validated: `L <= context`, ids `< vocab`) -> `[B, E]`.
    ///
    /// The causal mask makes the output at position `p` depend on positions `0..=p` only, so each
    /// row needs only its first `eot + 1` positions: rows are grouped by that length (see
    /// [`length_groups`]) and each group runs on its own longest length. Same numbers as the
    /// full context, without the padding work.
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor, ModelError> {
        // torch.argmax: first position of the largest id (the EOT token for CLIP tokens).
        let eot: Vec<usize> = ids
            .iter()
            .map(|row| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = i;
                    }
                }
                best
            })
            .collect();
        let ctx = "encode_text";
        let groups = length_groups(&eot);
        // A single group is sorted by length: it is the output order only when that is the input order.
        if groups.len() == 1 && groups[0].iter().enumerate().all(|(k, &r)| k == r) {
            return self.forward_group(ids, &eot, &groups[0], device);
        }
        let mut outs = Vec::with_capacity(groups.len());
        let mut order = Vec::with_capacity(ids.len());
        for g in &groups {
            outs.push(self.forward_group(ids, &eot, g, device)?);
            order.extend_from_slice(g);
        }
        let all = Tensor::cat(&outs, 0).ctx(ctx)?;
        // Row `order[k]` of the input is row `k` of `all`: invert the permutation.
        let mut inverse = vec![0u32; order.len()];
        for (k, &r) in order.iter().enumerate() {
            inverse[r] = k as u32;
        }
        let inverse = Tensor::from_vec(inverse, order.len(), device).ctx(ctx)?;
        all.index_select(&inverse, 0).ctx(ctx)
    }

    /// The rows `rows` of `ids`, run on their first `max(eot) + 1` positions -> `[rows, E]`.
    fn forward_group(
        &self,
        ids: &[Vec<u32>],
        eot: &[usize],
        rows: &[usize],
        device: &Device,
    ) -> Result<Tensor, ModelError> {
        let b = rows.len();
        let t = rows.iter().map(|&r| eot[r]).max().map_or(1, |m| m + 1);
        let flat: Vec<u32> = rows
            .iter()
            .flat_map(|&r| ids[r][..t].iter().copied())
            .collect();
        let d = self.cfg.width;
        let ctx = "encode_text";
        let flat = Tensor::from_vec(flat, b * t, device).ctx(ctx)?;
        let x = self
            .token_embedding
            .index_select(&flat, 0)
            .ctx(ctx)?
            .reshape((b, t, d))
            .ctx(ctx)?;
        let pos = self.positional_embedding.narrow(0, 0, t).ctx(ctx)?;
        let x = x.broadcast_add(&pos).ctx(ctx)?;
        let x = self
            .transformer
            .forward(&x, true, false)
            .ctx("text transformer")?;
        let at: Vec<u32> = rows
            .iter()
            .enumerate()
            .map(|(i, &r)| (i * t + eot[r]) as u32)
            .collect();
        let at = Tensor::from_vec(at, b, device).ctx(ctx)?;
        let x = x
            .reshape((b * t, d))
            .ctx(ctx)?
            .index_select(&at, 0)
            .ctx(ctx)?; // [b, D]
        let x = self.ln_final.forward(&x).ctx("ln_final")?;
        let out = self.text_projection.forward(&x).ctx("text_projection")?;
        debug_assert_eq!(out.dtype(), DType::F32);
        Ok(out)
    }
}

/// Groups row indices by needed length `eot + 1`: rows sorted by length, a group grows while
/// its longest row is at most `max(1.25 * shortest, shortest + 8)` positions, so padding wastes
/// at most ~25% (or 8 positions) per row. One group when that already holds for the whole batch.
pub(crate) fn length_groups(eot: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..eot.len()).collect();
    order.sort_by_key(|&r| eot[r]);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut start_len = 0;
    for r in order {
        let len = eot[r] + 1;
        match groups.last_mut() {
            Some(g) if len <= (start_len + start_len / 4).max(start_len + 8) => g.push(r),
            _ => {
                groups.push(vec![r]);
                start_len = len;
            }
        }
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::length_groups;

    #[test]
    fn groups_bound_the_padding() {
        assert_eq!(length_groups(&[3, 5, 1, 9]), vec![vec![2, 0, 1, 3]]);
        // The fullsize goldens' texts: four short ones and one of 77 tokens.
        assert_eq!(
            length_groups(&[3, 7, 5, 1, 76]),
            vec![vec![3, 0, 2, 1], vec![4]]
        );
        assert_eq!(
            length_groups(&[10, 40, 30, 76, 60, 12]),
            vec![vec![0, 5], vec![2], vec![1], vec![4], vec![3]]
        );
    }
}
