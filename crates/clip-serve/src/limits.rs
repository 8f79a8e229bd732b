//! What one request, one connection and the whole server may ask of the machine. Each limit
//! turns an abusive or mistaken client into a 4xx/5xx (or a closed connection) before it costs
//! memory, file descriptors or model time. docs/SECURITY.md lists them with their defaults.

use std::time::Duration;

/// Per-request limits, the decoding budget, the connection limits and the model queue's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes (base64 images count here first). A larger
    /// `Content-Length` is refused before the body is read.
    pub max_body_bytes: usize,
    /// Largest decoded image in pixels, checked from the header before any pixel buffer exists.
    pub max_pixels: u64,
    /// Most pixels all the images of one request may hold together (from their headers): a
    /// request over it gets 413 before anything is decoded.
    pub max_request_pixels: u64,
    /// Pixels being decoded at once across all requests: each image holds its share of this
    /// budget while it decodes, so decoded pixel buffers never exceed it, whatever the number of
    /// clients (the bound on the server's image memory, see docs/SECURITY.md).
    pub decode_budget_pixels: u64,
    /// Images of one request decoded at the same time.
    pub decode_parallelism: usize,
    /// Most inputs (texts + images, or labels) in one request.
    pub max_inputs: usize,
    /// Longest text in characters, checked before tokenizing; the tokenizer then refuses texts
    /// over the model's context length.
    pub max_text_chars: usize,
    /// How long a request may wait for decoding and the model before it gets 504.
    pub request_timeout: Duration,
    /// Inputs waiting for the model beyond which new requests get 429; also the most prompts
    /// (labels x templates) one classify request may embed.
    pub queue_capacity: usize,
    /// Time a client has to send a request's headers; also how long an idle keep-alive
    /// connection is kept (slow-loris and silent connections are closed after it).
    pub header_timeout: Duration,
    /// Time a client has to send a request's body once its headers are in (408 after it).
    pub body_timeout: Duration,
    /// Open connections beyond which new ones are closed at once (the file descriptors stay
    /// available for the ones being served).
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, how long in-flight requests may take to finish before their
    /// connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_pixels: 50_000_000,
            max_request_pixels: 200_000_000,
            decode_budget_pixels: 200_000_000,
            decode_parallelism: 2,
            max_inputs: 256,
            max_text_chars: 2_000,
            request_timeout: Duration::from_secs(30),
            queue_capacity: 4_096,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Checks that every limit can be met (no zero counts or durations, an image fits the
    /// request and the decode budget); the message names the option.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_pixels", self.max_pixels),
            ("max_request_pixels", self.max_request_pixels),
            ("decode_budget_pixels", self.decode_budget_pixels),
            ("decode_parallelism", self.decode_parallelism as u64),
            ("max_inputs", self.max_inputs as u64),
            ("max_text_chars", self.max_text_chars as u64),
            ("queue_capacity", self.queue_capacity as u64),
            ("max_connections", self.max_connections as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        let durations = [
            ("request_timeout", self.request_timeout),
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(format!("{name} must be longer than 0"));
        }
        if self.max_pixels > self.decode_budget_pixels {
            return Err(format!(
                "max_pixels ({}) exceeds decode_budget_pixels ({}): such an image could never decode",
                self.max_pixels, self.decode_budget_pixels
            ));
        }
        Ok(())
    }
}
