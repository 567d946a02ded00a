//! Bearer tokens (OpenID Connect JWTs) on admin requests: moved out of `Authorization`, which
//! s3s reads as a signature, into a header of fsgate's own.

use http::HeaderMap;

/// Where an admin request's `Authorization: Bearer` token travels past s3s (which would refuse
/// an Authorization header that is not a signature).
pub const BEARER_HEADER: http::HeaderName = http::HeaderName::from_static("x-fsgate-bearer");

/// Moves an admin request's bearer token out of `Authorization` into [`BEARER_HEADER`]; any
/// other request (`admin_request` false) is left alone (a bearer token on an S3 route is refused by s3s as before).
pub fn move_bearer_token<B>(req: &mut http::Request<B>, admin_request: bool) {
    if !admin_request {
        req.headers_mut().remove(&BEARER_HEADER);
        return;
    }
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| http::HeaderValue::from_str(t.trim()).ok());
    if let Some(t) = token {
        req.headers_mut().remove(http::header::AUTHORIZATION);
        req.headers_mut().insert(BEARER_HEADER, t);
    }
}

/// The bearer token of an admin request.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(&BEARER_HEADER).and_then(|v| v.to_str().ok())
}
