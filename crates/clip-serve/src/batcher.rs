//! Dynamic batching. Handlers submit single texts or preprocessed images; one model thread takes
//! whatever is queued (up to `max_batch`, waiting at most `max_wait` for more) and runs it as one
//! forward pass per modality. Under load the model therefore sees full batches, which is where
//! CLIP's throughput comes from, while a lone request waits at most `max_wait`.
//!
//! The model runs on a dedicated OS thread, never on the async runtime: a forward pass is
//! CPU-bound for milliseconds to seconds and would otherwise stall every connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clip::tokenizer::Overflow;
use clip::Clip;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// One model input. Texts are validated against the context length before they are queued, so
/// the model thread can truncate safely and one bad text never fails a whole batch.
pub enum Input {
    /// A text already checked against the context length.
    Text(String),
    /// `[3, n, n]` pixels from [`Clip::preprocess`].
    Pixels(Vec<f32>),
}

/// Where the model thread sends one input's raw embedding (or the batch's error).
type Reply = oneshot::Sender<Result<Vec<f32>, String>>;

/// One queued input and where its answer goes.
struct Job {
    input: Input,
    reply: Reply,
}

/// Batching parameters.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most inputs per forward pass (1 turns batching off).
    pub max_batch: usize,
    /// Longest a queued input waits for others to join its batch.
    pub max_wait: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: 32,
            max_wait: Duration::from_millis(5),
        }
    }
}

/// The submitting side of the model queue. Dropping it ends the model thread once the queue is
/// drained.
pub struct Batcher {
    queue: SyncSender<Job>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
}

impl Batcher {
    /// Starts the model thread. The queue holds at most `capacity` inputs.
    pub fn start(
        clip: Arc<Clip>,
        config: BatchConfig,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> (Self, JoinHandle<()>) {
        let (queue, jobs) = sync_channel(capacity.max(1));
        let depth = Arc::new(AtomicUsize::new(0));
        let worker_depth = depth.clone();
        let handle = std::thread::Builder::new()
            .name("clip-model".into())
            .spawn(move || run_model(&clip, config, &jobs, &worker_depth, &metrics))
            .expect("spawning the model thread");
        (
            Self {
                queue,
                depth,
                capacity,
            },
            handle,
        )
    }

    /// Inputs waiting for the model now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Queues every input and waits for all their raw embeddings (in order), at most `timeout`.
    /// A full queue is refused at once (429) rather than making the client wait behind it.
    pub async fn embed(
        &self,
        inputs: Vec<Input>,
        timeout: Duration,
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        if self.depth() + inputs.len() > self.capacity {
            return Err(ApiError::QueueFull(self.depth()));
        }
        let mut replies = Vec::with_capacity(inputs.len());
        for input in inputs {
            let (reply, answer) = oneshot::channel();
            self.depth.fetch_add(1, Ordering::Relaxed);
            match self.queue.try_send(Job { input, reply }) {
                Ok(()) => replies.push(answer),
                Err(e) => {
                    self.depth.fetch_sub(1, Ordering::Relaxed);
                    return Err(match e {
                        TrySendError::Full(_) => ApiError::QueueFull(self.depth()),
                        TrySendError::Disconnected(_) => {
                            ApiError::Internal("the model thread has stopped".into())
                        }
                    });
                }
            }
        }
        let all = async {
            let mut out = Vec::with_capacity(replies.len());
            for answer in replies {
                match answer.await {
                    Ok(Ok(v)) => out.push(v),
                    Ok(Err(message)) => return Err(ApiError::Internal(message)),
                    Err(_) => {
                        return Err(ApiError::Internal("the model thread has stopped".into()))
                    }
                }
            }
            Ok(out)
        };
        tokio::time::timeout(timeout, all)
            .await
            .map_err(|_| ApiError::Timeout(timeout.as_millis()))?
    }
}

/// The model thread: gather a batch, run it, answer each job; ends when every sender is gone.
fn run_model(
    clip: &Clip,
    config: BatchConfig,
    jobs: &Receiver<Job>,
    depth: &AtomicUsize,
    metrics: &Metrics,
) {
    let max_batch = config.max_batch.max(1);
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + config.max_wait;
        while batch.len() < max_batch {
            match jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => batch.push(job),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        depth.fetch_sub(batch.len(), Ordering::Relaxed);
        // Requests that timed out or disconnected no longer need their inputs.
        batch.retain(|job| !job.reply.is_closed());
        let (mut texts, mut text_replies) = (Vec::new(), Vec::new());
        let (mut pixels, mut image_replies) = (Vec::new(), Vec::new());
        for job in batch {
            match job.input {
                Input::Text(t) => {
                    texts.push(t);
                    text_replies.push(job.reply);
                }
                Input::Pixels(p) => {
                    pixels.push(p);
                    image_replies.push(job.reply);
                }
            }
        }
        if !texts.is_empty() {
            metrics.observe_batch("text", texts.len());
            reply_all(text_replies, clip.encode_texts(&texts, Overflow::Truncate));
        }
        if !pixels.is_empty() {
            metrics.observe_batch("image", pixels.len());
            reply_all(image_replies, clip.encode_pixels(&pixels));
        }
    }
}

/// Sends row `i` of the batch's embeddings to job `i`, or the error to every job.
fn reply_all(replies: Vec<Reply>, result: Result<clip::Embeddings, clip::ClipError>) {
    match result {
        Ok(embeddings) => {
            for (reply, row) in replies.into_iter().zip(embeddings.rows()) {
                let _ = reply.send(Ok(row.to_vec()));
            }
        }
        Err(e) => {
            let message = format!("model failure: {e}");
            for reply in replies {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}
