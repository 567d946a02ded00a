//! GetObject and HeadObject, with ranges, part numbers and conditional headers, and
//! GetObjectAttributes.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use fsgate_policy::{Action, Resource};
use fsgate_store::model::ObjectManifest;

use super::{S3Api, body, checksum, ctx};

/// Converts store nanoseconds into an S3 timestamp.
pub fn timestamp(ns: u64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

fn secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

/// The conditional request headers of GET/HEAD, as RFC 9110 and S3 order them.
#[derive(Debug, Default, Clone)]
pub struct Conditions<'a> {
    /// If-Match.
    pub if_match: Option<&'a ETagCondition>,
    /// If-None-Match.
    pub if_none_match: Option<&'a ETagCondition>,
    /// If-Modified-Since.
    pub if_modified_since: Option<&'a Timestamp>,
    /// If-Unmodified-Since.
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// Applies the conditions: 412 PreconditionFailed or 304 NotModified (`not_modified` gives
/// the error to use for the latter: copies answer 412 there too).
pub fn check_conditions(
    m: &ObjectManifest,
    c: &Conditions<'_>,
    not_modified: S3ErrorCode,
) -> S3Result<()> {
    let modified = i64::try_from(m.modified_ns / 1_000_000_000).unwrap_or(i64::MAX);
    // AWS: If-Match true and If-Unmodified-Since false → 200.
    match c.if_match {
        Some(cond) if !etag_matches(cond, &m.etag) => {
            return Err(S3Error::with_message(
                S3ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
        Some(_) => {}
        None => {
            if let Some(since) = c.if_unmodified_since
                && modified > secs(since)
            {
                return Err(S3Error::with_message(
                    S3ErrorCode::PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold",
                ));
            }
        }
    }
    // AWS: If-None-Match false and If-Modified-Since true → 304.
    match c.if_none_match {
        Some(cond) if etag_matches(cond, &m.etag) => return Err(S3Error::new(not_modified)),
        Some(_) => {}
        None => {
            if let Some(since) = c.if_modified_since
                && modified <= secs(since)
            {
                return Err(S3Error::new(not_modified));
            }
        }
    }
    Ok(())
}

/// Byte range [start, end) of part `n` (1-based) of an object.
fn part_range(m: &ObjectManifest, n: i32) -> S3Result<(u64, u64)> {
    let idx = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
    let parts = if m.parts_count == 0 {
        1
    } else {
        m.extents.len()
    };
    match idx {
        Some(i) if i < parts => {
            if m.parts_count == 0 {
                return Ok((0, m.size));
            }
            let start: u64 = m.extents.iter().take(i).map(|e| e.len).sum();
            let len = m.extents.get(i).map_or(0, |e| e.len);
            Ok((start, start + len))
        }
        _ => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("InvalidPartNumber".into()),
                "The requested partnumber is not satisfiable",
            );
            e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
            Err(e)
        }
    }
}

fn content_type(m: &ObjectManifest) -> ContentType {
    m.headers
        .content_type
        .clone()
        .unwrap_or_else(|| "binary/octet-stream".to_owned())
}

fn metadata(m: &ObjectManifest) -> Option<Metadata> {
    if m.headers.user_metadata.is_empty() {
        None
    } else {
        Some(m.headers.user_metadata.iter().cloned().collect())
    }
}

fn expires(m: &ObjectManifest) -> Option<Timestamp> {
    m.headers
        .expires
        .as_deref()
        .and_then(|s| Timestamp::parse(TimestampFormat::HttpDate, s).ok())
}

fn lock_mode(m: &ObjectManifest) -> Option<ObjectLockMode> {
    m.extras.retention.map(|r| {
        ObjectLockMode::from_static(match r.mode {
            fsgate_store::model::RetentionMode::Governance => ObjectLockMode::GOVERNANCE,
            fsgate_store::model::RetentionMode::Compliance => ObjectLockMode::COMPLIANCE,
        })
    })
}

fn want_checksums(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case("ENABLED"))
}

impl S3Api {
    async fn manifest(
        &self,
        rc: &crate::context::RequestCtx,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<ObjectManifest> {
        let (b, k, v) = (
            bucket.to_owned(),
            key.to_owned(),
            version.map(str::to_owned),
        );
        let m = self
            .run(rc, move |s| s.head_version(&b, &k, v.as_deref()))
            .await?;
        if m.delete_marker {
            return Err(super::delete_marker_error(&m, version.is_some()));
        }
        Ok(m)
    }

    /// The gate's second look at a read: the tags of the version about to be served (see
    /// `Gate::confirm_served`).
    fn confirm_served<T: ObjectRead>(
        &self,
        req: &S3Request<T>,
        action: Action,
        m: &ObjectManifest,
    ) -> S3Result<()> {
        if !self.gate.reads_tags() {
            return Ok(());
        }
        let (rc, principal) = crate::access::request_state(req)?;
        let version = req.input.version();
        let action = crate::access::versioned_action(action, version.is_some());
        let resource = Resource::Object {
            bucket: req.input.bucket().to_owned(),
            key: req.input.key().to_owned(),
        };
        self.gate
            .confirm_served(&rc, &principal, (action, version), resource, &m.extras.tags)
    }

    pub(super) async fn do_get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let rc = ctx(&req)?;
        let i = &req.input;
        let (b, k, v) = (i.bucket.clone(), i.key.clone(), i.version_id.clone());
        // The lookup is in memory unless RocksDB's caches miss: do it here when no writer holds
        // the key (saving two thread hand-offs per GET), else wait on a blocking thread.
        let tried = self.store.try_pin_object(&b, &k, v.as_deref());
        let pinned = match tried {
            Ok(Some(p)) => p,
            Ok(None) => {
                let store = self.store.clone();
                self.run(&rc, move |_| store.pin_object(&b, &k, v.as_deref()))
                    .await?
            }
            Err(e) => return Err(crate::error::store_error(e, &rc.request_id)),
        };
        if pinned.manifest.delete_marker {
            return Err(super::delete_marker_error(
                &pinned.manifest,
                i.version_id.is_some(),
            ));
        }
        let m = pinned.manifest.clone();
        self.confirm_served(&req, Action::GetObject, &m)?;
        rc.fields().version_id = super::shown_version(&m).unwrap_or_default();
        check_conditions(
            &m,
            &Conditions {
                if_match: i.if_match.as_ref(),
                if_none_match: i.if_none_match.as_ref(),
                if_modified_since: i.if_modified_since.as_ref(),
                if_unmodified_since: i.if_unmodified_since.as_ref(),
            },
            S3ErrorCode::NotModified,
        )?;
        let (start, end, content_range) = match (i.part_number, &i.range) {
            (Some(_), Some(_)) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "Cannot specify both Range header and partNumber"
                ));
            }
            (Some(n), None) => {
                let (s, e) = part_range(&m, n)?;
                let cr = (m.parts_count > 0)
                    .then(|| format!("bytes {s}-{}/{}", e.saturating_sub(1), m.size));
                (s, e, cr)
            }
            (None, Some(r)) => {
                let r = r.check(m.size).map_err(|_| {
                    let mut e = S3Error::with_message(
                        S3ErrorCode::InvalidRange,
                        "The requested range is not satisfiable",
                    );
                    e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
                    e
                })?;
                (
                    r.start,
                    r.end,
                    Some(format!(
                        "bytes {}-{}/{}",
                        r.start,
                        r.end.saturating_sub(1),
                        m.size
                    )),
                )
            }
            (None, None) => (0, m.size, None),
        };
        let len = end - start;
        let whole = content_range.is_none() || (start == 0 && end == m.size && m.parts_count == 0);
        let c = if want_checksums(i.checksum_mode.as_ref()) && whole {
            checksum::from_stored(&m.checksums)
        } else {
            Checksum::default()
        };
        let key = self.read_key(
            m.extras.sse.as_ref(),
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let sse_out = crate::s3::sse::response_fields(m.extras.sse.as_ref());
        let zero_copy = req.extensions.get::<crate::s3::zero_copy::ZeroCopy>();
        let body = body::stream_range(pinned, start, len, key, zero_copy);
        let out = GetObjectOutput {
            body: Some(body),
            accept_ranges: Some("bytes".to_owned()),
            content_length: i64::try_from(len).ok(),
            content_range,
            content_type: Some(content_type(&m)),
            content_encoding: m.headers.content_encoding.clone(),
            content_disposition: m.headers.content_disposition.clone(),
            content_language: m.headers.content_language.clone(),
            cache_control: m.headers.cache_control.clone(),
            expires: expires(&m),
            e_tag: Some(ETag::Strong(m.etag.clone())),
            last_modified: Some(timestamp(m.modified_ns)),
            metadata: metadata(&m),
            parts_count: (m.parts_count > 0 && i.part_number.is_some())
                .then(|| i32::try_from(m.parts_count).unwrap_or(i32::MAX)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_type: c.checksum_type.clone(),
            version_id: super::shown_version(&m),
            server_side_encryption: sse_out.0.clone().map(ServerSideEncryption::from),
            sse_customer_algorithm: sse_out.1.clone(),
            sse_customer_key_md5: sse_out.2.clone(),
            ssekms_key_id: crate::s3::sse::kms_key_id(m.extras.sse.as_ref()),
            tag_count: (!m.extras.tags.is_empty())
                .then(|| i32::try_from(m.extras.tags.len()).unwrap_or(i32::MAX)),
            object_lock_mode: lock_mode(&m),
            object_lock_retain_until_date: m.extras.retention.map(|r| timestamp(r.until_ns)),
            object_lock_legal_hold_status: m
                .extras
                .legal_hold
                .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
            ..Default::default()
        };
        let mut out = out;
        // response-* query parameters override the stored headers (signed requests only,
        // as AWS requires; the access gate has already decided the request).
        if let Some(v) = &i.response_content_type {
            out.content_type = Some(v.clone());
        }
        if let Some(v) = &i.response_content_encoding {
            out.content_encoding = Some(v.clone());
        }
        if let Some(v) = &i.response_content_disposition {
            out.content_disposition = Some(v.clone());
        }
        if let Some(v) = &i.response_content_language {
            out.content_language = Some(v.clone());
        }
        if let Some(v) = &i.response_cache_control {
            out.cache_control = Some(v.clone());
        }
        if let Some(v) = &i.response_expires {
            out.expires = Some(v.clone());
        }
        Ok(S3Response::new(out))
    }

    pub(super) async fn do_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let rc = ctx(&req)?;
        let i = &req.input;
        let m = self
            .manifest(&rc, &i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        self.confirm_served(&req, Action::HeadObject, &m)?;
        rc.fields().version_id = super::shown_version(&m).unwrap_or_default();
        // HEAD of an SSE-C object needs its key too, as in AWS.
        self.read_key(
            m.extras.sse.as_ref(),
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let sse_out = crate::s3::sse::response_fields(m.extras.sse.as_ref());
        check_conditions(
            &m,
            &Conditions {
                if_match: i.if_match.as_ref(),
                if_none_match: i.if_none_match.as_ref(),
                if_modified_since: i.if_modified_since.as_ref(),
                if_unmodified_since: i.if_unmodified_since.as_ref(),
            },
            S3ErrorCode::NotModified,
        )?;
        let (len, content_range) = match (i.part_number, &i.range) {
            (Some(n), _) => {
                let (s, e) = part_range(&m, n)?;
                (
                    e - s,
                    (m.parts_count > 0)
                        .then(|| format!("bytes {s}-{}/{}", e.saturating_sub(1), m.size)),
                )
            }
            (None, Some(r)) => {
                let r = r.check(m.size).map_err(|_| {
                    s3_error!(InvalidRange, "The requested range is not satisfiable")
                })?;
                (
                    r.end - r.start,
                    Some(format!(
                        "bytes {}-{}/{}",
                        r.start,
                        r.end.saturating_sub(1),
                        m.size
                    )),
                )
            }
            (None, None) => (m.size, None),
        };
        let c = if want_checksums(i.checksum_mode.as_ref()) {
            checksum::from_stored(&m.checksums)
        } else {
            Checksum::default()
        };
        let out = HeadObjectOutput {
            accept_ranges: Some("bytes".to_owned()),
            content_length: i64::try_from(len).ok(),
            content_range,
            content_type: Some(content_type(&m)),
            content_encoding: m.headers.content_encoding.clone(),
            content_disposition: m.headers.content_disposition.clone(),
            content_language: m.headers.content_language.clone(),
            cache_control: m.headers.cache_control.clone(),
            expires: expires(&m),
            e_tag: Some(ETag::Strong(m.etag.clone())),
            last_modified: Some(timestamp(m.modified_ns)),
            metadata: metadata(&m),
            parts_count: (m.parts_count > 0 && i.part_number.is_some())
                .then(|| i32::try_from(m.parts_count).unwrap_or(i32::MAX)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_type: c.checksum_type.clone(),
            version_id: super::shown_version(&m),
            server_side_encryption: sse_out.0.clone().map(ServerSideEncryption::from),
            sse_customer_algorithm: sse_out.1.clone(),
            sse_customer_key_md5: sse_out.2.clone(),
            ssekms_key_id: crate::s3::sse::kms_key_id(m.extras.sse.as_ref()),
            object_lock_mode: lock_mode(&m),
            object_lock_retain_until_date: m.extras.retention.map(|r| timestamp(r.until_ns)),
            object_lock_legal_hold_status: m
                .extras
                .legal_hold
                .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}

/// What a read names: GET and HEAD inputs alike.
trait ObjectRead {
    fn bucket(&self) -> &str;
    fn key(&self) -> &str;
    fn version(&self) -> Option<&str>;
}

macro_rules! object_read {
    ($($input:ty),*) => {
        $(impl ObjectRead for $input {
            fn bucket(&self) -> &str {
                &self.bucket
            }
            fn key(&self) -> &str {
                &self.key
            }
            fn version(&self) -> Option<&str> {
                self.version_id.as_deref()
            }
        })*
    };
}
object_read!(GetObjectInput, HeadObjectInput);

impl S3Api {
    pub(super) async fn do_get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        // Clients send one comma-separated header; s3s keeps it as one element.
        let want = |a: &str| {
            i.object_attributes
                .iter()
                .flat_map(|x| x.as_str().split(','))
                .any(|x| x.trim() == a)
        };
        let (b, k, v) = (i.bucket.clone(), i.key.clone(), i.version_id.clone());
        let named = v.is_some();
        let m = self
            .run(&rc, move |s| s.head_version(&b, &k, v.as_deref()))
            .await?;
        if m.delete_marker {
            return Err(super::delete_marker_error(&m, named));
        }
        let mut out = GetObjectAttributesOutput {
            last_modified: Some(timestamp(m.modified_ns)),
            version_id: m.version_id.clone(),
            ..Default::default()
        };
        if want(ObjectAttributes::ETAG) {
            out.e_tag = Some(ETag::Strong(m.etag.clone()));
        }
        if want(ObjectAttributes::OBJECT_SIZE) {
            out.object_size = i64::try_from(m.size).ok();
        }
        if want(ObjectAttributes::STORAGE_CLASS) {
            out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
        }
        if want(ObjectAttributes::CHECKSUM) && !m.checksums.is_empty() {
            out.checksum = Some(checksum::from_stored(&m.checksums));
        }
        if want(ObjectAttributes::OBJECT_PARTS) && m.parts_count > 0 {
            let marker = i.part_number_marker.unwrap_or(0);
            let max = usize::try_from(i.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
            let all: Vec<ObjectPart> = m
                .extents
                .iter()
                .enumerate()
                .map(|(n, e)| {
                    let c = checksum::part_checksums(&m.checksums, n + 1);
                    ObjectPart {
                        part_number: i32::try_from(n + 1).ok(),
                        size: i64::try_from(e.len).ok(),
                        checksum_crc32: c.checksum_crc32,
                        checksum_crc32c: c.checksum_crc32c,
                        checksum_crc64nvme: c.checksum_crc64nvme,
                        checksum_sha1: c.checksum_sha1,
                        checksum_sha256: c.checksum_sha256,
                    }
                })
                .filter(|p| p.part_number.is_some_and(|n| n > marker))
                .collect();
            let truncated = all.len() > max;
            let parts: Vec<ObjectPart> = all.into_iter().take(max).collect();
            out.object_parts = Some(GetObjectAttributesParts {
                is_truncated: Some(truncated),
                max_parts: i32::try_from(max).ok(),
                next_part_number_marker: parts.last().and_then(|p| p.part_number),
                part_number_marker: Some(marker),
                parts: Some(parts),
                total_parts_count: i32::try_from(m.parts_count).ok(),
            });
        }
        Ok(S3Response::new(out))
    }
}

/// GetObjectAttributes is the one response in which AWS writes the ETag unquoted; s3s quotes
/// every ETag it serializes, so a successful answer's XML is corrected here (the front layer
/// calls this for that operation only).
#[must_use]
pub fn unquote_attributes_etag(resp: http::Response<s3s::Body>) -> http::Response<s3s::Body> {
    if resp.status() != http::StatusCode::OK {
        return resp;
    }
    let Some(bytes) = resp.body().bytes() else {
        return resp;
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return resp;
    };
    let (Some(start), Some(end)) = (text.find("<ETag>\""), text.find("\"</ETag>")) else {
        return resp;
    };
    if end < start {
        return resp;
    }
    let fixed = format!(
        "{}<ETag>{}</ETag>{}",
        text.get(..start).unwrap_or_default(),
        text.get(start + 7..end).unwrap_or_default(),
        text.get(end + 8..).unwrap_or_default()
    );
    let (mut parts, _) = resp.into_parts();
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(fixed.len()),
    );
    http::Response::from_parts(parts, s3s::Body::from(fixed))
}
