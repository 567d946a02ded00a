//! OpenTelemetry traces over OTLP/HTTP (protobuf), on when `FSGATE_OTLP_ENDPOINT` or the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector.
//!
//! Each request is a `request` span (its parent taken from the client's W3C `traceparent`
//! when present) with children for authentication, the policy decision, store reads and
//! writes, and the audit enqueue. Spans leave through the SDK's batch processor on its own
//! thread: a slow or dead collector costs dropped spans, never a slower or failed request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Records that the OTLP layer is installed (the binary does, once, at start).
pub fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// Whether spans leave for a collector: without one, requests skip the span fields and the
/// `traceparent` handling that only traces use.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The traces URL from the environment: `FSGATE_OTLP_ENDPOINT`, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, with `/v1/traces` added as OTLP/HTTP prescribes.
pub fn endpoint_from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let base = get("FSGATE_OTLP_ENDPOINT")
        .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .filter(|v| !v.trim().is_empty())?;
    let base = base.trim().trim_end_matches('/');
    Some(if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    })
}

/// A tracer provider exporting to `url` in batches.
pub fn provider(url: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(5))
        .build()?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("fsgate")
                .build(),
        )
        .build())
}

/// The `tracing` layer that turns spans into OpenTelemetry spans.
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("fsgate"))
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes the client's `traceparent` (if any) the parent of `span`, and returns the span's
/// trace id (32 hex digits), empty when tracing is off.
pub fn adopt_parent(span: &tracing::Span, headers: &http::HeaderMap) -> String {
    if headers.contains_key("traceparent") {
        let parent =
            opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
        let _ = span.set_parent(parent);
    }
    use opentelemetry::trace::TraceContextExt as _;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}
