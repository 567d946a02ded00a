//! The only place that turns internal outcomes into S3 error codes and HTTP statuses.

use s3s::{S3Error, S3ErrorCode};

use fsgate_store::StoreError;

/// Converts a store outcome into the S3 error a client expects. Unexpected failures become
/// `InternalError`; their cause is logged with the request id, never sent to the client.
pub fn store_error(e: StoreError, request_id: &str) -> S3Error {
    match e {
        StoreError::NoSuchBucket => S3Error::new(S3ErrorCode::NoSuchBucket),
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
        StoreError::Corrupt { .. }
        | StoreError::Locked(_)
        | StoreError::Rocks(_)
        | StoreError::Io(_) => internal(&e, request_id),
    }
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
