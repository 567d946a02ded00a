//! Object Lock: bucket configuration (default retention), per-version retention and legal
//! hold, and the lock headers of PutObject, CopyObject and CreateMultipartUpload.
//!
//! The store refuses to remove a protected version (`check_lock`); this module decides who may
//! set, extend or shorten protection: COMPLIANCE can only be extended, by anyone with
//! PutObjectRetention, and never shortened or removed (root included); GOVERNANCE can be
//! shortened or removed only with `x-amz-bypass-governance-retention` and the
//! `s3:BypassGovernanceRetention` permission.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};

use fsgate_store::StoreError;
use fsgate_store::model::{ObjectExtras, Retention, RetentionMode};

use crate::access::request_state;
use crate::s3::sse::{DataKey, SseRequest};

use super::object_get::timestamp;
use super::{S3Api, ctx, tagging};

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// A bucket's default retention, stored as its `object-lock` document.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct DefaultRule {
    mode: RetentionMode,
    days: u32,
}

fn mode_of(s: &str) -> S3Result<RetentionMode> {
    match s {
        ObjectLockRetentionMode::GOVERNANCE => Ok(RetentionMode::Governance),
        ObjectLockRetentionMode::COMPLIANCE => Ok(RetentionMode::Compliance),
        _ => Err(s3_error!(
            InvalidArgument,
            "Unknown object lock mode; use GOVERNANCE or COMPLIANCE"
        )),
    }
}

fn mode_name(m: RetentionMode) -> &'static str {
    match m {
        RetentionMode::Governance => ObjectLockRetentionMode::GOVERNANCE,
        RetentionMode::Compliance => ObjectLockRetentionMode::COMPLIANCE,
    }
}

fn ns_of(t: &Timestamp) -> u64 {
    let nanos = time::OffsetDateTime::from(t.clone()).unix_timestamp_nanos();
    u64::try_from(nanos).unwrap_or(0)
}

fn no_lock_config() -> S3Error {
    s3_error!(
        InvalidRequest,
        "Bucket is missing Object Lock Configuration"
    )
}

/// The `WriteExtras` of a write input (PutObject, CopyObject, CreateMultipartUpload share the
/// field names); evaluates to `S3Result<WriteExtras>`.
macro_rules! write_extras_of {
    ($i:expr) => {
        crate::s3::sse::SseRequest::from_headers(
            (
                $i.server_side_encryption
                    .as_ref()
                    .map(s3s::dto::ServerSideEncryption::as_str),
                $i.ssekms_key_id.as_deref(),
            ),
            $i.sse_customer_algorithm.as_deref(),
            $i.sse_customer_key.as_deref(),
            $i.sse_customer_key_md5.as_deref(),
        )
        .map(|sse| super::lock::WriteExtras {
            tagging: $i.tagging.as_deref(),
            mode: $i.object_lock_mode.as_ref(),
            until: $i.object_lock_retain_until_date.as_ref(),
            legal_hold: $i.object_lock_legal_hold_status.as_ref(),
            sse,
        })
    };
}
pub(super) use write_extras_of;

/// What a write request says about tags and lock state, before the bucket is known.
#[derive(Debug, Default)]
pub struct WriteExtras<'a> {
    /// `x-amz-tagging`.
    pub tagging: Option<&'a str>,
    /// `x-amz-object-lock-mode`.
    pub mode: Option<&'a ObjectLockMode>,
    /// `x-amz-object-lock-retain-until-date`.
    pub until: Option<&'a Timestamp>,
    /// `x-amz-object-lock-legal-hold`.
    pub legal_hold: Option<&'a ObjectLockLegalHoldStatus>,
    /// The encryption the request asks for (the bucket default applies when it asks none).
    pub sse: SseRequest,
}

