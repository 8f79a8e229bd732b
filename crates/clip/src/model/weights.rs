//! Checkpoint tensors -> candle f32 tensors, validated (presence, dtype, shape, finiteness).

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use clip_checkpoint::{StateDict, TensorData};

use super::error::{Context, ModelError};

/// Checks that every `(name, shape)` of the table is present, floating point and of that shape
/// (`logit_scale` may be `[]` or `[1]`). The first problem in table order is returned.
pub(crate) fn validate(
    state: &StateDict,
    table: &[(String, Vec<usize>)],
) -> Result<(), ModelError> {
    for (name, shape) in table {
        let t = state
            .get(name)
            .ok_or_else(|| ModelError::missing(name.as_str()))?;
        if !t.dtype().is_float() {
            return Err(ModelError::DType {
                path: None,
                name: name.clone(),
                dtype: t.dtype(),
            });
        }
        let ok = t.shape() == shape.as_slice()
            || (shape.is_empty() && t.numel() == 1 && t.shape().len() <= 1);
        if !ok {
            return Err(ModelError::shape(
                name.as_str(),
                t.shape(),
                format!("{shape:?}"),
            ));
        }
    }
    Ok(())
}

/// Values of a tensor as f32, refusing NaN and infinities.
pub(crate) fn finite_f32(name: &str, t: &TensorData) -> Result<Vec<f32>, ModelError> {
    let v = t.to_f32_vec();
    if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
        let what = if bad.is_nan() {
            "NaN"
        } else {
            "infinite values"
        };
        return Err(ModelError::NonFinite {
            path: None,
            name: name.to_string(),
            what,
        });
    }
    Ok(v)
}

/// Validated tensors by name, converted on demand to f32 on one device.
pub(crate) struct Weights<'a> {
    state: &'a StateDict,
    shapes: HashMap<&'a str, &'a [usize]>,
    device: Device,
}

impl<'a> Weights<'a> {
    /// `table` must have been checked with [`validate`].
    pub fn new(state: &'a StateDict, table: &'a [(String, Vec<usize>)], device: &Device) -> Self {
        let shapes = table
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_slice()))
            .collect();
        Self {
            state,
            shapes,
            device: device.clone(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Raw f32 values (finite) of a validated tensor.
    pub fn values(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let t = self
            .state
            .get(name)
            .ok_or_else(|| ModelError::missing(name))?;
        finite_f32(name, t)
    }

    /// The tensor with its table shape, as f32 on the device.
    pub fn tensor(&self, name: &str) -> Result<Tensor, ModelError> {
        let shape = self
            .shapes
            .get(name)
            .copied()
            .ok_or_else(|| ModelError::missing(name))?;
        let v = self.values(name)?;
        Tensor::from_vec(v, shape, &self.device).ctx(name)
    }

    /// A `[out, in]` matrix stored transposed as a contiguous `[in, out]` tensor (for `x @ w`).
    pub fn transposed(&self, name: &str) -> Result<Tensor, ModelError> {
        let shape = self
            .shapes
            .get(name)
            .copied()
            .ok_or_else(|| ModelError::missing(name))?;
        let (rows, cols) = match shape {
            [r, c] => (*r, *c),
            _ => return Err(ModelError::shape(name, shape, "a matrix")),
        };
        let v = self.values(name)?;
        Tensor::from_vec(transpose(&v, rows, cols), (cols, rows), &self.device).ctx(name)
    }
}

/// `[rows, cols]` -> `[cols, rows]`, in cache-sized tiles.
pub(crate) fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut t = vec![0f32; v.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    t[c * rows + r] = v[r * cols + c];
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_matches_definition() {
        let (rows, cols) = (70, 45);
        let v: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = super::transpose(&v, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], v[r * cols + c]);
            }
        }
    }
}
