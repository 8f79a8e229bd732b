//! Bounded load test, run by hand (it measures, so it is `#[ignore]`d in the suite):
//!
//! ```sh
//! cargo test -p clip-serve --release --test load -- --ignored --nocapture
//! LOAD_CLIENTS=64 LOAD_SECS=10 LOAD_MODEL=path/to/model ...   # the defaults, fixture model
//! ```
//!
//! 64 clients on loopback each send one-input `/v1/embeddings` requests back to back for a fixed
//! time, once with dynamic batching on and once with it off (`max_batch = 1`). Asserts zero 5xx and
//! no memory growth in the second half of each run; prints throughput, p50/p99 latency, the mean
//! model batch and RSS as Markdown rows for docs/BENCHMARKS.md.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clip_serve::{BatchConfig, ServeOptions};
use common::{image_b64, TestServer};
use serde_json::json;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

struct Run {
    requests: usize,
    server_errors: usize,
    other_errors: usize,
    latencies_ms: Vec<f64>,
    seconds: f64,
    mean_batch: f64,
    rss_start: f64,
    rss_mid: f64,
    rss_end: f64,
}

fn run(batch: BatchConfig, clients: usize, seconds: u64, image: bool) -> Run {
    let server = TestServer::start(ServeOptions {
        batch,
        ..ServeOptions::default()
    });
    let url = format!("{}/v1/embeddings", server.url);
    let body = if image {
        json!({"input": [{"image": image_b64("chelsea_small.bmp")}]})
    } else {
        json!({"input": ["a woman in a yellow raincoat walking her dog through a busy street market"]})
    };
    // Warm-up: the first requests pay for lazy initialisation (thread pools, allocations).
    for _ in 0..8 {
        ureq::post(&url).send_json(&body).unwrap();
    }
    let rss_start = rss_mb();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, body, stop) = (url.clone(), body.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build();
                let (mut latencies, mut server_errors, mut other_errors) = (Vec::new(), 0, 0);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match agent.post(&url).send_json(&body) {
                        Ok(r) => {
                            let _ = r.into_string();
                            latencies.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        Err(ureq::Error::Status(code, _)) if code >= 500 => server_errors += 1,
                        Err(_) => other_errors += 1,
                    }
                }
                (latencies, server_errors, other_errors)
            })
        })
        .collect();
    // Memory is judged in the second half: the first fills allocator arenas and thread pools.
    std::thread::sleep(Duration::from_secs_f64(seconds as f64 / 2.0));
    let rss_mid = rss_mb();
    std::thread::sleep(Duration::from_secs_f64(seconds as f64 / 2.0));
    stop.store(true, Ordering::Relaxed);
    let mut out = Run {
        requests: 0,
        server_errors: 0,
        other_errors: 0,
        latencies_ms: Vec::new(),
        seconds: 0.0,
        mean_batch: 0.0,
        rss_start,
        rss_mid,
        rss_end: 0.0,
    };
    for t in threads {
        let (l, s, o) = t.join().unwrap();
        out.latencies_ms.extend(l);
        out.server_errors += s;
        out.other_errors += o;
    }
    out.seconds = start.elapsed().as_secs_f64();
    out.requests = out.latencies_ms.len();
    out.rss_end = rss_mb();
    let metrics = ureq::get(&format!("{}/metrics", server.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let kind = if image { "image" } else { "text" };
    let value = |name: String| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    out.mean_batch = value(format!("clip_batch_size_sum{{kind=\"{kind}\"}}"))
        / value(format!("clip_batch_size_count{{kind=\"{kind}\"}}"));
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
#[ignore = "load test: minutes of CPU, run by hand (see the module docs)"]
fn load_batching_on_vs_off() {
    let clients = env_or("LOAD_CLIENTS", 64usize);
    let seconds = env_or("LOAD_SECS", 10u64);
    println!("| input | batching | clients | s | requests | req/s | p50 ms | p99 ms | mean batch | 5xx | RSS MB start / half / end |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for image in [false, true] {
        for (label, batch) in [
            (
                "on (max 32, 5 ms)",
                BatchConfig {
                    max_batch: 32,
                    max_wait: Duration::from_millis(5),
                },
            ),
            (
                "off (max 1)",
                BatchConfig {
                    max_batch: 1,
                    max_wait: Duration::ZERO,
                },
            ),
        ] {
            let mut r = run(batch, clients, seconds, image);
            r.latencies_ms.sort_by(f64::total_cmp);
            println!(
                "| {} | {label} | {clients} | {:.1} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.0} / {:.0} / {:.0} |",
                if image { "1 image (200x133 BMP)" } else { "1 text" },
                r.seconds,
                r.requests,
                r.requests as f64 / r.seconds,
                percentile(&r.latencies_ms, 0.5),
                percentile(&r.latencies_ms, 0.99),
                r.mean_batch,
                r.server_errors,
                r.rss_start,
                r.rss_mid,
                r.rss_end,
            );
            assert_eq!(r.server_errors, 0, "5xx under load");
            assert_eq!(r.other_errors, 0, "transport errors or 4xx under load");
            assert!(
                r.rss_end - r.rss_mid < 64.0,
                "memory grew from {} to {} MB in the second half",
                r.rss_mid,
                r.rss_end
            );
        }
    }
}
