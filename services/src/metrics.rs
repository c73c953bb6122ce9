//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! A handful of series do not justify a metrics framework: request counts and latency
//! histograms by route template (never by raw path, which would explode cardinality), plus
//! gauges read from the live state when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Per route template: request counts by (method, status), and the latency histogram.
#[derive(Default)]
struct RouteStats {
    counts: Vec<(String, u16, u64)>,
    latency: Histogram,
}

/// Request metrics.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    /// Records one request. Allocates only the first time a route, method and status is seen:
    /// this runs on every request.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut g = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let route_stats = match g.get_mut(route) {
            Some(s) => s,
            None => g.entry(route.to_owned()).or_default(),
        };
        match route_stats.counts.iter_mut().find(|(m, s, _)| m == method && *s == status) {
            Some(c) => c.2 += 1,
            None => route_stats.counts.push((method.to_owned(), status, 1)),
        }
        let h = &mut route_stats.latency;
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Renders the request series, then `extra` gauges given as (name, help, labels, value).
    #[must_use]
    pub fn render(&self, extra: &[(&str, &str, String, f64)]) -> String {
        let g = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP safegrid_http_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE safegrid_http_requests_total counter\n");
        for (r, stats) in g.iter() {
            let mut counts = stats.counts.clone();
            counts.sort();
            for (m, s, n) in counts {
                let _ =
                    writeln!(out, "safegrid_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}");
            }
        }
        out.push_str("# HELP safegrid_http_request_duration_seconds HTTP request latency by route template.\n");
        out.push_str("# TYPE safegrid_http_request_duration_seconds histogram\n");
        for (r, stats) in g.iter() {
            let h = &stats.latency;
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "safegrid_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {c}");
            }
            let _ =
                writeln!(out, "safegrid_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "safegrid_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
            let _ = writeln!(out, "safegrid_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
        }
        let mut last = "";
        for (name, help, labels, v) in extra {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                last = name;
            }
            let _ = writeln!(out, "{name}{labels} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("GET", "/healthz", 200, Duration::from_micros(700));
        m.record("GET", "/healthz", 200, Duration::from_millis(30));
        let text = m.render(&[]);
        assert!(text.contains("safegrid_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"));
        assert!(text.contains("le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
    }
}
