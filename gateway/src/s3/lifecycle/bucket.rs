//! Put/Get/DeleteBucketLifecycleConfiguration (the worker is `worker.rs`).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::{DOC, Rule, validate};
use crate::s3::object_get::timestamp;
use crate::s3::{S3Api, ctx, tagging};

fn bad(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg.into())
}

fn days(d: Option<i32>, what: &str) -> S3Result<Option<u32>> {
    d.map(|n| {
        u32::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(format!("'{what}' must be a positive integer")))
    })
    .transpose()
}

fn size(n: Option<i64>) -> Option<u64> {
    n.and_then(|n| u64::try_from(n).ok())
}

fn malformed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// Transitions: fsgate keeps every object in STANDARD, so a transition names a storage class
/// this server does not have, which AWS answers with InvalidStorageClass.
fn refuse_transitions(r: &LifecycleRule) -> S3Result<()> {
    let classes = r
        .transitions
        .iter()
        .flatten()
        .filter_map(|t| t.storage_class.as_ref().map(|c| c.as_str().to_owned()))
        .chain(
            r.noncurrent_version_transitions
                .iter()
                .flatten()
                .filter_map(|t| t.storage_class.as_ref().map(|c| c.as_str().to_owned())),
        );
    let any = r.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions
            .as_ref()
            .is_some_and(|t| !t.is_empty());
    if !any {
        return Ok(());
    }
    let named: Vec<String> = classes.collect();
    Err(S3Error::with_message(
        S3ErrorCode::InvalidStorageClass,
        format!(
            "The storage class you specified is not valid: fsgate keeps every object in STANDARD, so it has no {} to transition to",
            if named.is_empty() {
                "other storage class".to_owned()
            } else {
                named.join(", ")
            }
        ),
    ))
}

/// `Expiration.Date`: AWS takes only midnight UTC.
fn midnight(d: Timestamp) -> S3Result<u64> {
    let t = time::OffsetDateTime::from(d);
    if t.time() != time::Time::MIDNIGHT || t.offset() != time::UtcOffset::UTC {
        return Err(bad("'Date' must be at midnight GMT"));
    }
    Ok(u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0))
}

pub(crate) fn rule_of(r: LifecycleRule) -> S3Result<Rule> {
    // AWS: a Status other than Enabled or Disabled is a schema error.
    let enabled = match r.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        _ => return Err(malformed()),
    };
    refuse_transitions(&r)?;
    let mut out = Rule {
        id: r.id.unwrap_or_default(),
        enabled,
        prefix: r.prefix.unwrap_or_default(),
        ..Rule::default()
    };
    if let Some(f) = r.filter {
        if let Some(p) = f.prefix {
            out.prefix = p;
        }
        if let Some(t) = f.tag {
            out.tags = vec![(t.key.unwrap_or_default(), t.value.unwrap_or_default())];
        }
        out.size_greater_than = size(f.object_size_greater_than);
        out.size_less_than = size(f.object_size_less_than);
        if let Some(and) = f.and {
            if let Some(p) = and.prefix {
                out.prefix = p;
            }
            if let Some(tags) = and.tags {
                out.tags = tagging::from_set(tags, tagging::MAX_OBJECT_TAGS)?;
            }
            out.size_greater_than = out.size_greater_than.or(size(and.object_size_greater_than));
            out.size_less_than = out.size_less_than.or(size(and.object_size_less_than));
        }
    }
    if let Some(e) = r.expiration {
        out.expiration_days = days(e.days, "Days")?;
        out.expiration_date_ns = e.date.map(midnight).transpose()?;
        out.expired_object_delete_marker = e.expired_object_delete_marker.unwrap_or(false);
    }
    if let Some(n) = r.noncurrent_version_expiration {
        out.noncurrent_days = days(n.noncurrent_days, "NoncurrentDays")?;
        out.newer_noncurrent_versions = n
            .newer_noncurrent_versions
            .and_then(|v| u32::try_from(v).ok());
        if out.noncurrent_days.is_none() {
            return Err(bad("NoncurrentVersionExpiration needs NoncurrentDays"));
        }
    }
    if let Some(a) = r.abort_incomplete_multipart_upload {
        out.abort_upload_days = days(a.days_after_initiation, "DaysAfterInitiation")?;
    }
    Ok(out)
}

fn dto_of(r: Rule) -> LifecycleRule {
    let tag_set = crate::s3::tagging::to_set(&r.tags);
    let filter = if r.tags.len() > 1
        || (!r.tags.is_empty() && !r.prefix.is_empty())
        || r.size_greater_than.is_some()
        || r.size_less_than.is_some()
    {
        LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: Some(r.prefix.clone()),
                tags: (!tag_set.is_empty()).then_some(tag_set),
                object_size_greater_than: r.size_greater_than.and_then(|n| i64::try_from(n).ok()),
                object_size_less_than: r.size_less_than.and_then(|n| i64::try_from(n).ok()),
            }),
            ..LifecycleRuleFilter::default()
        }
    } else if let Some(t) = tag_set.into_iter().next() {
        LifecycleRuleFilter {
            tag: Some(t),
            ..LifecycleRuleFilter::default()
        }
    } else {
        LifecycleRuleFilter {
            prefix: Some(r.prefix.clone()),
            ..LifecycleRuleFilter::default()
        }
    };
    let expiration = (r.expiration_days.is_some()
        || r.expiration_date_ns.is_some()
        || r.expired_object_delete_marker)
        .then(|| LifecycleExpiration {
            date: r.expiration_date_ns.map(timestamp),
            days: r.expiration_days.and_then(|d| i32::try_from(d).ok()),
            expired_object_delete_marker: r.expired_object_delete_marker.then_some(true),
        });
    LifecycleRule {
        abort_incomplete_multipart_upload: r.abort_upload_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: i32::try_from(d).ok(),
            }
        }),
        expiration,
        filter: Some(filter),
        id: (!r.id.is_empty()).then_some(r.id),
        noncurrent_version_expiration: r.noncurrent_days.map(|d| NoncurrentVersionExpiration {
            newer_noncurrent_versions: r
                .newer_noncurrent_versions
                .and_then(|v| i32::try_from(v).ok()),
            noncurrent_days: i32::try_from(d).ok(),
        }),
        noncurrent_version_transitions: None,
        prefix: None,
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        transitions: None,
    }
}

fn internal(e: &serde_json::Error) -> S3Error {
    S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
}

impl S3Api {
    pub(in crate::s3) async fn do_put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let cfg = i.lifecycle_configuration.ok_or_else(malformed)?;
        let rules = cfg
            .rules
            .into_iter()
            .map(rule_of)
            .collect::<S3Result<Vec<Rule>>>()?;
        validate(&rules).map_err(|e| bad(e.to_string()))?;
        let doc = serde_json::to_vec(&rules).map_err(|e| internal(&e))?;
        let b = i.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, DOC, Some(&doc)))
            .await?;
        Ok(S3Response::new(
            PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    pub(in crate::s3) async fn do_get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let doc = self.run(&rc, move |s| s.bucket_config(&b, DOC)).await?;
        let Some(doc) = doc else {
            return Err(S3Error::with_message(
                S3ErrorCode::NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist",
            ));
        };
        let rules: Vec<Rule> = serde_json::from_slice(&doc).map_err(|e| internal(&e))?;
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(rules.into_iter().map(dto_of).collect()),
            transition_default_minimum_object_size: None,
        }))
    }

    pub(in crate::s3) async fn do_delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, DOC, None))
            .await?;
        Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
    }
}
