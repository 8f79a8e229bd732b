//! Prometheus text exposition, written by hand: a handful of counters and histograms do not
//! justify a metrics framework. Request counts and latencies are keyed by the matched route (not
//! the raw path, so `/v1/images/{id}` stays one series).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Batch size bucket bounds (inputs per forward pass).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Cumulative Prometheus buckets (`counts[i]` counts values `<= bounds[i]`), sum and count.
#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len()];
        }
        for (slot, bound) in self.counts.iter_mut().zip(bounds) {
            if value <= *bound {
                *slot += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (count, bound) in self.counts.iter().zip(bounds) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// A request method as a metrics label: the standard methods by name, anything else `"other"`
/// (a client can send any token as a method).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

/// Every series, behind the one lock of [`Metrics`].
#[derive(Default)]
struct Inner {
    /// (route, method, status) -> count. Every key comes from a fixed set (route patterns,
    /// [`method_label`], HTTP status codes), never from raw request text, so a client cannot
    /// grow the series.
    requests: BTreeMap<(String, &'static str, u16), u64>,
    /// Connections closed on accept because `max_connections` were open.
    refused_connections: u64,
    /// route -> latency histogram
    latency: BTreeMap<String, Histogram>,
    /// "text" | "image" -> batch size histogram
    batches: BTreeMap<&'static str, Histogram>,
}

/// The server's counters. Cheap to update from any thread.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Counts one finished request of `route` (the matched pattern) and records its latency.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.requests
            .entry((route.to_string(), method_label(method), status))
            .or_default() += 1;
        m.latency
            .entry(route.to_string())
            .or_default()
            .observe(LATENCY_BUCKETS, elapsed.as_secs_f64());
    }

    /// Counts a connection closed on accept because the connection limit was reached.
    pub fn observe_refused_connection(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refused_connections += 1;
    }

    /// Records the size of one forward pass of `kind` (`"text"` or `"image"`).
    pub fn observe_batch(&self, kind: &'static str, size: usize) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.batches
            .entry(kind)
            .or_default()
            .observe(BATCH_BUCKETS, size as f64);
    }

    /// The exposition text; the queue depth is read by the caller at scrape time.
    pub fn render(&self, queue_depth: usize) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str("# HELP clip_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE clip_requests_total counter\n");
        for ((route, method, status), n) in &m.requests {
            let _ = writeln!(out, "clip_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP clip_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE clip_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            h.write(
                &mut out,
                "clip_request_duration_seconds",
                &format!("route=\"{route}\""),
                LATENCY_BUCKETS,
            );
        }
        out.push_str("# HELP clip_batch_size Inputs per model forward pass, by modality.\n");
        out.push_str("# TYPE clip_batch_size histogram\n");
        for (kind, h) in &m.batches {
            h.write(
                &mut out,
                "clip_batch_size",
                &format!("kind=\"{kind}\""),
                BATCH_BUCKETS,
            );
        }
        out.push_str(
            "# HELP clip_refused_connections_total Connections closed at once: too many open.\n",
        );
        out.push_str("# TYPE clip_refused_connections_total counter\n");
        let _ = writeln!(
            out,
            "clip_refused_connections_total {}",
            m.refused_connections
        );
        out.push_str("# HELP clip_queue_depth Inputs waiting for the model.\n");
        out.push_str("# TYPE clip_queue_depth gauge\n");
        let _ = writeln!(out, "clip_queue_depth {queue_depth}");
        out
    }
}
