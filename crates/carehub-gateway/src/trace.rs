//! Distributed tracing: one span per request through the gateway, a child of the caller's W3C
//! trace context (`traceparent`) when it sends one, and the parent of what a fronted server
//! does with the forwarded request.
//!
//! The spans are ordinary `tracing` spans with the target [`TARGET`]. The binary exports them
//! over OTLP when it is given a collector, and installs the W3C propagator then; otherwise no
//! subscriber layer takes them and the propagator does nothing, so they cost next to nothing.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `tracing` target of the request spans, for the exporter's filter.
pub const TARGET: &str = "carehub::trace";

struct Extract<'a>(&'a HeaderMap);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct Inject<'a>(&'a mut HeaderMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The span of one request to a product: named after the method and the product's base (not
/// the full path, which would make every resource id a span name of its own).
pub(crate) fn request_span(
    environment: &str,
    api: &str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %format!("{method} /{environment}/{api}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        url.path = %path,
        carehub.environment = %environment,
        carehub.api = %api,
        carehub.app = Empty,
        carehub.request_id = Empty,
        carehub.correlation_id = Empty,
        http.response.status_code = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Extract(headers))
    });
    // Without a valid `traceparent` the span starts a trace of its own; nothing to report.
    let _ = span.set_parent(parent);
    span
}

/// Records the outcome on the request's span.
pub(crate) fn record_outcome(span: &Span, status: u16) {
    // As a signed integer: the exporter writes unsigned values as strings.
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// Records who called, once the gateway knows.
pub(crate) fn record_caller(
    span: &Span,
    app: Option<&str>,
    request_id: &str,
    correlation_id: Option<&str>,
) {
    if let Some(app) = app {
        span.record("carehub.app", app);
    }
    span.record("carehub.request_id", request_id);
    if let Some(correlation_id) = correlation_id {
        span.record("carehub.correlation_id", correlation_id);
    }
}

/// Puts the current span's trace context (`traceparent`, `tracestate`) on a request going out,
/// in place of whatever the caller sent, so the next server's work joins this trace.
pub(crate) fn inject_current(headers: &mut HeaderMap) {
    let context = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Inject(headers));
    });
}
