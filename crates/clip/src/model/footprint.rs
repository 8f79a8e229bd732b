//! Bytes of weights a built model holds, in the precision it holds them: what `clip bench`
//! compares its peak RSS with (the issue's "peak RSS <= 1.2x the weights in their run
//! precision"). Counted from the built layers, not the checkpoint, so packed matrices count at
//! their packed size and towers that were not built count nothing.

use candle_core::Tensor;

pub(crate) trait Footprint {
    /// Bytes of weights held, at their stored size.
    fn weight_bytes(&self) -> usize;
}

impl Footprint for Tensor {
    fn weight_bytes(&self) -> usize {
        self.elem_count() * self.dtype().size_in_bytes()
    }
}

impl Footprint for [f32] {
    fn weight_bytes(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

impl<T: Footprint> Footprint for Option<T> {
    fn weight_bytes(&self) -> usize {
        self.as_ref().map_or(0, T::weight_bytes)
    }
}

impl<T: Footprint> Footprint for [T] {
    fn weight_bytes(&self) -> usize {
        self.iter().map(T::weight_bytes).sum()
    }
}

/// The sum over a layer's parts.
macro_rules! footprint {
    ($ty:ty: $($part:ident),+) => {
        impl $crate::model::footprint::Footprint for $ty {
            fn weight_bytes(&self) -> usize {
                0 $(+ self.$part.weight_bytes())+
            }
        }
    };
}
pub(crate) use footprint;
