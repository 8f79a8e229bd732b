//! `clip serve`: CLIP over HTTP. An OpenAI-compatible `/v1/embeddings`, zero-shot classification,
//! similarity, moderation and photo search, with dynamic batching in front of one model thread,
//! request limits, an optional bearer token, Prometheus metrics and an embedded search page.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let clip = clip::Clip::load("fixtures/models/tiny-vit.safetensors")?;
//! let server = clip_serve::Server::new(clip, clip_serve::ServeOptions::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server.run(listener, clip_serve::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod auth;
mod batcher;
mod body;
mod error;
mod inputs;
mod limits;
mod metrics;
mod page;
mod routes;
mod search_index;
mod state;
mod thumbnail;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::Router;
use clip::Clip;

pub use batcher::BatchConfig;
pub use error::ApiError;
pub use limits::Limits;

use batcher::Batcher;
use metrics::Metrics;
use search_index::SearchIndex;
use state::AppState;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The `--db` index is missing or unreadable, or the model's space cannot be computed.
    #[error("cannot open the index: {0}")]
    Index(#[from] clip_index::IndexError),
    /// Binding the address, building the runtime or serving failed.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How to serve.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The name echoed in responses' `model` field (defaults to the checkpoint's path).
    pub model_name: Option<String>,
    /// The photo index for `/v1/search`; without it those endpoints answer 404.
    pub db: Option<PathBuf>,
    /// Bearer token required on every endpoint but `/healthz` and the page's static files.
    pub token: Option<String>,
    /// How requests are gathered into forward passes.
    pub batch: BatchConfig,
    /// What one request may ask of the server.
    pub limits: Limits,
}

/// A ready server: the router and the model thread behind it.
pub struct Server {
    router: Router,
    model_thread: JoinHandle<()>,
    indexed: Option<usize>,
}

impl Server {
    /// Starts the model thread and opens the index (when given). The model's batch size becomes
    /// the batcher's, so a gathered batch is one forward pass.
    pub fn new(clip: Clip, options: ServeOptions) -> Result<Self, ServeError> {
        let clip = Arc::new(clip.with_batch_size(options.batch.max_batch));
        let index = match &options.db {
            Some(db) => Some(SearchIndex::open(db, &clip)?),
            None => None,
        };
        let indexed = index.as_ref().map(SearchIndex::len);
        let metrics = Arc::new(Metrics::default());
        let (batcher, model_thread) = Batcher::start(
            clip.clone(),
            options.batch,
            options.limits.queue_capacity,
            metrics.clone(),
        );
        let model_name = options
            .model_name
            .unwrap_or_else(|| clip.source().display().to_string());
        let state = AppState::new(
            clip,
            model_name,
            batcher,
            metrics,
            options.limits,
            options.token,
            index,
        );
        Ok(Self {
            router: routes::router(Arc::new(state)),
            model_thread,
            indexed,
        })
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish and
    /// waits for the model thread to drain its queue.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            router,
            model_thread,
            ..
        } = self;
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        // The last handle on the batcher went with the router: the model thread now ends.
        tokio::task::spawn_blocking(move || model_thread.join())
            .await
            .ok();
        Ok(())
    }

    /// Binds `addr`, calls `on_ready` with the bound address, and serves on a new multi-threaded
    /// runtime until SIGINT or SIGTERM: the entry point for a synchronous `main`.
    pub fn run_blocking(
        self,
        addr: std::net::SocketAddr,
        on_ready: impl FnOnce(std::net::SocketAddr),
    ) -> Result<(), ServeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            on_ready(listener.local_addr()?);
            self.run(listener, shutdown_signal()).await
        })
    }

    /// Images of the index in the served model's space (`None` without an index).
    pub fn indexed_images(&self) -> Option<usize> {
        self.indexed
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
