//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
//! ListMultipartUploads.

use s3s::checksum::ChecksumHasher;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_store::StoreError;

use super::copy::{SourceConditions, source_of};
use super::object_get::timestamp;
use super::object_put::object_headers;
use super::{MIN_PART_SIZE, S3Api, body, check_key, checksum, ctx};
use crate::ownership::{StoredAcl, upload_acl_doc};

impl S3Api {
    /// The encryptor for part `n` of an encrypted upload (SSE-C uploads need the customer
    /// key again on every part, as in AWS).
    fn part_encryptor(
        &self,
        upload: &fsgate_store::model::UploadRecord,
        n: u32,
        algorithm: Option<&str>,
        key: Option<&str>,
        key_md5: Option<&str>,
    ) -> S3Result<Option<crate::s3::sse::Encryptor>> {
        let Some(info) = &upload.extras.sse else {
            return Ok(None);
        };
        let req = crate::s3::sse::customer_key(algorithm, key, key_md5)?;
        let key = crate::s3::sse::open_key(&self.keys, info, &req)?;
        Ok(Some(crate::s3::sse::Encryptor::new(key, n)))
    }
}

fn part_number(n: i32) -> S3Result<u32> {
    match u32::try_from(n) {
        Ok(n @ 1..=10000) => Ok(n),
        _ => Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )),
    }
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against the source size.
pub(crate) fn copy_range(range: Option<&String>, size: u64) -> S3Result<(u64, u64)> {
    let Some(r) = range else { return Ok((0, size)) };
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let spec = r.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last || last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok((first, last + 1))
}

