//! What one request may ask of the server. Each limit turns an abusive or mistaken request into a
//! 4xx before it costs memory or model time.

use std::time::Duration;

/// Per-request limits and the model queue's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes (base64 images count here first).
    pub max_body_bytes: usize,
    /// Largest decoded image in pixels, checked from the header before any pixel buffer exists.
    pub max_pixels: u64,
    /// Most inputs (texts + images, or labels) in one request.
    pub max_inputs: usize,
    /// Longest text in characters, checked before tokenizing; the tokenizer then refuses texts
    /// over the model's context length.
    pub max_text_chars: usize,
    /// How long a request may wait for the model before it gets 504.
    pub request_timeout: Duration,
    /// Inputs waiting for the model beyond which new requests get 429; also the most prompts
    /// (labels x templates) one classify request may embed.
    pub queue_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_pixels: 50_000_000,
            max_inputs: 256,
            max_text_chars: 2_000,
            request_timeout: Duration::from_secs(30),
            queue_capacity: 4_096,
        }
    }
}
