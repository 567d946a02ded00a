//! Server access logging: PutBucketLogging and GetBucketLogging (the bucket document
//! `logging`), and the log records, in AWS's server access log format, built from the audit
//! records (one source of truth) and delivered into the target bucket by `worker.rs`.
//!
//! AWS's checks on the target bucket: it must exist and belong to the source bucket's owner
//! (InvalidTargetBucketForLogging); AWS also requires that its log delivery may write there,
//! which in fsgate means that the caller configuring logging may put objects in it (Cedar
//! decides `s3:PutObject` on the target prefix for the caller).

pub mod worker;

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};

use fsgate_policy::{Action, Resource};

use super::{S3Api, ctx};

/// The bucket document holding the logging configuration.
pub const DOC: &str = "logging";
/// The source bucket's document holding the time (ns) of the last audit record delivered.
pub const DELIVERED_DOC: &str = "logging-delivered";

/// A bucket's logging configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    /// Where log objects go.
    pub target_bucket: String,
    /// Their key prefix.
    pub target_prefix: String,
}

fn invalid_target(msg: &str) -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("InvalidTargetBucketForLogging".into()),
        msg.to_owned(),
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

impl S3Api {
    pub(super) async fn do_put_bucket_logging(
        &self,
        req: S3Request<PutBucketLoggingInput>,
    ) -> S3Result<S3Response<PutBucketLoggingOutput>> {
        let (rc, principal) = crate::access::request_state(&req)?;
        let i = req.input;
        let Some(enabled) = i.bucket_logging_status.logging_enabled else {
            // An empty BucketLoggingStatus turns logging off.
            let b = i.bucket;
            self.run(&rc, move |s| {
                s.set_bucket_configs(&b, &[(DOC, None), (DELIVERED_DOC, None)])
            })
            .await?;
            return Ok(S3Response::new(PutBucketLoggingOutput::default()));
        };
        if enabled
            .target_grants
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            return Err(s3_error!(
                NotImplemented,
                "TargetGrants are not supported: grant access to the target bucket with a policy or ACL"
            ));
        }
        let (source, target) = (i.bucket.clone(), enabled.target_bucket.clone());
        let owners = self
            .run(&rc, move |s| {
                let source_owner = crate::ownership::bucket_owner(s, &source)?;
                match s.bucket(&target) {
                    Ok(_) => Ok(Some((
                        source_owner,
                        crate::ownership::bucket_owner(s, &target)?,
                    ))),
                    Err(fsgate_store::StoreError::NoSuchBucket) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let Some((source_owner, target_owner)) = owners else {
            return Err(invalid_target(
                "The target bucket for logging does not exist",
            ));
        };
        if source_owner != target_owner {
            return Err(invalid_target(
                "The owner for the bucket to be logged and the target bucket must be the same.",
            ));
        }
        let probe_key = format!("{}logs", enabled.target_prefix);
        let may_write = self
            .gate
            .decide_quietly(
                &rc,
                &principal,
                Action::PutObject,
                Resource::Object {
                    bucket: enabled.target_bucket.clone(),
                    key: probe_key,
                },
            )
            .allowed;
        if !may_write {
            return Err(s3_error!(
                AccessDenied,
                "You may not write log objects to the target bucket"
            ));
        }
        let doc = serde_json::to_vec(&Logging {
            target_bucket: enabled.target_bucket,
            target_prefix: enabled.target_prefix,
        })
        .map_err(|e| s3_error!(InternalError, "{e}"))?;
        // Delivery starts with what happens from now on.
        let since = fsgate_store::now_ns().to_string();
        let b = i.bucket;
        self.run(&rc, move |s| {
            s.set_bucket_configs(
                &b,
                &[(DOC, Some(&doc)), (DELIVERED_DOC, Some(since.as_bytes()))],
            )
        })
        .await?;
        Ok(S3Response::new(PutBucketLoggingOutput::default()))
    }

    pub(super) async fn do_get_bucket_logging(
        &self,
        req: S3Request<GetBucketLoggingInput>,
    ) -> S3Result<S3Response<GetBucketLoggingOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let doc = self.run(&rc, move |s| s.bucket_config(&b, DOC)).await?;
        let logging_enabled = doc
            .and_then(|d| serde_json::from_slice::<Logging>(&d).ok())
            .map(|l| LoggingEnabled {
                target_bucket: l.target_bucket,
                target_prefix: l.target_prefix,
                target_grants: None,
                target_object_key_format: None,
            });
        Ok(S3Response::new(GetBucketLoggingOutput { logging_enabled }))
    }
}

/// AWS's operation name and HTTP method for an action (`REST.GET.OBJECT`, `GET`).
fn operation(action: &str) -> (String, &'static str) {
    let known: Option<(&str, &'static str)> = match action {
        "s3:GetObject" | "s3:GetObjectVersion" => Some(("REST.GET.OBJECT", "GET")),
        "s3:HeadObject" => Some(("REST.HEAD.OBJECT", "HEAD")),
        "s3:PutObject" => Some(("REST.PUT.OBJECT", "PUT")),
        "s3:CopyObject" => Some(("REST.COPY.OBJECT", "PUT")),
        "s3:DeleteObject" | "s3:DeleteObjectVersion" => Some(("REST.DELETE.OBJECT", "DELETE")),
        "s3:DeleteObjects" => Some(("REST.POST.MULTI_OBJECT_DELETE", "POST")),
        "s3:CreateMultipartUpload" => Some(("REST.POST.UPLOADS", "POST")),
        "s3:UploadPart" => Some(("REST.PUT.PART", "PUT")),
        "s3:UploadPartCopy" => Some(("REST.COPY.PART", "PUT")),
        "s3:CompleteMultipartUpload" => Some(("REST.POST.UPLOAD", "POST")),
        "s3:AbortMultipartUpload" => Some(("REST.DELETE.UPLOAD", "DELETE")),
        "s3:ListParts" => Some(("REST.GET.UPLOAD", "GET")),
        "s3:ListObjects" | "s3:ListObjectsV2" => Some(("REST.GET.BUCKET", "GET")),
        "s3:ListObjectVersions" => Some(("REST.GET.BUCKETVERSIONS", "GET")),
        "s3:ListMultipartUploads" => Some(("REST.GET.UPLOADS", "GET")),
        "s3:HeadBucket" => Some(("REST.HEAD.BUCKET", "HEAD")),
        "s3:CreateBucket" => Some(("REST.PUT.BUCKET", "PUT")),
        "s3:DeleteBucket" => Some(("REST.DELETE.BUCKET", "DELETE")),
        "s3:GetObjectAcl" | "s3:GetBucketAcl" => Some(("REST.GET.ACL", "GET")),
        "s3:PutObjectAcl" | "s3:PutBucketAcl" => Some(("REST.PUT.ACL", "PUT")),
        "s3:GetObjectTagging" => Some(("REST.GET.OBJECT_TAGGING", "GET")),
        "s3:PutObjectTagging" => Some(("REST.PUT.OBJECT_TAGGING", "PUT")),
        "s3:DeleteObjectTagging" => Some(("REST.DELETE.OBJECT_TAGGING", "DELETE")),
        _ => None,
    };
    match known {
        Some((op, method)) => (op.to_owned(), method),
        // Others: AWS's form with the action's name.
        None => (
            format!(
                "REST.{}",
                action
                    .strip_prefix("s3:")
                    .unwrap_or(action)
                    .to_ascii_uppercase()
            ),
            "",
        ),
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// One line of AWS's server access log format for an audit record of a bucket owned by
/// `bucket_owner`; `root_name` is the root principal's name (its requester id is root's).
#[must_use]
pub fn log_line(
    r: &fsgate_store::model::AuditRecord,
    bucket_owner: &str,
    root_name: &str,
) -> String {
    use crate::ownership::canonical_id;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.time_ns))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
            ))
            .ok()
        })
        .unwrap_or_default();
    let requester = match r.auth.as_str() {
        "anonymous" | "" => "-".to_owned(),
        _ if r.principal == root_name => canonical_id(crate::ownership::ROOT_OWNER),
        _ => canonical_id(&format!("user:{}", r.principal)),
    };
    let (op, method) = operation(&r.action);
    // The key URL-encoded as AWS writes it: unreserved characters and `/` as they are.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    let key = percent_encoding::utf8_percent_encode(&r.key, KEEP).to_string();
    let uri = if method.is_empty() {
        "-".to_owned()
    } else if r.key.is_empty() {
        format!("\"{method} /{} HTTP/1.1\"", r.bucket)
    } else {
        format!("\"{method} /{}/{key} HTTP/1.1\"", r.bucket)
    };
    let sig = match r.auth.as_str() {
        "sigv4" | "presigned" => "SigV4",
        "sigv2" | "presigned-v2" => "SigV2",
        _ => "-",
    };
    let auth_type = match r.auth.as_str() {
        "sigv4" | "sigv2" => "AuthHeader",
        "presigned" | "presigned-v2" => "QueryString",
        _ => "-",
    };
    let bytes_sent = if r.bytes_out == 0 {
        "-".to_owned()
    } else {
        r.bytes_out.to_string()
    };
    format!(
        "{owner} {bucket} [{time}] {ip} {requester} {id} {op} {key} {uri} {status} {error} {bytes_sent} - {total} - \"-\" \"{ua}\" {version} {id} {sig} - {auth_type} - - - -",
        owner = canonical_id(bucket_owner),
        bucket = r.bucket,
        ip = dash(&r.source_ip),
        id = r.request_id,
        key = if r.key.is_empty() { "-" } else { &key },
        status = r.status,
        error = dash(&r.error_code),
        total = r.duration_us / 1000,
        ua = r.user_agent.replace('"', "'"),
        version = dash(&r.version_id),
    )
}
