//! SigV4 for AWS's IAM query API. s3s verifies signatures scoped to `s3` and `sts` only, so a
//! request scoped to `iam` is verified here: the signature is recomputed with AWS's own signer
//! (`aws-sigv4`) over the headers the request says it signed, and compared in constant time.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::HeaderMap;

/// How far a request's `x-amz-date` may be from the server's clock (AWS's 15 minutes).
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header scoped to `iam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamAuthorization {
    /// The access key.
    pub access_key: String,
    /// The scope's region.
    pub region: String,
    /// The headers the client signed, lower-case.
    pub signed_headers: Vec<String>,
    /// The signature, hex.
    pub signature: String,
}

/// Why an IAM request's signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IamSignatureError {
    /// No `x-amz-date`, or not `YYYYMMDDTHHMMSSZ`.
    #[error("the request has no valid x-amz-date header")]
    Date,
    /// The date is more than 15 minutes from the server's clock.
    #[error("Signature expired: the request time is more than 15 minutes from the server's")]
    Skewed,
    /// The signature does not match.
    #[error("The request signature we calculated does not match the signature you provided.")]
    Mismatch,
}

/// The authorization of a request signed for IAM, or `None` for any other request.
#[must_use]
pub fn iam_authorization(headers: &HeaderMap) -> Option<IamAuthorization> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [access_key, _date, region, "iam", "aws4_request"] = scope.as_slice() else {
        return None;
    };
    Some(IamAuthorization {
        access_key: (*access_key).to_owned(),
        region: (*region).to_owned(),
        signed_headers: signed?.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature?.to_owned(),
    })
}

fn amz_date(headers: &HeaderMap) -> Result<SystemTime, IamSignatureError> {
    let v = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(IamSignatureError::Date)?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(v, format).map_err(|_| IamSignatureError::Date)?;
    Ok(t.assume_utc().into())
}

/// Verifies the signature of a request signed for IAM with `secret`.
///
/// # Errors
/// `IamSignatureError` when the date is missing or skewed, or the signature does not match.
pub fn verify(
    auth: &IamAuthorization,
    secret: &str,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), IamSignatureError> {
    let when = amz_date(headers)?;
    let now = SystemTime::now();
    let skew = now
        .duration_since(when)
        .or_else(|_| when.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(IamSignatureError::Skewed);
    }
    let identity = Credentials::new(&auth.access_key, secret, None, None, "request").into();
    let mut settings = SigningSettings::default();
    // Exactly the headers the client signed: none left out by the signer's own list.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name("iam")
        .time(when)
        .settings(settings)
        .build()
        .map_err(|_| IamSignatureError::Mismatch)?
        .into();
    // x-amz-date comes from `time`; the rest as sent, when signed.
    let signed: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| {
            k.as_str() != "x-amz-date" && auth.signed_headers.iter().any(|s| s == k.as_str())
        })
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let url = format!(
        "http://{host}{}",
        uri.path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
    );
    let signable = SignableRequest::new(
        method.as_str(),
        url,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| IamSignatureError::Mismatch)?;
    let out = sign(signable, &params).map_err(|_| IamSignatureError::Mismatch)?;
    if crate::identity::keys::constant_time_eq(
        out.signature().as_bytes(),
        auth.signature.as_bytes(),
    ) {
        Ok(())
    } else {
        Err(IamSignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_iam_scopes_are_taken() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AK/20261207/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
                .parse()
                .unwrap(),
        );
        let a = iam_authorization(&h).unwrap();
        assert_eq!(a.access_key, "AK");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        h.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AK/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc"
                .parse()
                .unwrap(),
        );
        assert!(iam_authorization(&h).is_none());
    }
}
