//! DeleteObject and DeleteObjects (each key decided on its own).

use fsgate_policy::{Action, Principal, Resource};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_store::objects::DeleteCondition;

use crate::access::{AccessFacts, request_state, versioned_action};

use super::S3Api;

/// The conditions of a DeleteObject, or of one key of DeleteObjects: `If-Match` (an ETag
/// list or `*`), `x-amz-if-match-last-modified-time`, `x-amz-if-match-size`.
fn delete_condition(
    etag: Option<String>,
    last_modified: Option<&Timestamp>,
    size: Option<i64>,
) -> S3Result<DeleteCondition> {
    let size = size
        .map(|s| {
            u64::try_from(s).map_err(|_| {
                s3_error!(
                    InvalidArgument,
                    "x-amz-if-match-size must be a size in bytes, not {s}"
                )
            })
        })
        .transpose()?;
    let last_modified_secs =
        last_modified.map(|t| time::OffsetDateTime::from(t.clone()).unix_timestamp());
    Ok(DeleteCondition {
        etag,
        last_modified_secs,
        size,
    })
}

impl S3Api {
    pub(super) async fn do_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (rc, principal) = request_state(&req)?;
        let i = req.input;
        let bypass = self.bypass_governance(
            &rc,
            &principal,
            i.bypass_governance_retention,
            &i.bucket,
            &i.key,
            i.version_id.as_deref(),
        )?;
        let cond = delete_condition(
            i.if_match.map(|c| match c {
                ETagCondition::Any => "*".to_owned(),
                ETagCondition::ETag(e) => e.value().to_owned(),
            }),
            i.if_match_last_modified_time.as_ref(),
            i.if_match_size,
        )?;
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        let d = self
            .run(&rc, move |s| {
                s.delete_object_if(&b, &k, v.as_deref(), bypass, &cond)
            })
            .await?;
        rc.fields().version_id = d.version_id.clone().unwrap_or_default();
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: d.delete_marker.then_some(true),
            version_id: d.version_id,
            ..Default::default()
        }))
    }

    /// `x-amz-bypass-governance-retention: true` needs its own permission; without it the
    /// request is refused rather than silently not bypassing.
    pub(super) fn bypass_governance(
        &self,
        rc: &crate::context::RequestCtx,
        principal: &Principal,
        asked: Option<bool>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<bool> {
        if asked != Some(true) {
            return Ok(false);
        }
        self.gate.require(
            rc,
            principal,
            Action::BypassGovernanceRetention,
            Resource::Object {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            },
            AccessFacts::version(version),
        )?;
        Ok(true)
    }

    pub(super) async fn do_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let (rc, principal) = request_state(&req)?;
        let i = req.input;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "DeleteObjects accepts at most 1000 keys"
            ));
        }
        let bucket = i.bucket.clone();
        self.run(&rc, move |s| s.bucket(&bucket)).await?;
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        let mut any_allowed = false;
        let bypass_asked = i.bypass_governance_retention == Some(true);
        for obj in i.delete.objects {
            let key = obj.key;
            let version = obj.version_id;
            let cond = match delete_condition(
                obj.e_tag.map(|e| e.value().to_owned()),
                obj.last_modified_time.as_ref(),
                obj.size,
            ) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(Error {
                        code: Some(e.code().as_str().to_owned()),
                        key: Some(key),
                        message: e.message().map(str::to_owned),
                        version_id: version,
                    });
                    continue;
                }
            };
            let d = self.gate.decide(
                &rc,
                &principal,
                versioned_action(Action::DeleteObject, version.is_some()),
                Resource::Object {
                    bucket: i.bucket.clone(),
                    key: key.clone(),
                },
                AccessFacts::version(version.as_deref()),
            );
            if !d.allowed {
                errors.push(Error {
                    code: Some("AccessDenied".into()),
                    key: Some(key),
                    message: Some("Access Denied".into()),
                    version_id: version,
                });
                continue;
            }
            any_allowed = true;
            let bypass = bypass_asked
                && self
                    .gate
                    .decide(
                        &rc,
                        &principal,
                        Action::BypassGovernanceRetention,
                        Resource::Object {
                            bucket: i.bucket.clone(),
                            key: key.clone(),
                        },
                        AccessFacts::version(version.as_deref()),
                    )
                    .allowed;
            if key.len() > super::MAX_KEY_LEN {
                errors.push(Error {
                    code: Some("KeyTooLongError".into()),
                    key: Some(key),
                    message: Some("Your key is too long".into()),
                    version_id: None,
                });
                continue;
            }
            let (b, k, v) = (i.bucket.clone(), key.clone(), version.clone());
            match self
                .run(&rc, move |s| {
                    s.delete_object_if(&b, &k, v.as_deref(), bypass, &cond)
                })
                .await
            {
                Ok(d) => {
                    if !quiet {
                        // A marker made (no version named) is reported by its id; a version
                        // removed by the id asked for, flagged when it was a marker.
                        deleted.push(DeletedObject {
                            key: Some(key),
                            version_id: version,
                            delete_marker: d.delete_marker.then_some(true),
                            delete_marker_version_id: if d.delete_marker {
                                d.version_id
                            } else {
                                None
                            },
                        });
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(key),
                    message: e.message().map(str::to_owned),
                    version_id: version,
                }),
            }
        }
        // An unsigned request that may delete nothing is refused outright.
        if principal == Principal::Anonymous && !any_allowed {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }
}
