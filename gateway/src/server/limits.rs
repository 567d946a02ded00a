//! What a client may cost: the bounds ([`Limits`]), the request body as s3s reads it
//! (`CountingBody`: counted, held against the pre-decision budget, failed when it stalls),
//! and the checks s3s leaves open (DeleteObjects' size, Content-MD5 and checksums).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use s3s::{Body, S3Error, S3ErrorCode};

use super::front::{Front, s3_error_response};
use crate::context::{BodyRefused, RequestCtx};

/// Largest DeleteObjects body accepted (1000 keys of 1024 bytes plus XML).
const MAX_DELETE_BODY: usize = 2 << 20;

/// Bounds on what any client, authenticated or not, may cost the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a connection may go without a request in flight: to send a request's headers,
    /// or idle between requests.
    pub header_timeout: std::time::Duration,
    /// Longest a request body may send nothing.
    pub body_timeout: std::time::Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Request-body bytes held in memory, over all requests, before their decision.
    pub pre_decision_memory: usize,
    /// S3 requests in flight at once (0: no cap).
    pub max_requests: usize,
    /// Requests a second from one client address (0: no limit).
    pub per_source_rate: u32,
    /// Requests a second of one authenticated principal (0: no limit).
    pub per_principal_rate: u32,
    /// Bytes of a request's line and headers together (past it: 431).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: std::time::Duration::from_secs(30),
            body_timeout: std::time::Duration::from_secs(60),
            max_connections: 4096,
            pre_decision_memory: 256 << 20,
            max_requests: 1024,
            per_source_rate: 0,
            per_principal_rate: 0,
            max_header_bytes: 64 << 10,
        }
    }
}

/// The request body as s3s reads it: counted; until the request is decided, every byte held
/// against the shared pre-decision budget (so undecided bodies cost bounded memory however
/// many clients send them); failed when it sends nothing for `idle` (slow-body clients).
pub(super) struct CountingBody {
    pub(super) inner: Incoming,
    pub(super) counter: Arc<AtomicU64>,
    /// Set once the body has been read to its end.
    pub(super) done: Arc<std::sync::atomic::AtomicBool>,
    pub(super) rc: Arc<RequestCtx>,
    pub(super) budget: Arc<tokio::sync::Semaphore>,
    pub(super) idle: std::time::Duration,
    /// Runs while the body sends nothing; reset by every frame.
    pub(super) stall: Option<Pin<Box<tokio::time::Sleep>>>,
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
pub(super) fn body_refused_response(why: BodyRefused) -> Response<Body> {
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

impl Front {
    /// Limits s3s does not enforce. Returns the request to pass on, with a counted body.
    pub(super) async fn precheck(
        &self,
        req: Request<Incoming>,
        rc: &Arc<RequestCtx>,
        received: &Arc<AtomicU64>,
        done: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Request<Body>, S3Error> {
        // Before any work: the client's request rate.
        if !self.rates.admit_source(rc.source_ip) {
            return Err(crate::error::slow_down());
        }
        // s3s routes `POST /bucket?delete` (however the name is encoded) to DeleteObjects.
        let is_delete_objects = req.method() == Method::POST && rc.query.has("delete");
        // An empty Content-MD5 is an invalid digest, not an absent one (s3s reads it as none).
        if req
            .headers()
            .get("content-md5")
            .is_some_and(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace))
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidDigest,
                "The Content-MD5 you specified was invalid.",
            ));
        }
        // An empty Authorization header, or a SigV2 one on a request with no date, is a
        // refused signature (AWS: 403 AccessDenied), not a malformed request. (The date's
        // value is checked where the signing facts are read, `identity::signing`.)
        let authorization = req.headers().get(http::header::AUTHORIZATION);
        let v2_without_date = authorization.is_some_and(|v| v.as_bytes().starts_with(b"AWS "))
            && !req.headers().contains_key(http::header::DATE)
            && !req.headers().contains_key("x-amz-date");
        if v2_without_date
            || authorization.is_some_and(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace))
        {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Access Denied",
            ));
        }
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
pub(super) fn expects_continue(headers: &http::HeaderMap) -> bool {
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
