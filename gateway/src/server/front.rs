//! The front layer: every HTTP request passes here first. Health and metrics are answered
//! before anything else (`health.rs`); every other request gets its id and
//! `RequestCtx`, passes the limits s3s leaves open (`limits.rs`), or is a CORS
//! preflight (`preflight.rs`), and — when the response body is finished or
//! abandoned — writes exactly one audit record and updates metrics (`audit.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tracing::Instrument as _;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use hyper::body::Incoming;
use s3s::host::S3Host as _;
use s3s::service::S3Service;
use s3s::{Body, S3Error, S3ErrorCode};

use fsgate_store::audit::{AuditWriter, request_id};
use fsgate_store::{Store, now_ns};

use super::audit::{AuditGuard, AuditedBody, auth_method, claimed_access_key};
use super::health::text;
use super::limits::{body_refused_response, expects_continue};
use crate::context::RequestCtx;
use crate::identity::query::DecodedQuery;
use crate::s3::cors;
use crate::server::host::DomainHost;

const X_AMZ_ID_2: http::HeaderName = http::HeaderName::from_static("x-amz-id-2");
const X_AMZ_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amz-request-id");

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
    pub(super) host: Option<DomainHost>,
    /// Metrics refresh, `/metrics` access and readiness settings.
    pub(super) ops: Option<Operations>,
    seq: AtomicU32,
    /// Bytes of undecided request bodies all requests may hold at once.
    pub(super) pre_decision_budget: Arc<tokio::sync::Semaphore>,
    /// Longest a request body may send nothing.
    pub(super) body_timeout: std::time::Duration,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` name the client.
    trusted_proxies: super::proxy::TrustedProxies,
    /// Request rates and the in-flight cap (`rate.rs`).
    pub(super) rates: Arc<crate::rate::Rates>,
    /// Answers requests signed for IAM (s3s verifies only `s3` and `sts` scopes).
    iam_api: Option<crate::admin::AdminApi>,
    /// Share links' route (`/-/share/…`).
    shares: Option<Arc<crate::share::Shares>>,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front").finish_non_exhaustive()
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

pub(super) fn s3_error_response(e: S3Error) -> Response<Body> {
    match e.to_http_response() {
        Ok(r) => r.map(|b| b),
        Err(_) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
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
                crate::server::limits::Limits::default().pre_decision_memory,
            )),
            body_timeout: crate::server::limits::Limits::default().body_timeout,
            trusted_proxies: super::proxy::TrustedProxies::default(),
            rates: Arc::default(),
            iam_api: None,
            shares: None,
        }
    }

    /// Serves share links (`/-/share/…`).
    #[must_use]
    pub fn with_shares(mut self, shares: crate::share::Shares) -> Self {
        self.shares = Some(Arc::new(shares));
        self
    }

    /// Answers AWS's IAM query API (requests signed for the `iam` service) with `admin`.
    #[must_use]
    pub fn with_iam_api(mut self, admin: crate::admin::AdminApi) -> Self {
        self.iam_api = Some(admin);
        self
    }

    /// What a request may cost before it is decided.
    #[must_use]
    pub fn with_limits(mut self, limits: &crate::server::limits::Limits) -> Self {
        self.pre_decision_budget = Arc::new(tokio::sync::Semaphore::new(
            limits
                .pre_decision_memory
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        ));
        self.body_timeout = limits.body_timeout;
        self
    }

    /// The request rates and in-flight cap (shared with the gate, which holds principals to
    /// them).
    #[must_use]
    pub fn with_rates(mut self, rates: Arc<crate::rate::Rates>) -> Self {
        self.rates = rates;
        self
    }

    /// Scrape-time metrics, the `/metrics` token, readiness thresholds.
    #[must_use]
    pub fn with_operations(mut self, ops: Operations) -> Self {
        self.ops = Some(ops);
        self
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

    /// Believes the forwarding headers of these proxies (see `proxy.rs`).
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: super::proxy::TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
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
                "/health/ready" | "/minio/health/ready" | "/minio/health/cluster" => {
                    return Ok(self.ready().await);
                }
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
        // A share link's request is the link's, whatever it carries (passwords, cookies).
        let auth = if self.share_route(&req).is_some() {
            "sharelink"
        } else {
            auth_method(&req, &query)
        };
        let claimed_key = claimed_access_key(&req, &query);
        let client = self.trusted_proxies.client(remote.ip(), req.headers());
        let rc = RequestCtx::new(
            id.clone(),
            time_ns,
            client,
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
        } else if let Some(_in_flight) = self.rates.enter() {
            self.s3_call(req, &rc, &id, &received, &body_done)
                .instrument(span.clone())
                .await
        } else {
            // Over the in-flight cap: refused before any work, the body left unread.
            s3_error_response(crate::error::slow_down())
        };
        crate::telemetry::requests::in_flight(-1.0);

        let (error_code, resp) = complete_error(resp);
        self.count_auth_failure(&error_code, &claimed_key);
        let status = resp.status().as_u16();
        let (mut parts, body) = resp.into_parts();
        if error_code == "SlowDown" && !parts.headers.contains_key(http::header::RETRY_AFTER) {
            parts
                .headers
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
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
                // Requests signed for IAM are the admin API's (s3s verifies only `s3` and `sts`
                // scopes); boxed, so that every other request does not carry its state.
                if let Some((iam, auth)) = self.iam_request(&req) {
                    Box::pin(iam.iam_signed(req, rc, auth)).await
                } else if let Some(shares) = self.share_route(&req) {
                    Box::pin(shares.call(req, rc, &self.s3)).await
                } else {
                    req.extensions_mut().insert(rc.clone());
                    match self.s3.call(req).await {
                        Ok(r)
                            if rc.fields().action
                                == fsgate_policy::Action::GetObjectAttributes.cedar_name() =>
                        {
                            crate::s3::unquote_attributes_etag(r)
                        }
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(request_id = %id, error = ?e, "s3 service error");
                            s3_error_response(crate::error::s3_error(S3ErrorCode::InternalError))
                        }
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

    /// The share-link route, for a path-style request on a share link's path (on a
    /// virtual host, the path is a key of that host's bucket).
    fn share_route<B>(&self, req: &Request<B>) -> Option<&crate::share::Shares> {
        let shares = self.shares.as_deref()?;
        if !crate::share::is_share_path(req.uri().path()) {
            return None;
        }
        let virtual_host = self.host.as_ref().is_some_and(|h| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .and_then(|host| h.parse_host_header(host).ok())
                .is_some_and(|v| v.bucket().is_some())
        });
        (!virtual_host).then_some(shares)
    }

    /// The admin API and authorization of a request signed for IAM, if it is one.
    fn iam_request(
        &self,
        req: &Request<Body>,
    ) -> Option<(
        &crate::admin::AdminApi,
        crate::identity::sigv4_iam::IamAuthorization,
    )> {
        if req.method() != Method::POST {
            return None;
        }
        let iam = self.iam_api.as_ref()?;
        Some((
            iam,
            crate::identity::sigv4_iam::iam_authorization(req.headers())?,
        ))
    }
}
