//! CopyObject. Content-addressed blobs make a copy a metadata operation: the destination
//! names the source's blobs, whatever their size.

use s3s::checksum::ChecksumHasher;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use fsgate_policy::{Action, Principal, Resource};
use fsgate_store::StoreError;
use fsgate_store::objects::{NewObject, WriteCondition};

use super::object_get::{Conditions, check_conditions, timestamp};
use super::object_put::object_headers;
use super::{S3Api, body, check_key, checksum};

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

impl S3Api {
    pub(super) async fn do_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let (rc, principal) = crate::access::request_state(&req)?;
        let i = req.input;
        check_key(&i.key)?;
        let acl = self
            .object_write_acl(
                &rc,
                &principal,
                &i.bucket,
                &super::acl::object_write_acl!(i),
            )
            .await?;
        let (acl_bucket, acl_key) = (i.bucket.clone(), i.key.clone());
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
        let (mut extras, dest_key) = self
            .write_extras(&rc, &i.bucket, super::lock::write_extras_of!(i)?)
            .await?;
        let source_customer = crate::s3::sse::customer_key(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        // A copy that keeps the source's encryption names the source's bytes (metadata only);
        // one that changes it (plain to encrypted, or another key) rewrites them.
        let (b, k, v) = (sb.clone(), sk.clone(), sv.clone());
        let probe = self
            .run(&rc, move |s| s.head_version(&b, &k, v.as_deref()))
            .await?;
        if let Some(info) = &probe.extras.sse {
            crate::s3::sse::open_key(&self.keys, info, &source_customer)?;
        }
        if probe.size > super::MAX_SINGLE_UPLOAD {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "The specified copy source is larger than the maximum allowable size for a \
                     copy source: {}",
                    super::MAX_SINGLE_UPLOAD
                ),
            ));
        }
        self.admit_write(&rc, &i.bucket, Some(probe.size)).await?;
        // When policies read tags, the source read is decided again on the version about to be
        // copied, and the copy takes exactly that version (as GET does, see
        // `Gate::confirm_served`).
        let confirmed_seq = if self.gate.reads_tags() {
            let read = crate::access::versioned_action(Action::GetObject, sv.is_some());
            let source = Resource::Object {
                bucket: sb.clone(),
                key: sk.clone(),
            };
            self.gate.confirm_served(
                &rc,
                &principal,
                (read, sv.as_deref()),
                source,
                &probe.extras.tags,
            )?;
            Some(probe.seq)
        } else {
            None
        };
        let wants = extras.sse.clone();
        if !keeps_encryption(probe.extras.sse.as_ref(), wants.as_ref()) {
            if !replace_tags {
                extras.tags = probe.extras.tags.clone();
            }
            let target = CopyTarget {
                bucket: i.bucket,
                key: i.key,
                headers,
                extras,
                key_to_encrypt: dest_key,
            };
            let (out, seq) = self
                .copy_rewrite(
                    (&rc, &principal),
                    (sb, sk, sv),
                    conds,
                    &source_customer,
                    target,
                )
                .await?;
            self.settle_object_acl(&rc, &acl_bucket, &acl_key, seq, acl)
                .await?;
            return Ok(out);
        }
        let (db, dk) = (i.bucket, i.key);
        let (src, m) = self
            .run(&rc, move |s| {
                s.copy_object(&sb, &sk, sv.as_deref(), &db, &dk, |src| {
                    conds.check(src)?;
                    let changed = confirmed_seq.is_some_and(|seq| seq != src.seq);
                    if changed || !keeps_encryption(src.extras.sse.as_ref(), wants.as_ref()) {
                        return Err(StoreError::InvalidRequest(
                            "The copy source changed during the copy; retry".into(),
                        ));
                    }
                    extras.sse = src.extras.sse.clone();
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
        rc.fields().version_id = m.version_id.clone().unwrap_or_default();
        self.settle_object_acl(&rc, &acl_bucket, &acl_key, m.seq, acl)
            .await?;
        Ok(copy_response(&src, &m))
    }

    /// Copies by reading the source's plaintext and writing it anew (encrypted as the target
    /// asks): the path for copies that change encryption.
    async fn copy_rewrite(
        &self,
        (rc, principal): (&crate::context::RequestCtx, &Principal),
        (sb, sk, sv): (String, String, Option<String>),
        conds: SourceConditions,
        source_customer: &crate::s3::sse::SseRequest,
        t: CopyTarget,
    ) -> S3Result<(S3Response<CopyObjectOutput>, u64)> {
        let (source, versioned) = (
            Resource::Object {
                bucket: sb.clone(),
                key: sk.clone(),
            },
            sv.is_some(),
        );
        let source_version = sv.clone();
        let store = self.store.clone();
        let pinned = self
            .run(rc, move |_| store.pin_object(&sb, &sk, sv.as_deref()))
            .await?;
        let src = pinned.manifest.clone();
        if src.delete_marker {
            return Err(super::delete_marker_error(&src, false));
        }
        if self.gate.reads_tags() {
            let read = crate::access::versioned_action(Action::GetObject, versioned);
            self.gate.confirm_served(
                rc,
                principal,
                (read, source_version.as_deref()),
                source,
                &src.extras.tags,
            )?;
        }
        conds
            .check(&src)
            .map_err(|e| crate::error::store_error(e, &rc.request_id))?;
        let source_key = match &src.extras.sse {
            Some(info) => Some(crate::s3::sse::open_key(&self.keys, info, source_customer)?),
            None => None,
        };
        let stream = body::stream_range(pinned, 0, src.size, source_key, None);
        let enc = t
            .key_to_encrypt
            .map(|k| crate::s3::sse::Encryptor::new(k, 0));
        let (staged, _, plain) = body::stage(
            &self.store,
            rc,
            Some(stream),
            ChecksumHasher::default(),
            Some(src.size),
            enc,
        )
        .await?;
        let new = NewObject {
            headers: t.headers.unwrap_or_else(|| src.headers.clone()),
            checksums: if src.parts_count == 0 {
                src.checksums.clone()
            } else {
                Vec::new()
            },
            extras: t.extras,
            cond: WriteCondition::default(),
            plaintext: plain.map(|(n, m)| (n, hex::encode(m))),
        };
        let (db, dk) = (t.bucket, t.key);
        let m = self
            .run(rc, move |s| s.put_object(&db, &dk, staged, new))
            .await?;
        rc.fields().version_id = m.version_id.clone().unwrap_or_default();
        Ok((copy_response(&src, &m), m.seq))
    }
}

/// Where a rewriting copy goes and what it carries.
struct CopyTarget {
    bucket: String,
    key: String,
    headers: Option<fsgate_store::model::ObjectHeaders>,
    extras: fsgate_store::model::ObjectExtras,
    key_to_encrypt: Option<crate::s3::sse::DataKey>,
}

/// A copy can name the source's bytes when the target's encryption is the source's: both
/// plain; SSE-S3 kept (or asked again); the same customer key.
fn keeps_encryption(
    src: Option<&fsgate_store::model::SseInfo>,
    wants: Option<&fsgate_store::model::SseInfo>,
) -> bool {
    match (src, wants) {
        (None, None) => true,
        (Some(s), None) => crate::s3::sse::kind_of(s) == crate::s3::sse::KIND_S3,
        (Some(s), Some(w)) => {
            let kind = crate::s3::sse::kind_of(s);
            kind == crate::s3::sse::kind_of(w)
                && (kind == crate::s3::sse::KIND_S3 || s.key_md5 == w.key_md5)
        }
        (None, Some(_)) => false,
    }
}

fn copy_response(
    src: &fsgate_store::model::ObjectManifest,
    m: &fsgate_store::model::ObjectManifest,
) -> S3Response<CopyObjectOutput> {
    let c = checksum::from_stored(&m.checksums);
    let sse_out = crate::s3::sse::response_fields(m.extras.sse.as_ref());
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
        version_id: super::shown_version(m),
        copy_source_version_id: super::shown_version(src),
        server_side_encryption: sse_out.0.map(ServerSideEncryption::from),
        sse_customer_algorithm: sse_out.1,
        sse_customer_key_md5: sse_out.2,
        ssekms_key_id: crate::s3::sse::kms_key_id(m.extras.sse.as_ref()),
        ..Default::default()
    };
    S3Response::new(out)
}
