//! Prometheus metrics at `GET /metrics`: requests by API, operation and status, latency
//! histograms, bytes in and out. Hand-rolled text exposition: a few maps behind one mutex are
//! plenty for per-request counting and keep the dependency tree small.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    bytes_in: u64,
    bytes_out: u64,
}

/// Extra gauges/counters other parts of the server report at scrape time.
pub type Collector = Box<dyn Fn(&mut String) + Send + Sync>;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    collectors: Mutex<Vec<Collector>>,
}

/// Filled by the S3 access hook with the operation name, read by the router after the response.
#[derive(Clone, Default)]
pub struct OperationSlot(pub Arc<OnceLock<String>>);

impl Metrics {
    pub fn record(&self, api: &str, operation: &str, status: u16, elapsed: Duration, bytes_in: u64, bytes_out: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.requests.entry((api.to_owned(), operation.to_owned(), status)).or_default() += 1;
        let h = inner.latency.entry((api.to_owned(), operation.to_owned())).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
        inner.bytes_in += bytes_in;
        inner.bytes_out += bytes_out;
    }

    /// Requests so far per API: (api, total, 4xx, 5xx), for the console's Health page.
    pub fn totals(&self) -> Vec<(String, u64, u64, u64)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_api: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for ((api, _, status), n) in &inner.requests {
            let t = by_api.entry(api.as_str()).or_default();
            t.0 += n;
            match status {
                400..=499 => t.1 += n,
                500..=599 => t.2 += n,
                _ => {}
            }
        }
        by_api.into_iter().map(|(api, (all, client, server))| (api.to_owned(), all, client, server)).collect()
    }

    pub fn add_collector(&self, c: Collector) {
        self.collectors.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str("# HELP sealbox_requests_total Requests handled, by API, operation and HTTP status.\n");
            out.push_str("# TYPE sealbox_requests_total counter\n");
            for ((api, op, status), n) in &inner.requests {
                let _ =
                    writeln!(out, "sealbox_requests_total{{api=\"{api}\",operation=\"{op}\",status=\"{status}\"}} {n}");
            }
            out.push_str("# HELP sealbox_request_duration_seconds Time to the response head, by API and operation.\n");
            out.push_str("# TYPE sealbox_request_duration_seconds histogram\n");
            for ((api, op), h) in &inner.latency {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "sealbox_request_duration_seconds_bucket{{api=\"{api}\",operation=\"{op}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "sealbox_request_duration_seconds_bucket{{api=\"{api}\",operation=\"{op}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ =
                    writeln!(out, "sealbox_request_duration_seconds_sum{{api=\"{api}\",operation=\"{op}\"}} {}", h.sum);
                let _ = writeln!(
                    out,
                    "sealbox_request_duration_seconds_count{{api=\"{api}\",operation=\"{op}\"}} {}",
                    h.count
                );
            }
            out.push_str("# HELP sealbox_bytes_in_total Request body bytes announced by clients.\n# TYPE sealbox_bytes_in_total counter\n");
            let _ = writeln!(out, "sealbox_bytes_in_total {}", inner.bytes_in);
            out.push_str("# HELP sealbox_bytes_out_total Response body bytes announced to clients.\n# TYPE sealbox_bytes_out_total counter\n");
            let _ = writeln!(out, "sealbox_bytes_out_total {}", inner.bytes_out);
        }
        for c in self.collectors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            c(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.record("s3", "PutObject", 200, Duration::from_millis(3), 10, 0);
        m.record("s3", "PutObject", 200, Duration::from_millis(30), 5, 0);
        m.add_collector(Box::new(|out| out.push_str("sealbox_kms_calls_total 7\n")));
        let text = m.render();
        assert!(text.contains("sealbox_requests_total{api=\"s3\",operation=\"PutObject\",status=\"200\"} 2"));
        assert!(
            text.contains("sealbox_request_duration_seconds_bucket{api=\"s3\",operation=\"PutObject\",le=\"0.005\"} 1")
        );
        assert!(text.contains("sealbox_request_duration_seconds_count{api=\"s3\",operation=\"PutObject\"} 2"));
        assert!(text.contains("sealbox_bytes_in_total 15"));
        assert!(text.contains("sealbox_kms_calls_total 7"));
        m.record("s3", "GetObject", 404, Duration::from_millis(1), 0, 0);
        m.record("kms", "Decrypt", 500, Duration::from_millis(1), 0, 0);
        assert_eq!(m.totals(), vec![("kms".to_owned(), 1, 0, 1), ("s3".to_owned(), 3, 1, 0)]);
    }
}
