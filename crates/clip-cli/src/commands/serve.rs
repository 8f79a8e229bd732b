//! `clip serve`: the HTTP API and search page of the `clip-serve` crate, on loopback by default.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use clip_serve::{BatchConfig, Limits, ServeOptions, Server};

use super::ModelArgs;

/// `clip serve` arguments.
#[derive(Args)]
pub struct ServeArgs {
    /// `--model`, `--registry`, `--precision`.
    #[command(flatten)]
    model: ModelArgs,
    /// Photo index (from `clip index`) for /v1/search and the page; without it search answers 404.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Address to listen on; the default serves this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0: any free port, printed at startup).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Require `Authorization: Bearer <TOKEN>` on every endpoint but /healthz.
    #[arg(long, env = "CLIP_SERVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Most inputs per model forward pass (1 turns dynamic batching off).
    #[arg(long, default_value_t = BatchConfig::default().max_batch)]
    max_batch: usize,
    /// Longest an input waits for others to fill its batch, in milliseconds.
    #[arg(long, default_value_t = BatchConfig::default().max_wait.as_millis() as u64)]
    max_wait_ms: u64,
    /// Inputs waiting for the model beyond which requests get 429.
    #[arg(long, default_value_t = Limits::default().queue_capacity)]
    max_queue: usize,
    /// Most inputs (texts, images, labels) per request.
    #[arg(long, default_value_t = Limits::default().max_inputs)]
    max_inputs: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest image in pixels (decompression bombs are refused before decoding).
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    max_pixels: u64,
    /// Per-request time limit in seconds (504 after it).
    #[arg(long, default_value_t = Limits::default().request_timeout.as_secs())]
    timeout_secs: u64,
}

/// Loads the model (and index), then serves until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    let model_name = args.model.path()?.display().to_string();
    let clip = args.model.load()?;
    let options = ServeOptions {
        model_name: Some(model_name.clone()),
        db: args.db.clone(),
        token: args.token.clone(),
        batch: BatchConfig {
            max_batch: args.max_batch.max(1),
            max_wait: Duration::from_millis(args.max_wait_ms),
        },
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_pixels: args.max_pixels,
            max_inputs: args.max_inputs,
            request_timeout: Duration::from_secs(args.timeout_secs),
            queue_capacity: args.max_queue,
            ..Limits::default()
        },
    };
    let server = Server::new(clip, options)?;
    if let (Some(db), Some(0)) = (&args.db, server.indexed_images()) {
        eprintln!("warning: {} has no images embedded by {model_name}: run `clip index <DIR> --db {} --model {model_name}`", db.display(), db.display());
    }
    let addr = SocketAddr::new(args.host, args.port);
    server
        .run_blocking(addr, |bound| {
            eprintln!("clip serve: {model_name} on http://{bound}/ (Ctrl-C to stop)")
        })
        .with_context(|| format!("serving on {addr}"))?;
    eprintln!("clip serve: stopped");
    Ok(0)
}
