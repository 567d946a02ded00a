//! The S3 error table: the one place that turns internal outcomes into S3 error codes, HTTP
//! statuses and the human-readable `<Message>` every error response carries.
//!
//! Errors fsgate raises are built here ([`store_error`], [`s3_error`], [`internal`]). s3s
//! raises and serializes its own parse and routing errors (an invalid bucket name, a malformed
//! header) before fsgate sees them, often without a message: [`complete_s3s_error`] is the
//! one place that reads such a body, to give it AWS's message.

use std::borrow::Cow;

use s3s::{S3Error, S3ErrorCode};

use fsgate_store::{MetaFailure, StoreError};

/// Converts a store outcome into the S3 error a client expects. Unexpected failures become
/// `InternalError`; their cause is logged with the request id, never sent to the client.
pub fn store_error(e: StoreError, request_id: &str) -> S3Error {
    match e {
        StoreError::NoSuchBucket => s3_error(S3ErrorCode::NoSuchBucket),
        StoreError::BucketExists => S3Error::with_message(
            S3ErrorCode::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it.",
        ),
        StoreError::BucketNotEmpty => S3Error::with_message(
            S3ErrorCode::BucketNotEmpty,
            "The bucket you tried to delete is not empty.",
        ),
        StoreError::NoSuchKey => {
            S3Error::with_message(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
        }
        StoreError::NoSuchUpload => S3Error::with_message(
            S3ErrorCode::NoSuchUpload,
            "The specified multipart upload does not exist.",
        ),
        StoreError::InvalidPart(msg) => S3Error::with_message(S3ErrorCode::InvalidPart, msg),
        StoreError::BadDigest(msg) => S3Error::with_message(S3ErrorCode::BadDigest, msg),
        StoreError::InvalidPartOrder => S3Error::with_message(
            S3ErrorCode::InvalidPartOrder,
            "The list of parts was not in ascending order.",
        ),
        StoreError::EntityTooSmall { part, size } => S3Error::with_message(
            S3ErrorCode::EntityTooSmall,
            format!("Part {part} is {size} bytes; every part but the last must be at least 5 MiB."),
        ),
        StoreError::NoSuchVersion => S3Error::with_message(
            S3ErrorCode::NoSuchVersion,
            "The specified version does not exist.",
        ),
        StoreError::InvalidVersionId => {
            S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid version id specified")
        }
        StoreError::DeleteMarker => S3Error::with_message(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        ),
        StoreError::ObjectLocked => S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Access Denied because object protected by object lock.",
        ),
        StoreError::InvalidRequest(msg) => S3Error::with_message(S3ErrorCode::InvalidRequest, msg),
        StoreError::InvalidBucketState(msg) => {
            S3Error::with_message(S3ErrorCode::InvalidBucketState, msg)
        }
        StoreError::PreconditionFailed => S3Error::with_message(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ),
        StoreError::NotFound(what) => {
            S3Error::with_message(S3ErrorCode::InvalidArgument, format!("{what} not found"))
        }
        StoreError::AlreadyExists(what) => S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("{what} already exists"),
        ),
        StoreError::IntegrityFailure(detail) => {
            tracing::error!(request_id, detail, "object data failed its integrity check");
            S3Error::with_message(
                S3ErrorCode::InternalError,
                "The object's stored data failed its integrity check and was not sent; it is \
                 quarantined. Restore it from a backup or upload it again.",
            )
        }
        // The disk filled up under a write the reserve let through (or with no reserve).
        ref e if e.is_no_space() => {
            tracing::warn!(request_id, error = %e, "write failed: no space left");
            storage_full()
        }
        // PostgreSQL away (scale-out): 503, which SDKs retry with backoff.
        StoreError::Metadata {
            kind: MetaFailure::Unavailable,
            ref message,
        } => {
            tracing::warn!(request_id, error = %message, "metadata engine unavailable");
            S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "The metadata service cannot be reached at the moment; nothing was changed. \
                 Please retry the request.",
            )
        }
        // The blob store (scale-out: an S3-compatible store) away: 503, retried by SDKs.
        StoreError::Unavailable(ref message) => {
            tracing::warn!(request_id, error = %message, "blob store unavailable");
            S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "The storage service cannot be reached at the moment; nothing was changed. \
                 Please retry the request.",
            )
        }
        StoreError::Corrupt { .. }
        | StoreError::Locked(_)
        | StoreError::Metadata { .. }
        | StoreError::Io(_) => internal(&e, request_id),
    }
}

/// A write over a bucket's quota: MinIO's code (its clients match on it), 400.
#[must_use]
pub fn quota_exceeded(msg: &str) -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("XMinioAdminBucketQuotaExceeded".into()),
        msg.to_owned(),
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

