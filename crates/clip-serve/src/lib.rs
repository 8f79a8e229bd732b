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
mod decode;
mod error;
mod guard;
mod inputs;
mod limits;
mod listener;
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
use state::{AppState, IndexSlot, StateParts};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The `--db` index is missing or unreadable, or the model's space cannot be computed.
    #[error("cannot open the index: {0}")]
    Index(#[from] clip_index::IndexError),
    /// Binding the address, building the runtime or serving failed.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A limit that cannot work (zero, or an image larger than the decode budget).
    #[error("invalid limits: {0}")]
    Limits(String),
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
    /// What one request, one connection and the whole server may ask.
    pub limits: Limits,
    /// `Host` header values answered besides loopback names and IP literals (`*`: any).
    pub allowed_hosts: Vec<String>,
    /// The moderation policy of `/v1/moderate` (default: the built-in one).
    pub policy: Option<clip_tasks::moderation::Policy>,
    /// How often the index database is checked for changes (`clip index` runs while serving);
    /// `None`: only on SIGHUP.
    pub reload_every: Option<std::time::Duration>,
}

/// A ready server: the router and the model thread behind it.
pub struct Server {
    router: Router,
    state: Arc<AppState>,
    model_thread: JoinHandle<()>,
    reload_every: Option<std::time::Duration>,
}

impl Server {
    /// Starts the model thread and opens the index (when given). The model's batch size becomes
    /// the batcher's, so a gathered batch is one forward pass.
    pub fn new(clip: Clip, options: ServeOptions) -> Result<Self, ServeError> {
        options.limits.validate().map_err(ServeError::Limits)?;
        let clip = Arc::new(clip.with_batch_size(options.batch.max_batch));
        let index = match options.db {
            Some(db) => Some(IndexSlot::open(db, &clip)?),
            None => None,
        };
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
        let state = Arc::new(AppState::new(
            clip,
            batcher,
            StateParts {
                model_name,
                metrics,
                limits: options.limits,
                token: options.token,
                allowed_hosts: options.allowed_hosts,
                index,
                policy: options
                    .policy
                    .unwrap_or_else(clip_tasks::moderation::Policy::builtin),
            },
        ));
        Ok(Self {
            router: routes::router(state.clone()),
            state,
            model_thread,
            reload_every: options.reload_every,
        })
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (for at most the limits' `shutdown_grace`) and waits for the model thread to drain its
    /// queue. The index is reloaded when its database changes, and on SIGHUP.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            router,
            state,
            model_thread,
            reload_every,
        } = self;
        raise_open_file_limit();
        let reloader = tokio::spawn(keep_index_fresh(state.clone(), reload_every));
        let limits = state.limits.clone();
        listener::serve(listener, router, &limits, state.metrics.clone(), shutdown).await;
        reloader.abort();
        let _ = reloader.await;
        // The last handles on the batcher go with the state: the model thread then ends.
        drop(state);
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

    /// The router alone, to serve with a stack of one's own (another axum app, a test harness,
    /// a fuzzer). The model thread keeps running as long as the router (or a clone) exists. The
    /// connection limits, timeouts and index reloading of [`Server::run`] are not part of it.
    pub fn into_router(self) -> Router {
        self.router
    }

    /// Images of the index in the served model's space (`None` without an index).
    pub fn indexed_images(&self) -> Option<usize> {
        self.state.index.as_ref().map(|i| i.current().len())
    }
}

/// Reloads the index when its database changes (checked every `every`) or on SIGHUP, off the
/// async runtime; a failed reload keeps the index in use and says why on stderr.
async fn keep_index_fresh(state: Arc<AppState>, every: Option<std::time::Duration>) {
    if state.index.is_none() {
        return;
    }
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let tick = async {
            match every {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let force = tokio::select! {
            _ = tick => false,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        #[cfg(not(unix))]
        let force = {
            tick.await;
            false
        };
        let st = state.clone();
        let reloaded = tokio::task::spawn_blocking(move || {
            st.index.as_ref().map(|slot| slot.reload(&st.clip, force))
        })
        .await;
        if let Ok(Some(Err(e))) = reloaded {
            eprintln!("clip serve: index not reloaded: {e}");
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so the connection limit (not the
/// process's descriptor table) is what refuses clients. Best effort: a failure keeps the old one.
fn raise_open_file_limit() {
    #[cfg(unix)]
    let _ = rlimit::increase_nofile_limit(u64::MAX);
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
