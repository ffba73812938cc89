//! Prometheus metrics of the gateway, rendered in the text exposition format at `/metrics`.
//!
//! A small registry of our own rather than the `metrics` facade: the facade records into one
//! process-wide recorder, while each gateway router (and each test server in one test process)
//! needs its own counts.
//!
//! Every request is counted, so its figures are kept per product ([`ProductMetrics`]) where
//! recording one allocates nothing and takes no lock that another product's requests share:
//! atomics under a read lock, which is taken for writing only the first time an application
//! or status shows up. The rarer counters (throttling, auth failures, tokens) share one map.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

type Labels = Vec<(&'static str, String)>;

/// Request counts by status, of one application.
type StatusCounts = Vec<(u16, AtomicU64)>;

/// Cumulative bucket counts, as the exposition format wants them.
#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<(&'static str, Labels), u64>,
}

/// Counters and histograms of one gateway.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    products: Mutex<Vec<Arc<ProductMetrics>>>,
}

/// The request counts and latencies of one product (one API in one environment).
#[derive(Debug)]
pub struct ProductMetrics {
    environment: String,
    api: String,
    /// Requests by application id (empty without one), then by status.
    requests: RwLock<HashMap<Box<str>, StatusCounts>>,
    /// Latencies: how many fell in each bucket alone (the first whose bound they are within;
    /// the last slot for those over every bound), their count and their sum in nanoseconds.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    total: AtomicU64,
    sum_nanos: AtomicU64,
}