/// A write refused because the data directory's free space is under `--min-free-space`:
/// MinIO's code and status, 507 Insufficient Storage. Not 503 `SlowDown`: SDKs retry that with
/// backoff, which only delays the same answer, and it tells the client to slow down when what
/// must happen is that someone frees space.
#[must_use]
pub fn storage_full() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("XMinioStorageFull".into()),
        "Storage backend has reached its minimum free drive threshold. Please delete a few \
         objects to proceed.",
    );
    e.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
    e
}

/// A request over a rate or concurrency limit: 503 `SlowDown` (the front layer adds
/// `Retry-After`), which SDKs back off and retry.
#[must_use]
pub fn slow_down() -> S3Error {
    s3_error(S3ErrorCode::SlowDown)
}

/// An internal failure: logged in full, reported as `InternalError`.
pub fn internal(e: &dyn std::fmt::Display, request_id: &str) -> S3Error {
    tracing::error!(request_id, error = %e, "internal error");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

/// Maps an error raised while reading a request body stream. s3s reports these as opaque
/// boxed errors; their kind is only visible in their text.
pub fn body_error(e: &dyn std::fmt::Display) -> S3Error {
    let text = e.to_string();
    if text.contains("Sha256Mismatch") {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        e
    } else if text.contains("SignatureMismatch") {
        S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        )
    } else if text.contains("FormatError") || text.contains("TooLarge") || text.contains("TooMany")
    {
        S3Error::with_message(S3ErrorCode::InvalidRequest, "Malformed aws-chunked body.")
    } else {
        S3Error::with_message(
            S3ErrorCode::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }
}

/// An error with AWS's message for its code.
#[must_use]
pub fn s3_error(code: S3ErrorCode) -> S3Error {
    let message = message_of(&code);
    S3Error::with_message(code, message)
}

/// AWS's message for an error code (from its error-code reference), or the code's name in
/// words for codes AWS documents without one.
#[must_use]
pub fn message_of(code: &S3ErrorCode) -> Cow<'static, str> {
    use S3ErrorCode as C;
    let m = match code {
        C::AccessDenied => "Access Denied",
        C::AuthorizationHeaderMalformed => "The authorization header you provided is invalid.",
        C::BadDigest => "The Content-MD5 you specified did not match what we received.",
        C::BucketAlreadyExists => {
            "The requested bucket name is not available. The bucket namespace is shared by all \
             users of the system. Please select a different name and try again."
        }
        C::BucketAlreadyOwnedByYou => {
            "Your previous request to create the named bucket succeeded and you already own it."
        }
        C::BucketNotEmpty => "The bucket you tried to delete is not empty.",
        C::EntityTooLarge => "Your proposed upload exceeds the maximum allowed object size.",
        C::EntityTooSmall => {
            "Your proposed upload is smaller than the minimum allowed object size."
        }
        C::ExpiredToken => "The provided token has expired.",
        C::IncompleteBody => {
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        }
        C::InternalError => "We encountered an internal error. Please try again.",
        C::InvalidAccessKeyId => {
            "The AWS Access Key Id you provided does not exist in our records."
        }
        C::InvalidArgument => "Invalid Argument",
        C::InvalidBucketName => "The specified bucket is not valid.",
        C::InvalidBucketState => "The request is not valid with the current state of the bucket.",
        C::InvalidDigest => "The Content-MD5 you specified is not valid.",
        C::InvalidObjectState => "The operation is not valid for the current state of the object.",
        C::InvalidPart => {
            "One or more of the specified parts could not be found. The part may not have been \
             uploaded, or the specified entity tag may not match the part's entity tag."
        }
        C::InvalidPartOrder => "The list of parts was not in ascending order.",
        C::InvalidPolicyDocument => {
            "The content of the form does not meet the conditions specified in the policy document."
        }
        C::InvalidRange => "The requested range is not satisfiable",
        C::InvalidRequest => "Invalid Request",
        C::InvalidStorageClass => "The storage class you specified is not valid.",
        C::InvalidToken => "The provided token is malformed or otherwise invalid.",
        C::InvalidURI => "Couldn't parse the specified URI.",
        C::KeyTooLongError => "Your key is too long.",
        C::MalformedXML => {
            "The XML you provided was not well-formed or did not validate against our published \
             schema."
        }
        C::MaxMessageLengthExceeded => "Your request was too big.",
        C::MetadataTooLarge => "Your metadata headers exceed the maximum allowed metadata size.",
        C::MethodNotAllowed => "The specified method is not allowed against this resource.",
        C::MissingContentLength => "You must provide the Content-Length HTTP header.",
        C::MissingRequestBodyError => "Request Body is empty",
        C::MissingSecurityHeader => "Your request is missing a required header.",
        C::NoSuchBucket => "The specified bucket does not exist",
        C::NoSuchBucketPolicy => "The bucket policy does not exist",
        C::NoSuchKey => "The specified key does not exist.",
        C::NoSuchLifecycleConfiguration => "The lifecycle configuration does not exist.",
        C::NoSuchUpload => {
            "The specified multipart upload does not exist. The upload ID might not be valid, or \
             the multipart upload might have been aborted or completed."
        }
        C::NoSuchVersion => {
            "The version ID specified in the request does not match an existing version."
        }
        C::NotImplemented => "A header you provided implies functionality that is not implemented.",
        C::NotModified => "Not Modified",
        C::PreconditionFailed => "At least one of the preconditions you specified did not hold.",
        C::RequestTimeTooSkewed => {
            "The difference between the request time and the server's time is too large."
        }
        C::SignatureDoesNotMatch => {
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method."
        }
        C::SlowDown => "Please reduce your request rate.",
        C::TemporaryRedirect => "Please re-send this request to the specified temporary endpoint.",
        other => return Cow::Owned(words(other.as_str())),
    };
    Cow::Borrowed(m)
}

