//! Health and metrics: `/health/live`, `/health/ready` (and MinIO's paths), `/metrics`, and
//! the answer while the store is still opening.

use http::{HeaderValue, Request, Response, StatusCode};
use s3s::Body;

use super::audit::AuditedBody;
use super::front::Front;
use crate::identity::query::DecodedQuery;

/// MinIO's metrics path: fsgate's metrics with MinIO's names added.
pub const MINIO_METRICS: &str = "/minio/v2/metrics/cluster";

/// Why the server is not ready, as `/health/ready` reports it.
#[derive(Debug, thiserror::Error)]
enum NotReady {
    #[error("metadata store unavailable: {0}")]
    Metadata(fsgate_store::StoreError),
    #[error("data directory not writable: {0}")]
    NotWritable(fsgate_store::StoreError),
    #[error("free space unknown: {0}")]
    FreeSpaceUnknown(fsgate_store::StoreError),
    #[error("free space {free} bytes is under the reserve of {min_free} bytes")]
    LowSpace { free: u64, min_free: u64 },
    #[error("readiness probe failed: {0}")]
    Probe(tokio::task::JoinError),
}

impl Front {
    /// `/metrics`. The bearer token (when one is set) answers here with everything; a SigV4
    /// signature goes on to the admin route (`None`), which decides `admin:ScrapeMetrics` and
    /// answers with everything. Without either: 401 when a token is set, else the public view,
    /// which leaves out what reveals tenants' data (`telemetry::public_view`).
    pub(super) async fn metrics_response<B>(
        &self,
        req: &Request<B>,
    ) -> Option<Response<AuditedBody>> {
        let auth = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let signed = auth.is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"))
            || DecodedQuery::of(req.uri()).has("X-Amz-Signature");
        let token = self.ops.as_ref().and_then(|o| o.metrics_token.as_deref());
        let given = auth.and_then(|v| v.strip_prefix("Bearer "));
        let full = match (token, given) {
            (Some(t), Some(g))
                if crate::identity::keys::constant_time_eq(g.as_bytes(), t.as_bytes()) =>
            {
                true
            }
            _ if signed => return None,
            (Some(_), _) => {
                let mut r = text(
                    StatusCode::UNAUTHORIZED,
                    "metrics need the bearer token or an admin's signature\n",
                    "text/plain",
                );
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
                return Some(r);
            }
            (None, _) => false,
        };
        if let Some(ops) = &self.ops {
            ops.telemetry.refresh().await;
        }
        let rendered = self.metrics.render();
        let body = if full {
            rendered
        } else {
            crate::telemetry::public_view(&rendered)
        };
        let body = if req.uri().path() == MINIO_METRICS {
            crate::telemetry::minio_view(&body)
        } else {
            body
        };
        Some(text(StatusCode::OK, body, "text/plain; version=0.0.4"))
    }

    /// Ready while the metadata store answers, the data directory takes writes, and free
    /// space is above the reserve; otherwise 503 with the reason as JSON.
    pub(super) async fn ready(&self) -> Response<AuditedBody> {
        let store = self.store.clone();
        let min_free = self.ops.as_ref().map_or(0, |o| o.min_free_bytes);
        let verdict = tokio::task::spawn_blocking(move || -> Result<(), NotReady> {
            store.list_buckets().map_err(NotReady::Metadata)?;
            store.probe_writable().map_err(NotReady::NotWritable)?;
            let free = store.free_space().map_err(NotReady::FreeSpaceUnknown)?;
            if free < min_free {
                return Err(NotReady::LowSpace { free, min_free });
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(NotReady::Probe(e)));
        match verdict {
            Ok(()) => text(StatusCode::OK, "", "text/plain"),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"ready": false, "reason": reason.to_string()}).to_string(),
                "application/json",
            ),
        }
    }
}

/// The answer while the store is still opening: live, not ready (with the reason), and 503
/// for anything else.
#[must_use]
pub fn starting_response<B>(req: &Request<B>, reason: &str) -> Response<AuditedBody> {
    match req.uri().path() {
        "/health/live" | "/minio/health/live" => text(StatusCode::OK, "", "text/plain"),
        "/health/ready" | "/minio/health/ready" | "/minio/health/cluster" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"ready": false, "reason": reason}).to_string(),
            "application/json",
        ),
        _ => {
            let mut r = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code><Message>The server is starting; please retry.</Message></Error>",
                "application/xml",
            );
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

pub(super) fn text(
    status: StatusCode,
    body: impl Into<String>,
    content_type: &'static str,
) -> Response<AuditedBody> {
    let mut r = Response::new(AuditedBody::plain(Body::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}