const HELP: [(&str, &str); 5] = [
    (
        "carehub_requests_total",
        "Requests through the gateway, by environment, API, application and status.",
    ),
    (
        "carehub_throttled_total",
        "Requests refused by a quota or spike arrest, by environment, API, application and scope (app or proxy).",
    ),
    (
        "carehub_auth_failures_total",
        "Requests refused for missing or invalid credentials, by environment and API.",
    ),
    (
        "carehub_tokens_issued_total",
        "Access tokens issued, by environment.",
    ),
    (
        "carehub_request_duration_seconds",
        "Time from the gateway receiving a request to the response, by environment and API.",
    ),
];

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(labels: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

impl ProductMetrics {
    fn new(environment: &str, api: &str) -> ProductMetrics {
        ProductMetrics {
            environment: environment.to_owned(),
            api: api.to_owned(),
            requests: RwLock::default(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            total: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one request of application `app` (if any) answered with `status` after
    /// `elapsed`.
    pub fn request(&self, app: Option<&str>, status: u16, elapsed: Duration) {
        let app = app.unwrap_or("");
        let counted = {
            let requests = self.requests.read().unwrap_or_else(|p| p.into_inner());
            requests
                .get(app)
                .and_then(|statuses| statuses.iter().find(|(s, _)| *s == status))
                .map(|(_, count)| count.fetch_add(1, Ordering::Relaxed))
                .is_some()
        };
        if !counted {
            let mut requests = self.requests.write().unwrap_or_else(|p| p.into_inner());
            let statuses = requests.entry(app.into()).or_default();
            match statuses.iter().find(|(s, _)| *s == status) {
                Some((_, count)) => {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                None => statuses.push((status, AtomicU64::new(1))),
            }
        }
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn labels(&self) -> Labels {
        vec![
            ("environment", self.environment.clone()),
            ("api", self.api.clone()),
        ]
    }

    fn histogram(&self) -> Histogram {
        let mut histogram = Histogram::default();
        let mut below = 0;
        for (count, bucket) in histogram.counts.iter_mut().zip(&self.buckets) {
            below += bucket.load(Ordering::Relaxed);
            *count = below;
        }
        histogram.total = self.total.load(Ordering::Relaxed);
        histogram.sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        histogram
    }
}

impl Metrics {
    /// The figures of one product, made on first use; record its requests there.
    pub fn product(&self, environment: &str, api: &str) -> Arc<ProductMetrics> {
        let mut products = self.products.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = products
            .iter()
            .find(|p| p.environment == environment && p.api == api)
        {
            return found.clone();
        }
        let made = Arc::new(ProductMetrics::new(environment, api));
        products.push(made.clone());
        made
    }

    /// Adds one to a counter.
    pub fn increment(&self, name: &'static str, labels: Labels) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.counters.entry((name, labels)).or_insert(0) += 1;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut counters = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counters
            .clone();
        let mut histograms: BTreeMap<Labels, Histogram> = BTreeMap::new();
        for product in self
            .products
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let requests = product.requests.read().unwrap_or_else(|p| p.into_inner());
            for (app, statuses) in requests.iter() {
                for (status, count) in statuses {
                    let mut labels = product.labels();
                    labels.push(("app", app.to_string()));
                    labels.push(("status", status.to_string()));
                    *counters
                        .entry(("carehub_requests_total", labels))
                        .or_insert(0) += count.load(Ordering::Relaxed);
                }
            }
            if product.total.load(Ordering::Relaxed) > 0 {
                histograms.insert(product.labels(), product.histogram());
            }
        }
        let mut out = String::new();
        for (name, help) in HELP {
            let kind = if name.ends_with("_seconds") {
                "histogram"
            } else {
                "counter"
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            if kind == "counter" {
                for ((counter, labels), value) in &counters {
                    if *counter == name {
                        let _ = writeln!(out, "{name}{} {value}", render_labels(labels, None));
                    }
                }
                continue;
            }
            for (labels, histogram) in &histograms {
                for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                    let le = Some(("le", bound.to_string()));
                    let _ = writeln!(out, "{name}_bucket{} {count}", render_labels(labels, le));
                }
                let inf = Some(("le", "+Inf".to_owned()));
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    render_labels(labels, inf),
                    histogram.total
                );
                let _ = writeln!(
                    out,
                    "{name}_sum{} {}",
                    render_labels(labels, None),
                    histogram.sum
                );
                let _ = writeln!(
                    out,
                    "{name}_count{} {}",
                    render_labels(labels, None),
                    histogram.total
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_exposition_format() {
        let metrics = Metrics::default();
        let product = metrics.product("int", "fhir-r4");
        product.request(Some("app-1"), 200, Duration::from_millis(3));
        product.request(Some("app-1"), 200, Duration::from_millis(30));
        product.request(None, 401, Duration::from_secs(9));
        assert!(Arc::ptr_eq(&product, &metrics.product("int", "fhir-r4")));
        metrics.increment(
            "carehub_auth_failures_total",
            vec![
                ("environment", "int".to_owned()),
                ("api", "fhir-r4".to_owned()),
            ],
        );
        let text = metrics.render();
        for line in [
            "carehub_requests_total{environment=\"int\",api=\"fhir-r4\",app=\"app-1\",status=\"200\"} 2",
            "carehub_requests_total{environment=\"int\",api=\"fhir-r4\",app=\"\",status=\"401\"} 1",
            "carehub_auth_failures_total{environment=\"int\",api=\"fhir-r4\"} 1",
            "carehub_request_duration_seconds_bucket{environment=\"int\",api=\"fhir-r4\",le=\"0.0025\"} 0",
            "carehub_request_duration_seconds_bucket{environment=\"int\",api=\"fhir-r4\",le=\"0.005\"} 1",
            "carehub_request_duration_seconds_bucket{environment=\"int\",api=\"fhir-r4\",le=\"0.05\"} 2",
            "carehub_request_duration_seconds_bucket{environment=\"int\",api=\"fhir-r4\",le=\"5\"} 2",
            "carehub_request_duration_seconds_bucket{environment=\"int\",api=\"fhir-r4\",le=\"+Inf\"} 3",
            "carehub_request_duration_seconds_sum{environment=\"int\",api=\"fhir-r4\"} 9.033",
            "carehub_request_duration_seconds_count{environment=\"int\",api=\"fhir-r4\"} 3",
            "# TYPE carehub_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn requests_counted_from_many_threads_are_all_counted() {
        let metrics = Metrics::default();
        let product = metrics.product("int", "fhir-r4");
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let product = &product;
                scope.spawn(move || {
                    for n in 0..1000 {
                        let app = format!("app-{}", (thread + n) % 3);
                        product.request(Some(&app), 200 + (n % 2) as u16, Duration::ZERO);
                    }
                });
            }
        });
        let text = metrics.render();
        let total: u64 = text
            .lines()
            .filter(|l| l.starts_with("carehub_requests_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, 8000, "{text}");
        assert!(text.contains(
            "carehub_request_duration_seconds_count{environment=\"int\",api=\"fhir-r4\"} 8000"
        ));
    }
}
