//! The front layer: every HTTP request passes here first. It answers health and metrics,
//! gives every other request its id and `RequestCtx`, enforces the limits s3s leaves open
//! (presigned expiry cap, DeleteObjects' Content-MD5), counts bytes, and — when the response
//! body is finished or abandoned — writes exactly one audit record and updates metrics.

use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use tracing::Instrument as _;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use s3s::service::S3Service;
use s3s::{Body, S3Error, S3ErrorCode};

use fsgate_store::audit::{AuditWriter, request_id};
use fsgate_store::model::AuditEntry;
use fsgate_store::{Store, now_ns};

use crate::context::{BodyRefused, RequestCtx};
use crate::identity::query::DecodedQuery;
use crate::s3::cors::{self, CorsRule};
use crate::server::host::DomainHost;
use s3s::host::S3Host as _;

const X_AMZ_ID_2: http::HeaderName = http::HeaderName::from_static("x-amz-id-2");
const X_AMZ_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amz-request-id");

/// Largest DeleteObjects body accepted (1000 keys of 1024 bytes plus XML).
const MAX_DELETE_BODY: usize = 2 << 20;

/// Operational settings of the front layer.
#[derive(Debug)]
pub struct Operations {
    /// Scrape-time gauges.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Bearer token `/metrics` requires.
    pub metrics_token: Option<String>,
    /// Free-space reserve for readiness.
    pub min_free_bytes: u64,
    /// IAM, to tell a disabled user's key from an unknown one in auth-failure metrics.
    pub iam: Arc<crate::identity::iam::Iam>,
    /// Also count requests and bytes per bucket (`--metrics-per-bucket`: bucket names become
    /// label values, so cardinality grows with the number of buckets).
    pub per_bucket: bool,
    /// Write audit records (`--audit off` exists only to measure what auditing costs).
    pub audit: bool,
}

/// Shared state of the front layer.
pub struct Front {
    /// The s3s service (S3 operations and the admin route).
    pub s3: S3Service,
    /// The store, for readiness.
    pub store: Arc<Store>,
    /// The audit writer.
    pub audit: Arc<AuditWriter>,
    /// Prometheus renderer.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Whether the listener serves TLS.
    pub secure: bool,
    /// The virtual-host domain, to find the bucket of a CORS request.
    host: Option<DomainHost>,
    /// Metrics refresh, `/metrics` access and readiness settings.
    ops: Option<Operations>,
    seq: AtomicU32,
    /// Bytes of undecided request bodies all requests may hold at once.
    pre_decision_budget: Arc<tokio::sync::Semaphore>,
    /// Longest a request body may send nothing.
    body_timeout: std::time::Duration,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front").finish_non_exhaustive()
    }
}

/// The response body type: s3s's body, counted, with the audit record attached.
pub struct AuditedBody {
    inner: Body,
    sent: u64,
    guard: Option<AuditGuard>,
    /// Marks the connection's request finished when the body is done.
    in_flight: Option<crate::server::connection::InFlight>,
}