impl S3Api {
    /// Checks that the bucket exists and works out the new version's tags, lock state and
    /// encryption: explicit lock headers (only in a bucket with Object Lock), else the
    /// bucket's default retention; the requested encryption, else the bucket's default. Returns
    /// the data key to encrypt with, if any.
    pub(super) async fn write_extras(
        &self,
        rc: &crate::context::RequestCtx,
        bucket: &str,
        w: WriteExtras<'_>,
    ) -> S3Result<(ObjectExtras, Option<DataKey>)> {
        let tags = tagging::from_header(w.tagging)?;
        let b = bucket.to_owned();
        let (rec, default, encryption) = self
            .run(rc, move |s| {
                let rec = s.bucket(&b)?;
                let doc = if rec.object_lock {
                    s.bucket_config(&b, "object-lock")?
                } else {
                    None
                };
                let enc = s.bucket_config(&b, super::sse::DOC)?;
                Ok((rec, doc, enc))
            })
            .await?;
        // The bucket's default applies to writes that ask for no encryption, and its KMS key
        // to SSE-KMS writes that name none (then the ring's default key, made on first use).
        let enc_default = encryption.as_deref().map(crate::s3::sse::BucketDefault::of);
        let mut sse = match (w.sse, &enc_default) {
            (SseRequest::None, Some(d)) if d.kms => SseRequest::Kms {
                key_id: d.key.clone(),
            },
            (SseRequest::None, Some(_)) => SseRequest::S3,
            (SseRequest::Kms { key_id: None }, Some(d)) if d.kms => SseRequest::Kms {
                key_id: d.key.clone(),
            },
            (other, _) => other,
        };
        if let SseRequest::Kms { key_id } = &mut sse
            && key_id.is_none()
        {
            let ring = self.keys.clone();
            self.run(rc, move |s| {
                ring.ensure_default(s)
                    .map_err(|e| fsgate_store::StoreError::Io(std::io::Error::other(e.to_string())))
            })
            .await?;
            *key_id = Some(crate::s3::sse::kms::DEFAULT_KEY.to_owned());
        }
        let (key, sse_info) = match crate::s3::sse::new_key(&self.keys, &sse)? {
            Some((k, info)) => (Some(k), Some(info)),
            None => (None, None),
        };
        let explicit = w.mode.is_some() || w.until.is_some() || w.legal_hold.is_some();
        if explicit && !rec.object_lock {
            return Err(no_lock_config());
        }
        let now = fsgate_store::now_ns();
        let retention = match (w.mode, w.until) {
            (Some(m), Some(u)) => {
                let until_ns = ns_of(u);
                if until_ns <= now {
                    return Err(s3_error!(
                        InvalidArgument,
                        "The retain until date must be in the future!"
                    ));
                }
                Some(Retention {
                    mode: mode_of(m.as_str())?,
                    until_ns,
                })
            }
            (None, None) => match default
                .as_deref()
                .map(serde_json::from_slice::<DefaultRule>)
            {
                Some(Ok(d)) => Some(Retention {
                    mode: d.mode,
                    until_ns: now + u64::from(d.days) * DAY_NS,
                }),
                _ => None,
            },
            _ => {
                return Err(s3_error!(
                    InvalidArgument,
                    "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
                ));
            }
        };
        let legal_hold = w
            .legal_hold
            .is_some_and(|h| h.as_str() == ObjectLockLegalHoldStatus::ON);
        Ok((
            ObjectExtras {
                tags,
                retention,
                legal_hold,
                sse: sse_info,
            },
            key,
        ))
    }

