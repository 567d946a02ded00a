//! Secret lookup for signature verification (s3s verifies SigV4, presigned and streaming
//! signatures with the secret returned here).

use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use crate::iam::{AuthFailure, Iam};

/// Looks secrets up in the IAM cache. Disabled users and deleted keys get no secret, so every
/// signature made with them fails, presigned URLs included.
#[derive(Debug, Clone)]
pub struct IamAuth {
    iam: Arc<Iam>,
}

impl IamAuth {
    /// Wraps the IAM cache.
    #[must_use]
    pub fn new(iam: Arc<Iam>) -> Self {
        Self { iam }
    }
}

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.iam.secret_for(access_key) {
            Some(secret) => Ok(SecretKey::from(secret)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// How far in the future a presigned URL's `X-Amz-Date` may lie (AWS: "Request is not valid
/// yet" beyond clock skew).
const MAX_FUTURE_NS: u64 = 15 * 60 * 1_000_000_000;
/// Longest presigned URL lifetime, seconds (AWS: 7 days).
const MAX_PRESIGNED_SECS: u64 = 604_800;

fn query_param<'a>(uri: &'a http::Uri, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
    })
}

/// `20261125T170000Z` → ns.
fn amz_date_ns(s: &str) -> Option<u64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, fmt).ok()?.assume_utc();
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// An HTTP date (SigV2 `Date` header) → ns.
fn http_date_ns(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// The session token and signing time a signed request carries.
#[derive(Debug, Clone, Default)]
pub struct SignedFacts {
    /// `x-amz-security-token` (header, or query for presigned URLs).
    pub token: Option<String>,
    /// When it was signed (`X-Amz-Date`, `x-amz-date` or `Date`), ns; for a SigV2 presigned
    /// URL, the earliest it can have been signed (its expiry less 7 days).
    pub signed_ns: Option<u64>,
}

impl SignedFacts {
    /// Reads them from the request; a presigned URL dated in the future is refused.
    pub fn of(headers: &http::HeaderMap, uri: &http::Uri) -> S3Result<Self> {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let token = query_param(uri, "X-Amz-Security-Token")
            .map(std::borrow::Cow::into_owned)
            .or_else(|| header("x-amz-security-token").map(str::to_owned));
        let presigned = query_param(uri, "X-Amz-Date").and_then(|d| amz_date_ns(&d));
        if presigned.is_some_and(|t| t > fsgate_store::now_ns() + MAX_FUTURE_NS) {
            return Err(s3_error!(AccessDenied, "Request is not valid yet"));
        }
        // A SigV2 presigned URL names only its expiry; at most 7 days long, it was signed no
        // earlier than 7 days before it: the bound revocation checks use (fail closed).
        let v2_expires = query_param(uri, "Signature")
            .and(query_param(uri, "Expires"))
            .and_then(|e| e.parse::<u64>().ok());
        if let Some(exp) = v2_expires {
            let now_s = fsgate_store::now_ns() / 1_000_000_000;
            if exp > now_s + MAX_PRESIGNED_SECS {
                return Err(s3_error!(
                    AccessDenied,
                    "Presigned URLs may live at most 7 days (604800 seconds)"
                ));
            }
        }
        let signed_ns = presigned
            .or_else(|| {
                v2_expires.map(|e| {
                    e.saturating_sub(MAX_PRESIGNED_SECS)
                        .saturating_mul(1_000_000_000)
                })
            })
            .or_else(|| header("x-amz-date").and_then(amz_date_ns))
            .or_else(|| header("date").and_then(http_date_ns));
        Ok(Self { token, signed_ns })
    }
}

/// The S3 error for refused credentials.
#[must_use]
pub fn failure_error(f: AuthFailure) -> s3s::S3Error {
    match f {
        AuthFailure::UnknownKey => s3_error!(
            InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records."
        ),
        AuthFailure::InvalidToken => s3_error!(
            InvalidToken,
            "The provided token is malformed or otherwise invalid."
        ),
        AuthFailure::ExpiredToken => s3_error!(ExpiredToken, "The provided token has expired."),
        AuthFailure::Revoked => s3_error!(
            AccessDenied,
            "The credentials that signed this request have been revoked."
        ),
    }
}