impl S3Api {
    pub(super) async fn do_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
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
        let headers = object_headers(
            i.content_type.as_ref(),
            i.content_encoding.as_ref(),
            i.content_disposition.as_ref(),
            i.content_language.as_ref(),
            i.cache_control.as_ref(),
            i.expires.as_ref(),
            i.metadata.as_ref(),
        );
        let wanted = checksum::upload_checksum(
            i.checksum_algorithm.as_ref().map(ChecksumAlgorithm::as_str),
            i.checksum_type.as_ref().map(ChecksumType::as_str),
        )?;
        let checksum_type = wanted
            .as_ref()
            .map(|(_, kind)| ChecksumType::from_static(kind.s3_name()));
        let algo = wanted.map(|(a, kind)| checksum::upload_checksum_record(&a, kind));
        let initiator = rc.fields().principal.clone();
        let (extras, _) = self
            .write_extras(&rc, &i.bucket, super::lock::write_extras_of!(i)?)
            .await?;
        let sse_out = crate::s3::sse::response_fields(extras.sse.as_ref());
        let kms_key_id = crate::s3::sse::kms_key_id(extras.sse.as_ref());
        let (b, k, a) = (i.bucket.clone(), i.key.clone(), algo);
        // The ACL waits beside the upload until it completes.
        let id = self
            .run(&rc, move |s| {
                let id = s.create_upload(&b, &k, headers, a, &initiator, extras)?;
                if let Some(acl) = acl {
                    s.set_bucket_config(&b, &upload_acl_doc(&id), Some(&acl.encode()))?;
                }
                Ok(id)
            })
            .await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(id),
            checksum_algorithm: i.checksum_algorithm,
            checksum_type,
            server_side_encryption: sse_out.0.map(ServerSideEncryption::from),
            sse_customer_algorithm: sse_out.1,
            sse_customer_key_md5: sse_out.2,
            ssekms_key_id: kms_key_id,
            ..Default::default()
        }))
    }

    pub(super) async fn do_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let rc = ctx(&req)?;
        let trailers = req.trailing_headers.clone();
        let headers = req.headers.clone();
        let i = req.input;
        let n = part_number(i.part_number)?;
        let (b, k, u) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
        let upload = self.run(&rc, move |s| s.upload(&b, &k, &u)).await?;
        let enc = self.part_encryptor(
            &upload,
            n,
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let md5 = checksum::content_md5(i.content_md5.as_ref())?;
        let claimed = checksum::Claimed::from_fields([
            i.checksum_crc32.as_ref(),
            i.checksum_crc32c.as_ref(),
            i.checksum_crc64nvme.as_ref(),
            i.checksum_sha1.as_ref(),
            i.checksum_sha256.as_ref(),
        ]);
        let mut hasher = checksum::hasher_for(
            i.checksum_algorithm.as_ref().map(ChecksumAlgorithm::as_str),
            &claimed,
            &headers,
        )?;
        // The upload's own algorithm, always: completion combines the parts' checksums.
        if let Some((algo, _)) = checksum::upload_checksum_of(upload.checksum_algorithm.as_deref())
        {
            checksum::enable(&mut hasher, &algo)?;
        }
        let expected_len = i.content_length.and_then(|n| u64::try_from(n).ok());
        super::check_upload_size(expected_len)?;
        self.admit_write(&rc, &i.bucket, expected_len).await?;
        let (staged, computed, plain) =
            body::stage(&self.store, &rc, i.body, hasher, expected_len, enc).await?;
        checksum::verify_md5(md5, &plain.map_or(staged.md5, |p| p.1))?;
        let trailer_map = trailers.as_ref().and_then(s3s::TrailingHeaders::take);
        checksum::verify(&computed, &claimed, trailer_map.as_ref())?;
        let stored = checksum::to_stored(&computed);
        let (b, k, u) = (i.bucket, i.key, i.upload_id);
        let part = self
            .run(&rc, move |s| {
                s.put_part(&b, &k, &u, n, staged, stored, plain)
            })
            .await?;
        let c = checksum::from_stored(&part.checksums);
        let sse_out = crate::s3::sse::response_fields(upload.extras.sse.as_ref());
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            server_side_encryption: sse_out.0.map(ServerSideEncryption::from),
            sse_customer_algorithm: sse_out.1,
            sse_customer_key_md5: sse_out.2,
            ssekms_key_id: crate::s3::sse::kms_key_id(upload.extras.sse.as_ref()),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            ..Default::default()
        }))
    }

    pub(super) async fn do_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let (rc, principal) = crate::access::request_state(&req)?;
        let i = req.input;
        let n = part_number(i.part_number)?;
        let (b, k, u) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
        let upload = self.run(&rc, move |s| s.upload(&b, &k, &u)).await?;
        let enc = self.part_encryptor(
            &upload,
            n,
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let (sb, sk, sv) = source_of(&i.copy_source)?;
        let source_version = sv.clone();
        let (source, versioned) = (
            fsgate_policy::Resource::Object {
                bucket: sb.clone(),
                key: sk.clone(),
            },
            sv.is_some(),
        );
        let store = self.store.clone();
        let pinned = self
            .run(&rc, move |_| store.pin_object(&sb, &sk, sv.as_deref()))
            .await?;
        if pinned.manifest.delete_marker {
            return Err(super::delete_marker_error(&pinned.manifest, false));
        }
        let src = pinned.manifest.clone();
        // The source read, decided again on the version pinned for reading when policies read
        // tags (see `Gate::confirm_served`).
        if self.gate.reads_tags() {
            let read = crate::access::versioned_action(fsgate_policy::Action::GetObject, versioned);
            self.gate.confirm_served(
                &rc,
                &principal,
                (read, source_version.as_deref()),
                source,
                &src.extras.tags,
            )?;
        }
        let conds = SourceConditions::new(
            i.copy_source_if_match.as_ref(),
            i.copy_source_if_none_match.as_ref(),
            i.copy_source_if_modified_since.as_ref(),
            i.copy_source_if_unmodified_since.as_ref(),
        );
        conds
            .check(&src)
            .map_err(|e| crate::error::store_error(e, &rc.request_id))?;
        let (start, end) = copy_range(i.copy_source_range.as_ref(), src.size)?;
        let source_key = self.read_key(
            src.extras.sse.as_ref(),
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let stream = body::stream_range(pinned, start, end - start, source_key, None);
        let (staged, _, plain) = body::stage(
            &self.store,
            &rc,
            Some(stream),
            ChecksumHasher::default(),
            Some(end - start),
            enc,
        )
        .await?;
        let (b, k, u) = (i.bucket, i.key, i.upload_id);
        let part = self
            .run(&rc, move |s| {
                s.put_part(&b, &k, &u, n, staged, Vec::new(), plain)
            })
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(part.etag)),
                last_modified: Some(timestamp(part.modified_ns)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    pub(super) async fn do_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let parts = i
            .multipart_upload
            .and_then(|m| m.parts)
            .ok_or_else(|| s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"))?;
        let mut chosen = Vec::with_capacity(parts.len());
        // The checksums the client gives for each part, to check against the parts' own.
        let mut part_claims = Vec::with_capacity(parts.len());
        for p in parts {
            let (Some(n), Some(e)) = (p.part_number, p.e_tag) else {
                return Err(s3_error!(
                    MalformedXML,
                    "Each part needs a PartNumber and an ETag"
                ));
            };
            chosen.push((part_number(n)?, e.value().to_owned()));
            part_claims.push(checksum::Claimed::from_fields([
                p.checksum_crc32.as_ref(),
                p.checksum_crc32c.as_ref(),
                p.checksum_crc64nvme.as_ref(),
                p.checksum_sha1.as_ref(),
                p.checksum_sha256.as_ref(),
            ]));
        }
        let whole_claim = checksum::Claimed::from_fields([
            i.checksum_crc32.as_ref(),
            i.checksum_crc32c.as_ref(),
            i.checksum_crc64nvme.as_ref(),
            i.checksum_sha1.as_ref(),
            i.checksum_sha256.as_ref(),
        ]);
        let (b, k, u) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
        let upload = self.run(&rc, move |s| s.upload(&b, &k, &u)).await?;
        let algo = checksum::upload_checksum_of(upload.checksum_algorithm.as_deref());
        if let Some(t) = &i.checksum_type
            && algo.as_ref().map(|(_, kind)| kind.s3_name()) != Some(t.as_str())
        {
            return Err(s3_error!(
                InvalidRequest,
                "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                algo.as_ref().map_or("null", |(_, kind)| kind.s3_name())
            ));
        }
        let cond = super::write_condition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        let (b, k, u) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
        let m = self
            .run(&rc, move |s| {
                s.complete_upload(&b, &k, &u, &chosen, MIN_PART_SIZE, &cond, |parts| {
                    completed_checksums(parts, &part_claims, algo, &whole_claim)
                })
            })
            .await?;
        rc.fields().version_id = m.version_id.clone().unwrap_or_default();
        let (b, u) = (i.bucket.clone(), i.upload_id);
        let acl = self
            .run(&rc, move |s| {
                let doc = upload_acl_doc(&u);
                let acl = s.bucket_config(&b, &doc)?;
                if acl.is_some() {
                    s.set_bucket_config(&b, &doc, None)?;
                }
                Ok(acl.as_deref().and_then(StoredAcl::decode))
            })
            .await?;
        self.settle_object_acl(&rc, &i.bucket, &i.key, m.seq, acl)
            .await?;
        let c = checksum::from_stored(&m.checksums);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            e_tag: Some(ETag::Strong(m.etag.clone())),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_type: c.checksum_type,
            server_side_encryption: crate::s3::sse::response_fields(m.extras.sse.as_ref())
                .0
                .map(ServerSideEncryption::from),
            ssekms_key_id: crate::s3::sse::kms_key_id(m.extras.sse.as_ref()),
            version_id: m.version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn do_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let (b, k, u) = (i.bucket, i.key, i.upload_id);
        self.run(&rc, move |s| s.abort_upload(&b, &k, &u)).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn do_list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let max = match i.max_parts {
            None => 1000,
            Some(n) if n < 0 => {
                return Err(s3_error!(InvalidArgument, "max-parts must be non-negative"));
            }
            Some(n) => usize::try_from(n).unwrap_or(1000).min(1000),
        };
        let marker = match i.part_number_marker {
            None => 0,
            Some(m) => u32::try_from(m)
                .map_err(|_| s3_error!(InvalidArgument, "Invalid part-number-marker"))?,
        };
        let (b, k, u) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
        let (upload, (parts, truncated)) = self
            .run(&rc, move |s| {
                Ok((
                    s.upload(&b, &k, &u)?,
                    s.list_parts(&b, &k, &u, marker, max)?,
                ))
            })
            .await?;
        let algo = checksum::upload_checksum_of(upload.checksum_algorithm.as_deref());
        let next = if truncated {
            parts.last().and_then(|(n, _)| i32::try_from(*n).ok())
        } else {
            None
        };
        let parts = parts
            .into_iter()
            .map(|(n, p)| {
                let c = checksum::from_stored(&p.checksums);
                Part {
                    part_number: i32::try_from(n).ok(),
                    e_tag: Some(ETag::Strong(p.etag)),
                    size: i64::try_from(p.size).ok(),
                    last_modified: Some(timestamp(p.modified_ns)),
                    checksum_crc32: c.checksum_crc32,
                    checksum_crc32c: c.checksum_crc32c,
                    checksum_crc64nvme: c.checksum_crc64nvme,
                    checksum_sha1: c.checksum_sha1,
                    checksum_sha256: c.checksum_sha256,
                }
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: next,
            is_truncated: Some(truncated),
            parts: Some(parts),
            checksum_algorithm: algo
                .as_ref()
                .map(|(a, _)| ChecksumAlgorithm::from(a.clone())),
            checksum_type: algo.map(|(_, kind)| ChecksumType::from_static(kind.s3_name())),
            ..Default::default()
        }))
    }

    pub(super) async fn do_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let max = match i.max_uploads {
            None => 1000,
            Some(n) if n < 0 => {
                return Err(s3_error!(
                    InvalidArgument,
                    "max-uploads must be non-negative"
                ));
            }
            Some(n) => usize::try_from(n).unwrap_or(1000).min(1000),
        };
        let (b, p, d, km, um) = (
            i.bucket.clone(),
            i.prefix.clone().unwrap_or_default(),
            i.delimiter.clone(),
            i.key_marker.clone(),
            i.upload_id_marker.clone(),
        );
        let (page, owner) = self
            .run(&rc, move |s| {
                let page =
                    s.list_uploads(&b, &p, d.as_deref(), km.as_deref(), um.as_deref(), max)?;
                Ok((page, crate::ownership::bucket_owner(s, &b)?))
            })
            .await?;
        let owner = super::acl::owner_dto(&owner);
        let (next_key, next_id) = match (page.truncated, page.uploads.last()) {
            (true, Some(u)) => (Some(u.key.clone()), Some(u.upload_id.clone())),
            _ => (None, None),
        };
        let uploads = page
            .uploads
            .into_iter()
            .map(|u| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                initiated: Some(timestamp(u.record.initiated_ns)),
                initiator: Some(Initiator {
                    display_name: Some(u.record.initiator.clone()),
                    id: Some(u.record.initiator),
                }),
                owner: Some(owner.clone()),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            delimiter: i.delimiter,
            key_marker: i.key_marker,
            upload_id_marker: i.upload_id_marker,
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.truncated),
            uploads: Some(uploads),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}