    pub(super) async fn do_put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let cfg = i.object_lock_configuration.ok_or_else(|| {
            s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
        })?;
        if cfg
            .object_lock_enabled
            .as_ref()
            .map(ObjectLockEnabled::as_str)
            != Some(ObjectLockEnabled::ENABLED)
        {
            return Err(s3_error!(
                MalformedXML,
                "ObjectLockEnabled must be 'Enabled'"
            ));
        }
        let rule = match cfg.rule.and_then(|r| r.default_retention) {
            None => None,
            Some(d) => {
                let mode = mode_of(d.mode.as_ref().map_or("", ObjectLockRetentionMode::as_str))?;
                let days = match (d.days, d.years) {
                    (Some(n), None) if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
                    (None, Some(y)) if y > 0 => {
                        u32::try_from(y).unwrap_or(u32::MAX).saturating_mul(365)
                    }
                    _ => {
                        return Err(s3_error!(
                            MalformedXML,
                            "Default retention needs a positive Days or Years, not both"
                        ));
                    }
                };
                Some(DefaultRule { mode, days })
            }
        };
        let doc = rule
            .map(|r| serde_json::to_vec(&r))
            .transpose()
            .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
        let b = i.bucket;
        self.run(&rc, move |s| {
            if !s.bucket(&b)?.object_lock {
                s.enable_object_lock(&b)?;
            }
            s.set_bucket_config(&b, "object-lock", doc.as_deref())
        })
        .await?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    pub(super) async fn do_get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let (rec, doc) = self
            .run(&rc, move |s| {
                Ok((s.bucket(&b)?, s.bucket_config(&b, "object-lock")?))
            })
            .await?;
        if !rec.object_lock {
            return Err(S3Error::with_message(
                S3ErrorCode::ObjectLockConfigurationNotFoundError,
                "Object Lock configuration does not exist for this bucket",
            ));
        }
        let rule = doc
            .as_deref()
            .and_then(|d| serde_json::from_slice::<DefaultRule>(d).ok())
            .map(|r| ObjectLockRule {
                default_retention: Some(DefaultRetention {
                    days: i32::try_from(r.days).ok(),
                    mode: Some(ObjectLockRetentionMode::from_static(mode_name(r.mode))),
                    years: None,
                }),
            });
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule,
            }),
        }))
    }

    pub(super) async fn do_put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
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
        let new = match i.retention {
            Some(ObjectLockRetention {
                mode: Some(m),
                retain_until_date: Some(u),
            }) => Some(Retention {
                mode: mode_of(m.as_str())?,
                until_ns: ns_of(&u),
            }),
            Some(ObjectLockRetention {
                mode: None,
                retain_until_date: None,
            })
            | None => None,
            Some(_) => {
                return Err(s3_error!(
                    MalformedXML,
                    "Retention needs both Mode and RetainUntilDate"
                ));
            }
        };
        let now = fsgate_store::now_ns();
        if new.is_some_and(|r| r.until_ns <= now) {
            return Err(s3_error!(
                InvalidArgument,
                "The retain until date must be in the future!"
            ));
        }
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        self.run(&rc, move |s| {
            if !s.bucket(&b)?.object_lock {
                return Err(StoreError::InvalidRequest(
                    "Bucket is missing Object Lock Configuration".into(),
                ));
            }
            s.update_version(&b, &k, v.as_deref(), |m| {
                if let Some(old) = m.extras.retention.filter(|r| r.until_ns > now) {
                    let keeps =
                        new.is_some_and(|n| n.mode == old.mode && n.until_ns >= old.until_ns);
                    let allowed = match old.mode {
                        RetentionMode::Compliance => keeps,
                        RetentionMode::Governance => keeps || bypass,
                    };
                    if !allowed {
                        return Err(StoreError::ObjectLocked);
                    }
                }
                m.extras.retention = new;
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    pub(super) async fn do_get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let m = self
            .locked_version(&rc, i.bucket, i.key, i.version_id)
            .await?;
        let Some(r) = m.extras.retention else {
            return Err(S3Error::with_message(
                S3ErrorCode::NoSuchObjectLockConfiguration,
                "The specified object does not have a ObjectLock configuration",
            ));
        };
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from_static(mode_name(r.mode))),
                retain_until_date: Some(timestamp(r.until_ns)),
            }),
        }))
    }

    pub(super) async fn do_put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let on = match i
            .legal_hold
            .and_then(|h| h.status)
            .as_ref()
            .map(ObjectLockLegalHoldStatus::as_str)
        {
            Some(ObjectLockLegalHoldStatus::ON) => true,
            Some(ObjectLockLegalHoldStatus::OFF) => false,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "LegalHold Status must be ON or OFF"
                ));
            }
        };
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        self.run(&rc, move |s| {
            if !s.bucket(&b)?.object_lock {
                return Err(StoreError::InvalidRequest(
                    "Bucket is missing Object Lock Configuration".into(),
                ));
            }
            s.update_version(&b, &k, v.as_deref(), |m| {
                m.extras.legal_hold = on;
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    pub(super) async fn do_get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let m = self
            .locked_version(&rc, i.bucket, i.key, i.version_id)
            .await?;
        let status = if m.extras.legal_hold {
            ObjectLockLegalHoldStatus::ON
        } else {
            ObjectLockLegalHoldStatus::OFF
        };
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(status)),
            }),
        }))
    }

    /// A version of an object in a bucket with Object Lock (else `InvalidRequest`).
    async fn locked_version(
        &self,
        rc: &crate::context::RequestCtx,
        b: String,
        k: String,
        v: Option<String>,
    ) -> S3Result<fsgate_store::model::ObjectManifest> {
        let named = v.is_some();
        let (rec, m) = self
            .run(rc, move |s| {
                Ok((s.bucket(&b)?, s.head_version(&b, &k, v.as_deref())?))
            })
            .await?;
        if !rec.object_lock {
            return Err(no_lock_config());
        }
        if m.delete_marker {
            return Err(super::delete_marker_error(&m, named));
        }
        Ok(m)
    }
}
