//! The server-wide decode budget: every image being decoded (request images and thumbnails)
//! holds a share of it proportional to its pixel count, read from its header. Decoded pixel
//! buffers therefore never exceed the budget together, however many clients send images at once:
//! the excess waits (and is refused with 503 when it waits longer than the request's time limit).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Pixels one permit stands for (so that a budget of billions of pixels fits the semaphore).
const PIXELS_PER_PERMIT: u64 = 4096;

/// Pixels being decoded at once, across all requests.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    permits: Arc<Semaphore>,
    total: u32,
}

impl DecodeBudget {
    /// A budget of `pixels` (at least one permit).
    pub fn new(pixels: u64) -> Self {
        let total = pixels
            .div_ceil(PIXELS_PER_PERMIT)
            .clamp(1, u64::from(u32::MAX >> 3)) as u32;
        Self {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Waits until an image of `pixels` may decode; the share is returned when the permit drops.
    /// An image larger than the whole budget waits for all of it (the limits' validation keeps
    /// single images below the budget).
    pub async fn acquire(&self, pixels: u64) -> Result<OwnedSemaphorePermit, ApiError> {
        let want = pixels
            .div_ceil(PIXELS_PER_PERMIT)
            .clamp(1, u64::from(self.total)) as u32;
        self.permits
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| ApiError::Internal("the decode budget is closed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shares_are_weighted_by_pixels_and_released_on_drop() {
        let budget = DecodeBudget::new(10 * PIXELS_PER_PERMIT);
        let big = budget.acquire(8 * PIXELS_PER_PERMIT).await.unwrap();
        let small = budget.acquire(2 * PIXELS_PER_PERMIT).await.unwrap();
        // The budget is spent: a third image waits until one is dropped.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            budget.acquire(PIXELS_PER_PERMIT),
        )
        .await;
        assert!(waiting.is_err());
        drop(small);
        let third = budget.acquire(PIXELS_PER_PERMIT).await.unwrap();
        drop(big);
        drop(third);
        // More than the whole budget waits for all of it, not forever.
        let _all = budget.acquire(u64::MAX).await.unwrap();
    }
}
