//! PutObject.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use fsgate_store::model::ObjectHeaders;
use fsgate_store::objects::{INLINE_MAX, NewObject};

use super::{S3Api, body, check_key, checksum};

/// Formats a timestamp as an HTTP date (for `Expires`).
pub fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// Object headers from the fields every write operation carries.
pub fn object_headers(
    content_type: Option<&ContentType>,
    content_encoding: Option<&ContentEncoding>,
    content_disposition: Option<&ContentDisposition>,
    content_language: Option<&ContentLanguage>,
    cache_control: Option<&CacheControl>,
    expires: Option<&Expires>,
    metadata: Option<&Metadata>,
) -> ObjectHeaders {
    let mut user_metadata: Vec<(String, String)> = metadata
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    user_metadata.sort();
    ObjectHeaders {
        content_type: content_type.cloned(),
        content_encoding: content_encoding.cloned(),
        content_disposition: content_disposition.cloned(),
        content_language: content_language.cloned(),
        cache_control: cache_control.cloned(),
        expires: expires.and_then(http_date),
        user_metadata,
    }
}

impl S3Api {
    pub(super) async fn do_put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (rc, principal) = crate::access::request_state(&req)?;
        let trailers = req.trailing_headers.clone();
        let headers = req.headers.clone();
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
        // Fail before reading the body when the bucket is missing or the headers are wrong.
        let (extras, key) = self
            .write_extras(&rc, &i.bucket, super::lock::write_extras_of!(i)?)
            .await?;

        let md5 = checksum::content_md5(i.content_md5.as_ref())?;
        let claimed = checksum::Claimed::from_fields([
            i.checksum_crc32.as_ref(),
            i.checksum_crc32c.as_ref(),
            i.checksum_crc64nvme.as_ref(),
            i.checksum_sha1.as_ref(),
            i.checksum_sha256.as_ref(),
        ]);
        let hasher = checksum::hasher_for(
            i.checksum_algorithm.as_ref().map(ChecksumAlgorithm::as_str),
            &claimed,
            &headers,
        )?;
        let expected_len = i.content_length.and_then(|n| u64::try_from(n).ok());
        super::check_upload_size(expected_len)?;
        self.admit_write(&rc, &i.bucket, expected_len).await?;
        let cond = super::write_condition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        let headers = object_headers(
            i.content_type.as_ref(),
            i.content_encoding.as_ref(),
            i.content_disposition.as_ref(),
            i.content_language.as_ref(),
            i.cache_control.as_ref(),
            i.expires.as_ref(),
            i.metadata.as_ref(),
        );
        let (bucket, object_key) = (i.bucket, i.key);
        let m = match expected_len.filter(|n| *n <= INLINE_MAX) {
            // Small objects: bytes in memory, stored inline in one synced RocksDB batch.
            Some(len) => {
                let (data, body_md5, computed) = body::collect_small(i.body, hasher, len).await?;
                rc.fields().object_bytes_in = Some(len);
                checksum::verify_md5(md5, &body_md5)?;
                let trailer_map = trailers.as_ref().and_then(s3s::TrailingHeaders::take);
                checksum::verify(&computed, &claimed, trailer_map.as_ref())?;
                let (data, plaintext) = match key {
                    Some(k) => {
                        let mut e = crate::s3::sse::Encryptor::new(k, 0);
                        let mut ct = e.push(&data);
                        ct.extend(e.finish());
                        (ct, Some((len, hex::encode(body_md5))))
                    }
                    None => (data, None),
                };
                let new = NewObject {
                    headers,
                    checksums: checksum::to_stored(&computed),
                    extras,
                    cond,
                    plaintext,
                };
                let k = object_key;
                self.run(&rc, move |s| {
                    s.put_object_inline(&bucket, &k, &data, body_md5, new)
                })
                .await?
            }
            None => {
                let enc = key.map(|k| crate::s3::sse::Encryptor::new(k, 0));
                let (staged, computed, plain) =
                    body::stage(&self.store, &rc, i.body, hasher, expected_len, enc).await?;
                checksum::verify_md5(md5, &plain.map_or(staged.md5, |p| p.1))?;
                let trailer_map = trailers.as_ref().and_then(s3s::TrailingHeaders::take);
                checksum::verify(&computed, &claimed, trailer_map.as_ref())?;
                let new = NewObject {
                    headers,
                    checksums: checksum::to_stored(&computed),
                    extras,
                    cond,
                    plaintext: plain.map(|(n, m)| (n, hex::encode(m))),
                };
                let k = object_key;
                self.run(&rc, move |s| s.put_object(&bucket, &k, staged, new))
                    .await?
            }
        };
        rc.fields().version_id = m.version_id.clone().unwrap_or_default();
        self.settle_object_acl(&rc, &acl_bucket, &acl_key, m.seq, acl)
            .await?;
        let c = checksum::from_stored(&m.checksums);
        let sse_out = crate::s3::sse::response_fields(m.extras.sse.as_ref());
        let out = PutObjectOutput {
            e_tag: Some(ETag::Strong(m.etag.clone())),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            version_id: m.version_id.clone(),
            server_side_encryption: sse_out.0.map(ServerSideEncryption::from),
            sse_customer_algorithm: sse_out.1,
            sse_customer_key_md5: sse_out.2,
            ssekms_key_id: crate::s3::sse::kms_key_id(m.extras.sse.as_ref()),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}
