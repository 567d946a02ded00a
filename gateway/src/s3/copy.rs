//! CopyObject. Content-addressed blobs make a copy a metadata operation: the destination
//! names the source's blobs, whatever their size.

use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use fsgate_store::StoreError;
use fsgate_store::objects::{NewObject, WriteCondition};

use super::object_get::{Conditions, check_conditions, timestamp};
use super::object_put::object_headers;
use super::{FsGate, check_key, checksum, ctx};

/// Owned copy-source conditions, checked against the source under the store's locks.
#[derive(Debug, Clone, Default)]
pub struct SourceConditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
}

impl SourceConditions {
    /// From the `x-amz-copy-source-if-*` fields.
    pub fn new(
        if_match: Option<&ETagCondition>,
        if_none_match: Option<&ETagCondition>,
        if_modified_since: Option<&Timestamp>,
        if_unmodified_since: Option<&Timestamp>,
    ) -> Self {
        Self {
            if_match: if_match.cloned(),
            if_none_match: if_none_match.cloned(),
            if_modified_since: if_modified_since.cloned(),
            if_unmodified_since: if_unmodified_since.cloned(),
        }
    }

    /// AWS: a failed copy-source condition is always 412.
    pub fn check(&self, m: &fsgate_store::model::ObjectManifest) -> Result<(), StoreError> {
        check_conditions(
            m,
            &Conditions {
                if_match: self.if_match.as_ref(),
                if_none_match: self.if_none_match.as_ref(),
                if_modified_since: self.if_modified_since.as_ref(),
                if_unmodified_since: self.if_unmodified_since.as_ref(),
            },
            S3ErrorCode::PreconditionFailed,
        )
        .map_err(|_| StoreError::PreconditionFailed)
    }
}

/// The (bucket, key, version) of a copy source.
pub fn source_of(src: &CopySource) -> S3Result<(String, String, Option<String>)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_deref().map(str::to_owned),
        )),
        _ => Err(s3_error!(
            NotImplemented,
            "Only bucket/key copy sources are supported"
        )),
    }
}

impl FsGate {
    pub(super) async fn do_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        check_key(&i.key)?;
        let (sb, sk, sv) = source_of(&i.copy_source)?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str().eq_ignore_ascii_case("REPLACE"));
        if !replace && sb == i.bucket && sk == i.key && sv.is_none() {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let headers = replace.then(|| {
            object_headers(
                i.content_type.as_ref(),
                i.content_encoding.as_ref(),
                i.content_disposition.as_ref(),
                i.content_language.as_ref(),
                i.cache_control.as_ref(),
                i.expires.as_ref(),
                i.metadata.as_ref(),
            )
        });
        let conds = SourceConditions::new(
            i.copy_source_if_match.as_ref(),
            i.copy_source_if_none_match.as_ref(),
            i.copy_source_if_modified_since.as_ref(),
            i.copy_source_if_unmodified_since.as_ref(),
        );
        let replace_tags = i
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str().eq_ignore_ascii_case("REPLACE"));
        let (mut extras, _) = self
            .write_extras(
                &rc,
                &i.bucket,
                super::lock::WriteExtras {
                    tagging: i.tagging.as_deref(),
                    mode: i.object_lock_mode.as_ref(),
                    until: i.object_lock_retain_until_date.as_ref(),
                    legal_hold: i.object_lock_legal_hold_status.as_ref(),
                    sse: crate::sse::SseRequest::from_headers(
                        i.server_side_encryption
                            .as_ref()
                            .map(ServerSideEncryption::as_str),
                        i.sse_customer_algorithm.as_deref(),
                        i.sse_customer_key.as_deref(),
                        i.sse_customer_key_md5.as_deref(),
                    )?,
                },
            )
            .await?;
        // A copy names the source's bytes: it keeps the source's encryption. It cannot turn a
        // plain object into an encrypted one (or change keys) without rewriting the bytes.
        let wants_sse = extras.sse.as_ref().map(|s| s.kind.clone());
        let source_customer = crate::sse::customer_key(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let master = self.master.clone();
        let (db, dk) = (i.bucket, i.key);
        let (src, m) = self
            .run(&rc, move |s| {
                s.copy_object(&sb, &sk, sv.as_deref(), &db, &dk, |src| {
                    conds.check(src)?;
                    match (&src.extras.sse, wants_sse.as_deref()) {
                        (None, None) => extras.sse = None,
                        (Some(info), None | Some(crate::sse::KIND_S3))
                            if info.kind == crate::sse::KIND_S3 =>
                        {
                            extras.sse = src.extras.sse.clone();
                        }
                        (Some(info), Some(crate::sse::KIND_C)) if info.kind == crate::sse::KIND_C => {
                            // Same customer key at both ends: check it opens the source.
                            crate::sse::open_key(&master, info, &source_customer).map_err(|_| {
                                StoreError::InvalidRequest(
                                    "The copy source customer key does not match the object.".into(),
                                )
                            })?;
                            if extras.sse.as_ref().map(|s| &s.key_md5) != Some(&info.key_md5) {
                                return Err(StoreError::InvalidRequest(
                                    "fsgate copies SSE-C objects only under the same customer key".into(),
                                ));
                            }
                            extras.sse = src.extras.sse.clone();
                        }
                        _ => {
                            return Err(StoreError::InvalidRequest(
                                "fsgate cannot change an object's encryption in a copy yet; download and upload it instead".into(),
                            ));
                        }
                    }
                    Ok(NewObject {
                        headers: headers.unwrap_or_else(|| src.headers.clone()),
                        checksums: src.checksums.clone(),
                        extras: {
                            if !replace_tags {
                                extras.tags = src.extras.tags.clone();
                            }
                            extras
                        },
                        cond: WriteCondition::default(),
                        plaintext: None,
                    })
                })
            })
            .await?;
        let c = checksum::from_stored(&m.checksums);
        let sse_out = crate::sse::response_fields(m.extras.sse.as_ref());
        let out = CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(m.etag.clone())),
                last_modified: Some(timestamp(m.modified_ns)),
                checksum_crc32: c.checksum_crc32,
                checksum_crc32c: c.checksum_crc32c,
                checksum_crc64nvme: c.checksum_crc64nvme,
                checksum_sha1: c.checksum_sha1,
                checksum_sha256: c.checksum_sha256,
                ..Default::default()
            }),
            version_id: super::shown_version(&m),
            copy_source_version_id: super::shown_version(&src),
            server_side_encryption: sse_out.0.map(ServerSideEncryption::from),
            sse_customer_algorithm: sse_out.1,
            sse_customer_key_md5: sse_out.2,
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}
