//! The audit record of a request and the metrics of its end: [`AuditedBody`] counts the bytes
//! sent and, when the body is finished or abandoned, its [`AuditGuard`] writes exactly one
//! record.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body::{Body as HttpBody, Frame, SizeHint};
use s3s::Body;

use fsgate_store::audit::AuditWriter;
use fsgate_store::model::AuditEntry;

use super::front::Front;
use crate::context::RequestCtx;
use crate::identity::query::DecodedQuery;

/// The response body type: s3s's body, counted, with the audit record attached.
pub struct AuditedBody {
    pub(super) inner: Body,
    pub(super) sent: u64,
    pub(super) guard: Option<AuditGuard>,
    /// Marks the connection's request finished when the body is done.
    pub(super) in_flight: Option<crate::server::connection::InFlight>,
}

impl AuditedBody {
    pub(super) fn plain(inner: Body) -> Self {
        Self {
            inner,
            sent: 0,
            guard: None,
            in_flight: None,
        }
    }

    /// Carries the connection's in-flight mark until the body is done.
    #[must_use]
    pub fn in_flight(mut self, mark: crate::server::connection::InFlight) -> Self {
        self.in_flight = Some(mark);
        self
    }
}

impl HttpBody for AuditedBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &polled
            && let Some(d) = f.data_ref()
        {
            if self.sent == 0
                && !d.is_empty()
                && let Some(g) = &self.guard
            {
                // Time to first byte: from arrival to the first body bytes leaving.
                let seconds = g.rc.started.elapsed().as_secs_f64();
                crate::telemetry::requests::first_byte(&g.rc.fields().action, seconds);
            }
            self.sent += d.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            g.finish(self.sent);
        }
    }
}

/// Everything needed to write the audit record once the response is done.
pub(super) struct AuditGuard {
    pub(super) rc: Arc<RequestCtx>,
    pub(super) audit: Arc<AuditWriter>,
    pub(super) status: u16,
    pub(super) error_code: String,
    pub(super) received: Arc<AtomicU64>,
    pub(super) route: String,
    pub(super) claimed_key: String,
    pub(super) per_bucket: bool,
    pub(super) audit_on: bool,
    /// The request's span: open until the response body is done.
    pub(super) span: tracing::Span,
}

impl AuditGuard {
    fn finish(self, sent: u64) {
        let duration = self.rc.started.elapsed();
        let received = self.received.load(Ordering::Relaxed);
        let f = self.rc.fields();
        // The API label is the action, never the route: paths are unbounded label values.
        crate::telemetry::requests::finished(
            &f.action,
            self.status,
            duration.as_secs_f64(),
            received,
            sent,
        );
        if self.per_bucket && !f.bucket.is_empty() {
            let b = f.bucket.clone();
            let api = crate::telemetry::requests::label(&f.action).to_owned();
            metrics::counter!("fsgate_bucket_requests_total", "bucket" => b.clone(), "api" => api)
                .increment(1);
            metrics::counter!("fsgate_bucket_received_bytes_total", "bucket" => b.clone())
                .increment(received);
            metrics::counter!("fsgate_bucket_sent_bytes_total", "bucket" => b).increment(sent);
        }
        if !self.error_code.is_empty() {
            metrics::counter!("fsgate_errors_total", "code" => self.error_code.clone())
                .increment(1);
        }
        if !self.audit_on {
            return;
        }
        // The enqueue is a span of the request's trace only when traces are exported: entering
        // the request span again costs more than the enqueue itself.
        let _request = crate::telemetry::traces::exporting().then(|| self.span.enter());
        let _enqueue = tracing::info_span!("audit_enqueue").entered();
        let source_ip = self.rc.source_ip.to_string();
        let entry = AuditEntry {
            time_ns: self.rc.time_ns,
            request_id: &self.rc.request_id,
            principal: if f.principal.is_empty() {
                "-"
            } else {
                &f.principal
            },
            access_key: if f.access_key.is_empty() {
                &self.claimed_key
            } else {
                &f.access_key
            },
            auth: &self.rc.auth,
            source_ip: &source_ip,
            user_agent: &self.rc.user_agent,
            action: if f.action.is_empty() {
                &self.route
            } else {
                &f.action
            },
            bucket: &f.bucket,
            key: &f.key,
            decision: match f.allowed {
                Some(true) => "allow",
                Some(false) => "deny",
                None => "",
            },
            policies: &f.policies,
            status: self.status,
            error_code: &self.error_code,
            bytes_in: received,
            bytes_out: sent,
            duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            version_id: &f.version_id,
            trace_id: self.rc.trace_id.get().map_or("", String::as_str),
        };
        let queued = self.audit.try_send(&entry);
        drop(f);
        // Requests wait rather than lose records: when the queue is full, block this worker
        // (telling the runtime to move other tasks off it) until there is room.
        if let Err(full) = queued {
            let audit = self.audit.clone();
            let rec = full.0;
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::task::block_in_place(move || audit.send_encoded_blocking(rec));
            } else {
                audit.send_encoded_blocking(rec);
            }
        }
    }
}

/// How the request authenticated, for the audit: read as s3s reads it (`auth::SignedBy`).
pub(super) fn auth_method<B>(req: &Request<B>, query: &DecodedQuery) -> &'static str {
    let by = crate::identity::signing::SignedBy::of(req.method(), req.headers(), query);
    if by == crate::identity::signing::SignedBy::Unsigned
        && req
            .headers()
            .contains_key(&crate::identity::bearer::BEARER_HEADER)
    {
        return "bearer";
    }
    by.audit_name()
}

/// The access key a request claims (header or presigned query), for the audit record of a
/// request whose signature never verified.
pub(super) fn claimed_access_key<B>(req: &Request<B>, query: &DecodedQuery) -> String {
    let from_header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split_once("Credential="))
        .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_owned());
    let from_query = || {
        let cred = query
            .unique("X-Amz-Credential")
            .or_else(|| query.unique("AWSAccessKeyId"))?;
        Some(cred.split('/').next().unwrap_or("").to_owned())
    };
    let mut ak = from_header.or_else(from_query).unwrap_or_default();
    ak.truncate(128);
    ak
}

impl Front {
    /// Counts an authentication failure by reason, from the error sent.
    pub(super) fn count_auth_failure(&self, code: &str, claimed_key: &str) {
        let reason = match code {
            "SignatureDoesNotMatch" => "bad_signature",
            "InvalidAccessKeyId" => {
                let disabled = self
                    .ops
                    .as_ref()
                    .is_some_and(|o| o.iam.key_of_disabled_user(claimed_key));
                if disabled { "disabled" } else { "unknown_key" }
            }
            "ExpiredToken" | "RequestTimeTooSkewed" => "expired",
            _ => return,
        };
        metrics::counter!("fsgate_auth_failures_total", "reason" => reason).increment(1);
    }
}
