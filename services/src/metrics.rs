//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! A handful of series do not justify a metrics framework: request counts and latency
//! histograms by route template (never by raw path, which would explode cardinality), plus
//! [`Sample`]s read from the live state when scraped, each typed as Prometheus defines it (a
//! count since start-up is a `counter` named `_total`; a level that goes up and down is a
//! `gauge`), and the process and build-info series every exporter is expected to carry.

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

/// What a sample measures, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (since start-up); its name ends in `_total`.
    Counter,
    /// A level read when scraped.
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// One value of one series: samples of the same name are given one after another.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The metric's name.
    pub name: &'static str,
    /// Its help text (the first sample of a name's is used).
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// `{label="value",…}` or empty.
    pub labels: String,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A gauge.
    #[must_use]
    pub fn gauge(name: &'static str, help: &'static str, labels: String, value: f64) -> Self {
        Self { name, help, kind: Kind::Gauge, labels, value }
    }

    /// A counter; its name must end in `_total`.
    #[must_use]
    pub fn counter(name: &'static str, help: &'static str, labels: String, value: f64) -> Self {
        debug_assert!(name.ends_with("_total"), "counter {name} must end in _total");
        Self { name, help, kind: Kind::Counter, labels, value }
    }
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

    /// Renders the request series, then the `extra` samples, then the process and build series.
    #[must_use]
    pub fn render(&self, extra: &[Sample]) -> String {
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
        drop(g);
        // One HELP and TYPE per name, its samples together (the exposition format requires it),
        // names in the order they first appear.
        let all: Vec<Sample> = extra.iter().cloned().chain(process_samples()).collect();
        let mut names: Vec<&str> = Vec::new();
        for s in &all {
            if !names.contains(&s.name) {
                names.push(s.name);
            }
        }
        for name in names {
            let mut first = true;
            for s in all.iter().filter(|s| s.name == name) {
                if first {
                    let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", s.name, s.help, s.name, s.kind.name());
                    first = false;
                }
                let _ = writeln!(out, "{}{} {}", s.name, s.labels, s.value);
            }
        }
        out
    }
}

/// The process series the Prometheus client libraries export (names as theirs, so existing
/// dashboards work), read from `/proc/self` where there is one, and `safegrid_build_info`.
fn process_samples() -> Vec<Sample> {
    let mut out = vec![Sample::gauge(
        "safegrid_build_info",
        "The running build: its version and target; the value is always 1.",
        format!(
            "{{version=\"{}\",target_os=\"{}\",target_arch=\"{}\",profile=\"{}\"}}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            if cfg!(debug_assertions) { "debug" } else { "release" },
        ),
        1.0,
    )];
    if let Some(p) = proc_self() {
        out.push(Sample::counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            String::new(),
            p.cpu_seconds,
        ));
        out.push(Sample::gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            String::new(),
            p.resident_bytes,
        ));
        out.push(Sample::gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            String::new(),
            p.virtual_bytes,
        ));
        out.push(Sample::gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            String::new(),
            p.start_time_s,
        ));
        if let Some(n) = p.open_fds {
            out.push(Sample::gauge("process_open_fds", "Number of open file descriptors.", String::new(), n));
        }
        if let Some(n) = p.max_fds {
            out.push(Sample::gauge("process_max_fds", "Maximum number of open file descriptors.", String::new(), n));
        }
        out.push(Sample::gauge("process_threads", "Number of OS threads in the process.", String::new(), p.threads));
    }
    out
}

/// What `/proc/self` says of this process.
struct ProcSelf {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_s: f64,
    threads: f64,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

/// Reads `/proc/self/stat` (fields by proc(5)); `None` off Linux.
fn proc_self() -> Option<ProcSelf> {
    #[allow(clippy::cast_precision_loss)]
    let (ticks, page) = (rustix::param::clock_ticks_per_second() as f64, rustix::param::page_size() as f64);
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // proc(5) numbers fields from 1 with pid and comm first: field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
        l.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
    });
    Some(ProcSelf {
        cpu_seconds: (num(14)? + num(15)?) / ticks,
        threads: num(20)?,
        start_time_s: boot_time + num(22)? / ticks,
        virtual_bytes: num(23)?,
        resident_bytes: num(24)? * page,
        open_fds,
        max_fds,
    })
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

    /// Each name has one TYPE line, counters end in `_total`, and the process series are there.
    #[test]
    fn samples_are_typed_once_per_name() {
        let m = Metrics::default();
        let text = m.render(&[
            Sample::counter("a_total", "A.", "{x=\"1\"}".into(), 1.0),
            Sample::counter("a_total", "A.", "{x=\"2\"}".into(), 2.0),
            Sample::gauge("b", "B.", String::new(), 3.0),
        ]);
        assert_eq!(text.matches("# TYPE a_total counter").count(), 1, "{text}");
        assert!(text.contains("# TYPE b gauge\nb 3\n"), "{text}");
        // Interleaved names are grouped: one TYPE line each.
        let text = m.render(&[
            Sample::gauge("c", "C.", "{x=\"1\"}".into(), 1.0),
            Sample::gauge("d", "D.", String::new(), 1.0),
            Sample::gauge("c", "C.", "{x=\"2\"}".into(), 2.0),
        ]);
        assert_eq!(text.matches("# TYPE c gauge").count(), 1, "{text}");
        assert!(text.contains("c{x=\"1\"} 1\nc{x=\"2\"} 2\n"), "{text}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("safegrid_build_info{version=\""), "{text}");
    }
}