/// A completed object's checksum, from its parts (see `checksum`): each part's checksum the
/// client names must be the part's own (InvalidPart otherwise, as AWS answers); the object's
/// is of the upload's type (none when the upload has no algorithm or a part lacks it, as parts
/// copied with UploadPartCopy do), and must equal any the client claims for the whole
/// (BadDigest otherwise). Nothing is committed on an error.
fn completed_checksums(
    parts: &[&fsgate_store::model::PartRecord],
    claims: &[checksum::Claimed],
    algo: Option<(String, checksum::Kind)>,
    whole: &checksum::Claimed,
) -> Result<Vec<fsgate_store::model::StoredChecksum>, StoreError> {
    for (n, (part, claim)) in parts.iter().zip(claims).enumerate() {
        for (a, v) in &claim.values {
            if !part
                .checksums
                .iter()
                .any(|c| c.algorithm == *a && c.value == *v)
            {
                return Err(StoreError::InvalidPart(format!(
                    "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag or {a} checksum might not have matched the part's (part {}).",
                    n + 1
                )));
            }
        }
    }
    let Some((algo, kind)) = algo else {
        return Ok(Vec::new());
    };
    let values: Option<Vec<(&str, u64)>> = parts
        .iter()
        .map(|p| {
            p.checksums
                .iter()
                .find(|c| c.algorithm == algo)
                .map(|c| (c.value.as_str(), p.size))
        })
        .collect();
    let Some(values) = values else {
        return Ok(Vec::new());
    };
    let computed = match kind {
        checksum::Kind::Composite => {
            let v: Vec<&str> = values.iter().map(|(v, _)| *v).collect();
            checksum::composite(&algo, &v)
                .map_err(|_| StoreError::InvalidPart("bad part checksum".into()))?
        }
        checksum::Kind::FullObject => checksum::full_object(&algo, &values),
    };
    for (a, v) in &whole.values {
        let matches = computed.as_ref().is_some_and(|c| {
            c.algorithm == *a
                && (c.value == *v || c.value.split_once('-').is_some_and(|(base, _)| base == v))
        });
        if !matches {
            return Err(StoreError::BadDigest(format!(
                "The {a} you specified did not match the calculated checksum."
            )));
        }
    }
    // Each part's checksum stays with the object (`ALGO#N`), for GetObjectAttributes.
    let mut stored: Vec<fsgate_store::model::StoredChecksum> = computed.into_iter().collect();
    stored.extend(values.iter().enumerate().map(|(n, (v, _))| {
        fsgate_store::model::StoredChecksum {
            algorithm: checksum::part_algorithm(&algo, n + 1),
            value: (*v).to_owned(),
        }
    }));
    Ok(stored)
}
