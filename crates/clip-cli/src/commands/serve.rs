//! `clip serve`: the HTTP API and search page of the `clip-serve` crate, on loopback by default.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::TypedValueParser;
use clap::Args;
use clip_serve::{BatchConfig, Limits, ServeOptions, Server};
use clip_tasks::moderation::Policy;

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
    /// Serve a non-loopback --host without --token (anyone who reaches the port can use the
    /// model and read the index).
    #[arg(long)]
    insecure: bool,
    /// A host name clients may use in the Host header besides localhost and IP addresses
    /// (repeatable; `*` for any). Names not listed are refused, which stops DNS rebinding.
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// Moderation policy TOML for /v1/moderate (default: the built-in policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Most inputs per model forward pass (1 turns dynamic batching off).
    #[arg(long, default_value_t = BatchConfig::default().max_batch, value_parser = positive())]
    max_batch: usize,
    /// Longest an input waits for others to fill its batch, in milliseconds.
    #[arg(long, default_value_t = BatchConfig::default().max_wait.as_millis() as u64)]
    max_wait_ms: u64,
    /// Inputs waiting for the model beyond which requests get 429.
    #[arg(long, default_value_t = Limits::default().queue_capacity, value_parser = positive())]
    max_queue: usize,
    /// Most inputs (texts, images, labels) per request.
    #[arg(long, default_value_t = Limits::default().max_inputs, value_parser = positive())]
    max_inputs: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes, value_parser = positive())]
    max_body_bytes: usize,
    /// Largest image in pixels (decompression bombs are refused before decoding).
    #[arg(long, default_value_t = Limits::default().max_pixels, value_parser = clap::value_parser!(u64).range(1..))]
    max_pixels: u64,
    /// Most pixels the images of one request may hold together (413 above it).
    #[arg(long, default_value_t = Limits::default().max_request_pixels, value_parser = clap::value_parser!(u64).range(1..))]
    max_request_pixels: u64,
    /// Pixels decoded at once across all requests: bounds the memory images take.
    #[arg(long, default_value_t = Limits::default().decode_budget_pixels, value_parser = clap::value_parser!(u64).range(1..))]
    decode_budget_pixels: u64,
    /// Per-request time limit in seconds (504 after it).
    #[arg(long, default_value_t = Limits::default().request_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,
    /// Seconds a client has to send a request's headers (also the idle keep-alive timeout).
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,
    /// Seconds a client has to send a request's body (408 after it).
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout_secs: u64,
    /// Open connections beyond which new ones are closed at once.
    #[arg(long, default_value_t = Limits::default().max_connections, value_parser = positive())]
    max_connections: usize,
    /// Seconds in-flight requests get to finish after SIGTERM before connections are dropped.
    #[arg(long, default_value_t = Limits::default().shutdown_grace.as_secs())]
    shutdown_grace_secs: u64,
    /// Check the index database for changes every this many seconds (0: only on SIGHUP).
    #[arg(long, default_value_t = 2)]
    reload_secs: u64,
}

/// A clap parser for counts of at least 1.
fn positive() -> impl TypedValueParser<Value = usize> {
    clap::value_parser!(u64)
        .range(1..)
        .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

/// Loads the model (and index), then serves until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    if !args.host.is_loopback() && args.token.is_none() {
        if !args.insecure {
            bail!(
                "refusing to serve {} without --token: anyone who reaches this port could use \
                 the model and read the index (give --token, or --insecure to do it anyway)",
                args.host
            );
        }
        eprintln!(
            "clip serve: WARNING: serving {} without a token (--insecure): anyone who reaches \
             this port can use the model and read the index",
            args.host
        );
    }
    let policy = args.policy.as_deref().map(Policy::from_file).transpose()?;
    let model_name = args.model.path()?.display().to_string();
    let clip = args.model.load()?;
    let options = ServeOptions {
        model_name: Some(model_name.clone()),
        db: args.db.clone(),
        token: args.token.clone(),
        batch: BatchConfig {
            max_batch: args.max_batch,
            max_wait: Duration::from_millis(args.max_wait_ms),
        },
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_pixels: args.max_pixels,
            max_request_pixels: args.max_request_pixels,
            decode_budget_pixels: args.decode_budget_pixels,
            max_inputs: args.max_inputs,
            request_timeout: Duration::from_secs(args.timeout_secs),
            queue_capacity: args.max_queue,
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            body_timeout: Duration::from_secs(args.body_timeout_secs),
            max_connections: args.max_connections,
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            ..Limits::default()
        },
        allowed_hosts: args.allowed_hosts.clone(),
        policy,
        reload_every: (args.reload_secs > 0).then(|| Duration::from_secs(args.reload_secs)),
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
