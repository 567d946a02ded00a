//! CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`, answered from
//! the bucket's CORS rules without authentication, as browsers send it without credentials.

use http::{Request, Response, StatusCode};
use s3s::{Body, S3Error, S3ErrorCode};

use super::front::{Front, s3_error_response};
use crate::s3::cors::{self, CorsRule};
use s3s::host::S3Host as _;

impl Front {
    /// The bucket a request addresses (virtual-hosted or path-style).
    pub(super) fn bucket_of<B>(&self, req: &Request<B>) -> Option<String> {
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
    pub(super) async fn cors_rules(&self, bucket: &str) -> Option<Vec<CorsRule>> {
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
    pub(super) async fn preflight<B>(&self, req: &Request<B>) -> Response<Body> {
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
}
