//! Checkpoint tensors -> candle f32 tensors, validated (presence, dtype, shape, finiteness).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use clip_checkpoint::{StateDict, TensorData};

use super::error::{Context, ModelError};
use crate::kernels::{Isa, Precision};

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
    check_finite(name, t.to_f32_vec())
}

fn check_finite(name: &str, v: Vec<f32>) -> Result<Vec<f32>, ModelError> {
    // A fold without early exit vectorises (a `find` over every weight was a noticeable share of
    // loading); what kind of value it is gets looked at only when there is one.
    if v.iter().fold(false, |bad, x| bad | !x.is_finite()) {
        let what = if v.iter().any(|x| x.is_nan()) {
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

/// Validated tensors by name, converted on demand to f32 on one device; the linear layers' matrices
/// in the chosen [`Precision`] (see `layers::Linear`).
pub(crate) struct Weights<'a> {
    state: &'a StateDict,
    shapes: HashMap<&'a str, &'a [usize]>,
    device: Device,
    precision: Precision,
    isa: Isa,
}

impl<'a> Weights<'a> {
    /// `table` must have been checked with [`validate`].
    pub fn new(
        state: &'a StateDict,
        table: &'a [(String, Vec<usize>)],
        device: &Device,
        precision: Precision,
        isa: Isa,
    ) -> Self {
        let shapes = table
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_slice()))
            .collect();
        Self {
            state,
            shapes,
            device: device.clone(),
            precision,
            isa,
        }
    }

    /// The same tensors, matrices in f32 on candle's GEMM whatever the model's precision and
    /// kernels: for the layers whose numbers need its blocked summation (see the ResNet).
    pub fn candle_f32(&self) -> Weights<'a> {
        Weights {
            state: self.state,
            shapes: self.shapes.clone(),
            device: self.device.clone(),
            precision: Precision::F32,
            isa: Isa::Portable,
        }
    }

    /// The device the tensors are built on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The precision of the linear layers' matrices.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The kernel set the linear layers' matrices are packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The table shape of a validated tensor.
    pub fn shape(&self, name: &str) -> Result<&'a [usize], ModelError> {
        self.shapes
            .get(name)
            .copied()
            .ok_or_else(|| ModelError::missing(name))
    }

    /// Raw f32 values (finite) of a validated tensor.
    pub fn values(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let t = self
            .state
            .get(name)
            .ok_or_else(|| ModelError::missing(name))?;
        let v = finite_f32(name, t);
        t.release_pages();
        v
    }

    /// Raw f32 values (finite) of a validated tensor read as `[rows, cols]`, transposed to
    /// `[cols, rows]`.
    pub fn values_transposed_as(
        &self,
        name: &str,
        (rows, cols): (usize, usize),
    ) -> Result<Vec<f32>, ModelError> {
        let t = self
            .state
            .get(name)
            .ok_or_else(|| ModelError::missing(name))?;
        let v = t.to_f32_transposed(rows, cols).ok_or_else(|| {
            ModelError::shape(name, t.shape(), format!("{rows} x {cols} elements"))
        })?;
        t.release_pages();
        check_finite(name, v)
    }

    /// The tensor with its table shape in the precision the checkpoint stores it (f16, bf16 or
    /// f32; anything else as f32), checked finite on its stored bits: for a table that is only
    /// ever gathered from, whose rows widen exactly when used (the token embedding, a large part
    /// of a text tower, stays half-size and need not be converted at start-up).
    pub fn tensor_as_stored(&self, name: &str) -> Result<Tensor, ModelError> {
        let t = self
            .state
            .get(name)
            .ok_or_else(|| ModelError::missing(name))?;
        let dtype = match t.dtype() {
            clip_checkpoint::DType::F16 => DType::F16,
            clip_checkpoint::DType::BF16 => DType::BF16,
            clip_checkpoint::DType::F32 => DType::F32,
            _ => return self.tensor(name),
        };
        if !t.all_finite() {
            // The f32 path names the kind of value.
            return self.tensor(name);
        }
        let out = Tensor::from_raw_buffer(t.bytes(), dtype, self.shape(name)?, &self.device);
        t.release_pages();
        out.ctx(name)
    }

    /// The tensor with its table shape, as f32 on the device.
    pub fn tensor(&self, name: &str) -> Result<Tensor, ModelError> {
        let shape = self.shape(name)?;
        let v = self.values(name)?;
        Tensor::from_vec(v, shape, &self.device).ctx(name)
    }
}