/// `InvalidObjectState` → "Invalid object state."
fn words(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 8);
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.push('.');
    out
}

/// What [`complete_s3s_error`] found in an error body.
#[derive(Debug, Default)]
pub struct ErrorBody {
    /// `<Code>` (or the admin API's JSON `code`); empty when the body names none.
    pub code: String,
    /// `<Message>`, unescaped; `None` when absent.
    pub message: Option<String>,
}

impl ErrorBody {
    /// Reads an error body: S3 XML, or the admin API's JSON.
    #[must_use]
    pub fn read(bytes: &[u8]) -> Self {
        if bytes.first() == Some(&b'{') {
            let v = serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_default();
            return Self {
                code: v
                    .get("code")
                    .and_then(|c| c.as_str())
                    .unwrap_or("")
                    .to_owned(),
                message: v.get("message").and_then(|c| c.as_str()).map(str::to_owned),
            };
        }
        let s = String::from_utf8_lossy(bytes);
        let element = |name: &str| {
            let (_, rest) = s.split_once(&format!("<{name}>"))?;
            let (value, _) = rest.split_once(&format!("</{name}>"))?;
            Some(
                value
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&apos;", "'")
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&"),
            )
        };
        Self {
            code: element("Code").unwrap_or_default(),
            message: element("Message"),
        }
    }
}

/// Completes an error response s3s serialized: returns the error to send instead when the
/// body has no message (AWS's message for its code, same status and headers), and the code for
/// the audit. A POST upload refused by its policy's conditions answers 403 AccessDenied
/// ("Invalid according to Policy"), as AWS does; s3s says 400 InvalidPolicyDocument.
#[must_use]
pub fn complete_s3s_error(status: http::StatusCode, body: &[u8]) -> (String, Option<S3Error>) {
    let found = ErrorBody::read(body);
    if found.code.is_empty() || body.first() == Some(&b'{') {
        return (found.code, None);
    }
    let code = S3ErrorCode::from_bytes(found.code.as_bytes())
        .unwrap_or_else(|| S3ErrorCode::Custom(found.code.clone().into()));
    if code == S3ErrorCode::InvalidPolicyDocument
        && let Some(m) = found.message.as_deref()
        && m.starts_with("Policy condition")
    {
        let e = S3Error::with_message(
            S3ErrorCode::AccessDenied,
            format!("Invalid according to Policy: {m}"),
        );
        return ("AccessDenied".to_owned(), Some(e));
    }
    if found.message.as_deref().is_some_and(|m| !m.is_empty()) {
        return (found.code, None);
    }
    let mut e = s3_error(code);
    e.set_status_code(status);
    (found.code, Some(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_gets_a_message() {
        assert_eq!(
            message_of(&S3ErrorCode::InvalidBucketName),
            "The specified bucket is not valid."
        );
        assert_eq!(
            message_of(&S3ErrorCode::Custom(
                "ObjectLockConfigurationNotFoundError".into()
            )),
            "Object lock configuration not found error."
        );
        let xml = b"<?xml version=\"1.0\"?><Error><Code>InvalidBucketName</Code></Error>";
        let (code, fixed) = complete_s3s_error(http::StatusCode::BAD_REQUEST, xml);
        assert_eq!(code, "InvalidBucketName");
        let fixed = fixed.expect("a message is added");
        assert_eq!(fixed.message(), Some("The specified bucket is not valid."));
        assert_eq!(fixed.status_code(), Some(http::StatusCode::BAD_REQUEST));
        let xml = b"<Error><Code>NoSuchKey</Code><Message>gone &amp; lost</Message></Error>";
        let (code, fixed) = complete_s3s_error(http::StatusCode::NOT_FOUND, xml);
        assert_eq!((code.as_str(), fixed.is_none()), ("NoSuchKey", true));
        assert_eq!(ErrorBody::read(xml).message.as_deref(), Some("gone & lost"));
    }
}