impl AuditedBody {
    fn plain(inner: Body) -> Self {
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
struct AuditGuard {
    rc: Arc<RequestCtx>,
    audit: Arc<AuditWriter>,
    status: u16,
    error_code: String,
    received: Arc<AtomicU64>,
    route: String,
    claimed_key: String,
    per_bucket: bool,
    audit_on: bool,
    /// The request's span: open until the response body is done.
    span: tracing::Span,
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

/// The request body as s3s reads it: counted; until the request is decided, every byte held
/// against the shared pre-decision budget (so undecided bodies cost bounded memory however
/// many clients send them); failed when it sends nothing for `idle` (slow-body clients).
struct CountingBody {
    inner: Incoming,
    counter: Arc<AtomicU64>,
    /// Set once the body has been read to its end.
    done: Arc<std::sync::atomic::AtomicBool>,
    rc: Arc<RequestCtx>,
    budget: Arc<tokio::sync::Semaphore>,
    idle: std::time::Duration,
    /// Runs while the body sends nothing; reset by every frame.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl HttpBody for CountingBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.counter.fetch_add(d.len() as u64, Ordering::Relaxed);
                    if !self.rc.is_decided() && !self.rc.hold_undecided(&self.budget, d.len()) {
                        self.rc.refuse_body(BodyRefused::Memory);
                        return Poll::Ready(Some(Err(Box::new(BodyRefused::Memory))));
                    }
                }
                let deadline = tokio::time::Instant::now() + self.idle;
                if let Some(t) = self.stall.as_mut() {
                    t.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(None) => {
                self.done.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Pending => {
                let idle = self.idle;
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if stall.as_mut().poll(cx).is_ready() {
                    self.rc.refuse_body(BodyRefused::Stalled);
                    return Poll::Ready(Some(Err(Box::new(BodyRefused::Stalled))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request whose body fsgate stopped reading.
fn body_refused_response(why: BodyRefused) -> Response<Body> {
    match why {
        BodyRefused::Memory => {
            let mut r = s3_error_response(S3Error::with_message(
                S3ErrorCode::SlowDown,
                "Please reduce your request rate.",
            ));
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        BodyRefused::Stalled => s3_error_response(S3Error::with_message(
            S3ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        )),
    }
}

/// The OpenTelemetry name of a request's span (static: no allocation per request).
fn span_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "fsgate GET",
        Method::PUT => "fsgate PUT",
        Method::POST => "fsgate POST",
        Method::HEAD => "fsgate HEAD",
        Method::DELETE => "fsgate DELETE",
        Method::OPTIONS => "fsgate OPTIONS",
        _ => "fsgate request",
    }
}

/// The answer while the store is still opening: live, not ready (with the reason), and 503
/// for anything else.
#[must_use]
pub fn starting_response<B>(req: &Request<B>, reason: &str) -> Response<AuditedBody> {
    match req.uri().path() {
        "/health/live" | "/minio/health/live" => text(StatusCode::OK, "", "text/plain"),
        "/health/ready" | "/minio/health/ready" => text(
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

fn text(
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

/// How the request authenticated, for the audit: read as s3s reads it (`auth::SignedBy`).
fn auth_method<B>(req: &Request<B>, query: &DecodedQuery) -> &'static str {
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

/// An error response with its code for the audit, completed where s3s left it without a
/// message (see [`crate::error::complete_s3s_error`]).
fn complete_error(resp: Response<Body>) -> (String, Response<Body>) {
    if resp.status().as_u16() < 300 {
        return (String::new(), resp);
    }
    let Some(bytes) = resp.body().bytes() else {
        return (String::new(), resp);
    };
    match crate::error::complete_s3s_error(resp.status(), &bytes) {
        (code, None) => (code, resp),
        (code, Some(e)) => {
            let (mut parts, _) = resp.into_parts();
            let fresh = s3_error_response(e);
            parts.status = fresh.status();
            for name in [http::header::CONTENT_TYPE, http::header::CONTENT_LENGTH] {
                match fresh.headers().get(&name) {
                    Some(v) => parts.headers.insert(name, v.clone()),
                    None => parts.headers.remove(name),
                };
            }
            (code, Response::from_parts(parts, fresh.into_body()))
        }
    }
}

fn s3_error_response(e: S3Error) -> Response<Body> {
    match e.to_http_response() {
        Ok(r) => r.map(|b| b),
        Err(_) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// The access key a request claims (header or presigned query), for the audit record of a
/// request whose signature never verified.
fn claimed_access_key<B>(req: &Request<B>, query: &DecodedQuery) -> String {
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
    /// Builds the front layer.
    pub fn new(
        s3: S3Service,
        store: Arc<Store>,
        audit: Arc<AuditWriter>,
        metrics: metrics_exporter_prometheus::PrometheusHandle,
    ) -> Self {
        Self {
            s3,
            store,
            audit,
            metrics,
            secure: false,
            host: None,
            ops: None,
            seq: AtomicU32::new(0),
            pre_decision_budget: Arc::new(tokio::sync::Semaphore::new(
                crate::server::connection::Limits::default().pre_decision_memory,
            )),
            body_timeout: crate::server::connection::Limits::default().body_timeout,
        }
    }

    /// What a request may cost before it is decided.
    #[must_use]
    pub fn with_limits(mut self, limits: &crate::server::connection::Limits) -> Self {
        self.pre_decision_budget = Arc::new(tokio::sync::Semaphore::new(
            limits
                .pre_decision_memory
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        ));
        self.body_timeout = limits.body_timeout;
        self
    }

    /// Scrape-time metrics, the `/metrics` token, readiness thresholds.
    #[must_use]
    pub fn with_operations(mut self, ops: Operations) -> Self {
        self.ops = Some(ops);
        self
    }

    /// `/metrics`. The bearer token (when one is set) answers here with everything; a SigV4
    /// signature goes on to the admin route (`None`), which decides `admin:ScrapeMetrics` and
    /// answers with everything. Without either: 401 when a token is set, else the public view,
    /// which leaves out what reveals tenants' data (`telemetry::public_view`).
    async fn metrics_response<B>(&self, req: &Request<B>) -> Option<Response<AuditedBody>> {
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
        Some(text(StatusCode::OK, body, "text/plain; version=0.0.4"))
    }

    /// Counts an authentication failure by reason, from the error sent.
    fn count_auth_failure(&self, code: &str, claimed_key: &str) {
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

    /// Finds buckets in `bucket.domain` hosts too (as the S3 service does).
    #[must_use]
    pub fn with_domain(mut self, host: Option<DomainHost>) -> Self {
        self.host = host;
        self
    }

    /// Marks requests as arriving over TLS (Cedar's `context.secure_transport`).
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The bucket a request addresses (virtual-hosted or path-style).
    fn bucket_of<B>(&self, req: &Request<B>) -> Option<String> {
        if let Some(h) = &self.host
            && let Some(host) = req
                .headers()
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
            && let Ok(v) = h.parse_host_header(host)
            && let Some(b) = v.bucket()
        {
            return Some(b.to_owned());
        }
        req.uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
    }

    /// The bucket's CORS rules, if it has any.
    async fn cors_rules(&self, bucket: &str) -> Option<Vec<CorsRule>> {
        let store = self.store.clone();
        let b = bucket.to_owned();
        let doc = tokio::task::spawn_blocking(move || store.bucket_config(&b, crate::s3::CORS_DOC))
            .await
            .ok()?
            .ok()??;
        serde_json::from_slice(&doc).ok()
    }

    /// Answers a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`):
    /// unauthenticated, as browsers send it without credentials.
    async fn preflight<B>(&self, req: &Request<B>) -> Response<Body> {
        let forbidden = |msg: &'static str| {
            let mut e = S3Error::with_message(S3ErrorCode::Custom("AccessForbidden".into()), msg);
            e.set_status_code(StatusCode::FORBIDDEN);
            s3_error_response(e)
        };
        let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        let (Some(origin), Some(method)) =
            (header("origin"), header("access-control-request-method"))
        else {
            return s3_error_response(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Insufficient information. Origin request header needed.",
            ));
        };
        let Some(bucket) = self.bucket_of(req) else {
            return forbidden("CORSResponse: CORS is not enabled for this bucket.");
        };
        let Some(rules) = self.cors_rules(&bucket).await else {
            return forbidden("CORSResponse: CORS is not enabled for this bucket.");
        };
        let asked = cors::requested_headers(req.headers());
        let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
        match cors::find(&rules, origin, method, &asked) {
            Some(rule) => {
                let mut r = Response::new(Body::empty());
                cors::apply(r.headers_mut(), rule, origin, &asked, true);
                r
            }
            None => forbidden(
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            ),
        }
    }

    /// Handles one request.
    pub async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        remote: SocketAddr,
    ) -> Result<Response<AuditedBody>, Infallible> {
        let admin_request = crate::admin::AdminApi::matches(req.uri());
        crate::identity::bearer::move_bearer_token(&mut req, admin_request);
        let path = req.uri().path();
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            match path {
                "/health/live" | "/minio/health/live" => {
                    return Ok(text(StatusCode::OK, "", "text/plain"));
                }
                "/health/ready" | "/minio/health/ready" => return Ok(self.ready().await),
                "/metrics" | "/minio/v2/metrics/cluster" => {
                    if let Some(r) = self.metrics_response(&req).await {
                        return Ok(r);
                    }
                }
                _ => {}
            }
        }
        Ok(self.s3_request(req, remote).await)
    }

    /// Ready while the metadata store answers, the data directory takes writes, and free
    /// space is above the reserve; otherwise 503 with the reason as JSON.
    async fn ready(&self) -> Response<AuditedBody> {
        let store = self.store.clone();
        let min_free = self.ops.as_ref().map_or(0, |o| o.min_free_bytes);
        let verdict = tokio::task::spawn_blocking(move || -> Result<(), String> {
            store
                .list_buckets()
                .map_err(|e| format!("metadata store unavailable: {e}"))?;
            store
                .probe_writable()
                .map_err(|e| format!("data directory not writable: {e}"))?;
            let free = store
                .free_space()
                .map_err(|e| format!("free space unknown: {e}"))?;
            if free < min_free {
                return Err(format!(
                    "free space {free} bytes is under the reserve of {min_free} bytes"
                ));
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match verdict {
            Ok(()) => text(StatusCode::OK, "", "text/plain"),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"ready": false, "reason": reason}).to_string(),
                "application/json",
            ),
        }
    }

    async fn s3_request(
        &self,
        req: Request<Incoming>,
        remote: SocketAddr,
    ) -> Response<AuditedBody> {
        let time_ns = now_ns();
        let id = request_id(time_ns, self.seq.fetch_add(1, Ordering::Relaxed));
        let user_agent = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        // The one decoding of the query: signing facts, limits and the audit read it.
        let query = DecodedQuery::of(req.uri());
        let auth = auth_method(&req, &query);
        let claimed_key = claimed_access_key(&req, &query);
        let rc = RequestCtx::new(
            id.clone(),
            time_ns,
            remote.ip(),
            self.secure,
            user_agent,
            auth.into(),
            query,
        );
        // One span per request, under the client's trace when it sent a traceparent. Without
        // a collector, only its request id (for log lines) is recorded.
        let (span, trace_id) = if crate::telemetry::traces::exporting() {
            let span = tracing::info_span!(
                "request",
                otel.name = span_name(req.method()),
                request_id = %id,
                http.method = %req.method(),
            );
            let trace_id = crate::telemetry::traces::adopt_parent(&span, req.headers());
            (span, trace_id)
        } else {
            (
                tracing::info_span!("request", request_id = %id),
                String::new(),
            )
        };
        let _ = rc.trace_id.set(trace_id.clone());
        let route = format!("{} {}", req.method(), req.uri().path());
        let received = Arc::new(AtomicU64::new(0));
        crate::telemetry::requests::in_flight(1.0);

        // Whether the request has a body that a handler may answer before reading (an error).
        let has_body = !req.body().is_end_stream();
        let empty_expecting_continue = !has_body && expects_continue(req.headers());
        let body_done = Arc::new(std::sync::atomic::AtomicBool::new(!has_body));
        // CORS: the origin and bucket of a browser request, to answer with the bucket's rules.
        let cors_request = req
            .headers()
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .and_then(|origin| Some((origin, self.bucket_of(&req)?, req.method().clone())));
        let resp = if req.method() == Method::OPTIONS {
            body_done.store(true, Ordering::Relaxed);
            self.preflight(&req).instrument(span.clone()).await
        } else {
            self.s3_call(req, &rc, &id, &received, &body_done)
                .instrument(span.clone())
                .await
        };
        crate::telemetry::requests::in_flight(-1.0);

        let (error_code, resp) = complete_error(resp);
        self.count_auth_failure(&error_code, &claimed_key);
        let status = resp.status().as_u16();
        let (mut parts, body) = resp.into_parts();
        if let Some((origin, bucket, method)) = cors_request
            && method != Method::OPTIONS
            && let Some(rules) = self.cors_rules(&bucket).await
            && let Some(rule) = cors::find(&rules, &origin, method.as_str(), &[])
        {
            cors::apply(&mut parts.headers, rule, &origin, &[], false);
        }
        // A response sent before its request body was read leaves unread bytes on the
        // connection: close it rather than trust the next request's framing.
        // An empty body sent with `Expect: 100-continue` gets its final answer without a
        // 100 (RFC 9110 §10.1.1 allows it, and hyper does so). botocore then keeps that status
        // line on the pooled connection and misreads the next response on it as headerless
        // (boto/botocore#3755: `aws s3 sync` of a tree with an empty file failed on the next
        // part's missing ETag). Closing the connection resets botocore's state.
        if !body_done.load(Ordering::Relaxed) || empty_expecting_continue {
            parts
                .headers
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Ok(v) = HeaderValue::from_str(&id) {
            // x-amz-id-2 is AWS's extended request id; fsgate has one id per request.
            parts.headers.insert(X_AMZ_ID_2, v.clone());
            parts.headers.insert(X_AMZ_REQUEST_ID, v);
        }
        tracing::debug!(request_id = %id, trace_id = %trace_id, %route, status, "request");
        let body = AuditedBody {
            inner: body,
            sent: 0,
            in_flight: None,
            guard: Some(AuditGuard {
                rc,
                audit: self.audit.clone(),
                status,
                error_code,
                received,
                route,
                claimed_key,
                per_bucket: self.ops.as_ref().is_some_and(|o| o.per_bucket),
                audit_on: self.ops.as_ref().is_none_or(|o| o.audit),
                span,
            }),
        };
        Response::from_parts(parts, body)
    }

    /// Passes a request through the limits s3s does not enforce, then to the S3 service.
    async fn s3_call(
        &self,
        req: Request<Incoming>,
        rc: &Arc<RequestCtx>,
        id: &str,
        received: &Arc<AtomicU64>,
        body_done: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Response<Body> {
        let resp = match self.precheck(req, rc, received, body_done).await {
            Ok(mut req) => {
                req.extensions_mut().insert(rc.clone());
                match self.s3.call(req).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(request_id = %id, error = ?e, "s3 service error");
                        s3_error_response(crate::error::s3_error(S3ErrorCode::InternalError))
                    }
                }
            }
            Err(e) => s3_error_response(e),
        };
        // A body fsgate stopped reading fails the request with its own answer, whatever the
        // reader made of the error.
        match rc.body_refused() {
            Some(why) if resp.status().as_u16() >= 400 => body_refused_response(why),
            _ => resp,
        }
    }

    /// Limits s3s does not enforce. Returns the request to pass on, with a counted body.
    async fn precheck(
        &self,
        req: Request<Incoming>,
        rc: &Arc<RequestCtx>,
        received: &Arc<AtomicU64>,
        done: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Request<Body>, S3Error> {
        // s3s routes `POST /bucket?delete` (however the name is encoded) to DeleteObjects.
        let is_delete_objects = req.method() == Method::POST && rc.query.has("delete");
        let (parts, body) = req.into_parts();
        let counted = CountingBody {
            inner: body,
            counter: received.clone(),
            done: done.clone(),
            rc: rc.clone(),
            budget: self.pre_decision_budget.clone(),
            idle: self.body_timeout,
            stall: None,
        };
        if !is_delete_objects {
            return Ok(Request::from_parts(parts, Body::http_body_unsync(counted)));
        }
        // DeleteObjects: verify Content-MD5 / x-amz-checksum-* over the raw XML, which s3s
        // parses without checking.
        let limited = http_body_util::Limited::new(counted, MAX_DELETE_BODY);
        let bytes = limited
            .collect()
            .await
            .map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::MalformedXML,
                    "The DeleteObjects body is too large or incomplete",
                )
            })?
            .to_bytes();
        verify_delete_body(&parts.headers, &bytes)?;
        Ok(Request::from_parts(parts, Body::from(bytes)))
    }
}

/// Whether the request carries `Expect: 100-continue`.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

fn verify_delete_body(headers: &http::HeaderMap, bytes: &Bytes) -> Result<(), S3Error> {
    if let Some(md5) = headers.get("content-md5").and_then(|v| v.to_str().ok()) {
        let want = base64::engine::general_purpose::STANDARD
            .decode(md5.trim())
            .map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidDigest,
                    "The Content-MD5 you specified was invalid.",
                )
            })?;
        if want.as_slice() != Md5::digest(bytes).as_slice() {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    for algo in crate::s3::checksum_algorithms() {
        let name = format!("x-amz-checksum-{}", algo.to_ascii_lowercase());
        if let Some(v) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            let mut h = s3s::checksum::ChecksumHasher::default();
            crate::s3::enable_checksum(&mut h, algo)
                .map_err(|_| crate::error::s3_error(S3ErrorCode::InvalidArgument))?;
            h.update(bytes);
            let c = h.finalize();
            let computed = [
                c.checksum_crc32,
                c.checksum_crc32c,
                c.checksum_crc64nvme,
                c.checksum_sha1,
                c.checksum_sha256,
            ];
            if !computed.iter().flatten().any(|x| x == v.trim()) {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!("The {algo} you specified did not match the calculated checksum."),
                ));
            }
        }
    }
    Ok(())
}
