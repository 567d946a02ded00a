//! What a signature rests on: the secret s3s verifies it with (`IamAuth`), and the facts it
//! carries — how it was signed, when, until when, with which session token — read exactly as
//! s3s reads them, from the decoded query and the headers it verified.

use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use crate::identity::iam::{AuthFailure, Iam};
use crate::identity::query::DecodedQuery;

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
pub const MAX_PRESIGNED_SECS: u64 = 604_800;

/// `20261125T170000Z` → ns.
fn amz_date_ns(s: &str) -> Option<u64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, fmt).ok()?.assume_utc();
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// An HTTP date (SigV2 `Date` header) → ns.
/// Most a SigV2 request's time may differ from the server's (AWS: 15 minutes).
const MAX_SKEW_SECS: u64 = 15 * 60;

/// An HTTP date's seconds since the epoch (negative before it).
fn http_date_secs(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// A header given exactly once (s3s reads signing headers with `get_unique`).
fn unique_header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    all.next().is_none().then(|| first.to_str().ok()).flatten()
}

/// How a request was signed, told exactly as s3s tells it (same order, same decoded query,
/// same headers), so the facts below are those of the signature s3s verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedBy {
    /// A POST form (the signature, if any, is in the form).
    PostForm,
    /// A SigV2 presigned URL (`Signature`, `Expires` in the query).
    PresignedV2,
    /// A SigV2 `Authorization: AWS ...` header.
    HeaderV2,
    /// A SigV4 presigned URL (`X-Amz-Signature` in the query).
    PresignedV4,
    /// A SigV4 `Authorization` header.
    HeaderV4,
    /// Nothing: anonymous.
    Unsigned,
}

impl SignedBy {
    /// Tells the kind from the request (s3s: POST form first, then SigV2 query, SigV2 header,
    /// SigV4 query, SigV4 header).
    #[must_use]
    pub fn of(method: &http::Method, headers: &http::HeaderMap, query: &DecodedQuery) -> Self {
        let form = method == http::Method::POST
            && unique_header(headers, "content-type").is_some_and(|c| {
                c.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        let authorization = unique_header(headers, "authorization");
        if form {
            Self::PostForm
        } else if query.has("Signature") {
            Self::PresignedV2
        } else if authorization.is_some_and(|a| a.starts_with("AWS ") && a.contains(':')) {
            Self::HeaderV2
        } else if query.has("X-Amz-Signature") {
            Self::PresignedV4
        } else if authorization.is_some() {
            Self::HeaderV4
        } else {
            Self::Unsigned
        }
    }

    /// The audit's name for it.
    #[must_use]
    pub fn audit_name(self) -> &'static str {
        match self {
            Self::PostForm => "post-form",
            Self::PresignedV2 => "presigned-v2",
            Self::HeaderV2 => "sigv2",
            Self::PresignedV4 => "presigned",
            Self::HeaderV4 => "sigv4",
            Self::Unsigned => "anonymous",
        }
    }
}

/// The session token and signing time a signed request carries.
#[derive(Debug, Clone, Default)]
pub struct SignedFacts {
    /// `x-amz-security-token` (header, or query for presigned URLs).
    pub token: Option<String>,
    /// When it was signed (the `X-Amz-Date` of the query, or the signed date header), ns; for
    /// a SigV2 presigned URL, the earliest it can have been signed (its expiry less 7 days);
    /// `None` when it cannot be told (POST forms), which revocation treats as "before".
    pub signed_ns: Option<u64>,
}

impl SignedFacts {
    /// Reads them from the same decoded query and headers s3s verified the signature over.
    /// A presigned URL dated in the future, or living longer than 7 days, is refused.
    pub fn of(
        method: &http::Method,
        headers: &http::HeaderMap,
        query: &DecodedQuery,
    ) -> S3Result<Self> {
        let now_s = fsgate_store::now_ns() / 1_000_000_000;
        let header_token = || unique_header(headers, "x-amz-security-token").map(str::to_owned);
        Ok(match SignedBy::of(method, headers, query) {
            SignedBy::PostForm | SignedBy::Unsigned => Self::default(),
            SignedBy::PresignedV2 => {
                // A SigV2 presigned URL names only its expiry; at most 7 days long, it was
                // signed no earlier than 7 days before it: the bound revocation uses.
                let exp = query
                    .unique("Expires")
                    .and_then(|e| e.parse::<u64>().ok())
                    .ok_or_else(|| s3_error!(AccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"))?;
                if exp > now_s + MAX_PRESIGNED_SECS {
                    return Err(s3_error!(
                        AccessDenied,
                        "Presigned URLs may live at most 7 days (604800 seconds)"
                    ));
                }
                Self {
                    token: query
                        .unique("x-amz-security-token")
                        .or_else(|| query.unique("X-Amz-Security-Token"))
                        .map(str::to_owned),
                    signed_ns: Some(
                        exp.saturating_sub(MAX_PRESIGNED_SECS)
                            .saturating_mul(1_000_000_000),
                    ),
                }
            }
            SignedBy::HeaderV2 => {
                // AWS: the request's time is x-amz-date when given, else Date; without a valid
                // one the request is AccessDenied, and more than 15 minutes from the server's
                // clock it is RequestTimeTooSkewed (so a signed request cannot be replayed
                // later).
                let signed_s = unique_header(headers, "x-amz-date")
                    .or_else(|| unique_header(headers, "date"))
                    .and_then(http_date_secs)
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or_else(|| {
                        s3_error!(
                            AccessDenied,
                            "AWS authentication requires a valid Date or x-amz-date header"
                        )
                    })?;
                let signed_ns = signed_s.saturating_mul(1_000_000_000);
                if signed_s.abs_diff(now_s) > MAX_SKEW_SECS {
                    return Err(s3_error!(
                        RequestTimeTooSkewed,
                        "The difference between the request time and the current time is too large."
                    ));
                }
                Self {
                    token: header_token(),
                    signed_ns: Some(signed_ns),
                }
            }
            SignedBy::PresignedV4 => {
                let expires = query
                    .unique("X-Amz-Expires")
                    .and_then(|e| e.parse::<u64>().ok());
                if expires.is_none_or(|e| e > MAX_PRESIGNED_SECS) {
                    return Err(s3_error!(
                        AuthorizationQueryParametersError,
                        "X-Amz-Expires must be less than a week (in seconds) that is 604800"
                    ));
                }
                let signed = query.unique("X-Amz-Date").and_then(amz_date_ns);
                if signed.is_none_or(|t| t > fsgate_store::now_ns() + MAX_FUTURE_NS) {
                    return Err(s3_error!(AccessDenied, "Request is not valid yet"));
                }
                Self {
                    token: query.unique("X-Amz-Security-Token").map(str::to_owned),
                    signed_ns: signed,
                }
            }
            SignedBy::HeaderV4 => Self {
                token: header_token(),
                signed_ns: unique_header(headers, "x-amz-date").and_then(amz_date_ns),
            },
        })
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
