//! Prometheus metrics of the gateway, rendered in the text exposition format at `/metrics`.
//!
//! A small registry of our own rather than the `metrics` facade: the facade records into one
//! process-wide recorder, while each gateway router (and each test server in one test process)
//! needs its own counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<Labels, Histogram>,
}

/// Counters and histograms of one gateway.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
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

impl Metrics {
    /// Adds one to a counter.
    pub fn increment(&self, name: &'static str, labels: Labels) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.counters.entry((name, labels)).or_insert(0) += 1;
    }

    /// Records a request's latency.
    pub fn observe(&self, labels: Labels, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let histogram = inner.histograms.entry(labels).or_default();
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.total += 1;
        histogram.sum += seconds;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, help) in HELP {
            let kind = if name.ends_with("_seconds") {
                "histogram"
            } else {
                "counter"
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            if kind == "counter" {
                for ((counter, labels), value) in &inner.counters {
                    if *counter == name {
                        let _ = writeln!(out, "{name}{} {value}", render_labels(labels, None));
                    }
                }
                continue;
            }
            for (labels, histogram) in &inner.histograms {
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
        let labels = vec![
            ("environment", "int".to_owned()),
            ("api", "fhir-r4".to_owned()),
        ];
        metrics.increment("carehub_requests_total", labels.clone());
        metrics.increment("carehub_requests_total", labels.clone());
        metrics.observe(labels.clone(), Duration::from_millis(3));
        let text = metrics.render();
        assert!(
            text.contains("carehub_requests_total{environment=\"int\",api=\"fhir-r4\"} 2"),
            "{text}"
        );
        assert!(text.contains("carehub_request_duration_seconds_bucket{environment=\"int\",api=\"fhir-r4\",le=\"0.0025\"} 0"));
        assert!(text.contains("carehub_request_duration_seconds_bucket{environment=\"int\",api=\"fhir-r4\",le=\"0.005\"} 1"));
        assert!(text.contains(
            "carehub_request_duration_seconds_count{environment=\"int\",api=\"fhir-r4\"} 1"
        ));
        assert!(text.contains("# TYPE carehub_request_duration_seconds histogram"));
    }
}
