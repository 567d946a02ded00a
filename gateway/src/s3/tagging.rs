//! Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging, and
//! the `x-amz-tagging` header of PutObject, CopyObject and CreateMultipartUpload.

use percent_encoding::percent_decode_str;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use fsgate_store::objects::shown_version_id;

use super::{S3Api, ctx};

/// Most tags on one object (AWS).
pub const MAX_OBJECT_TAGS: usize = 10;
/// Most tags on one bucket (AWS).
pub const MAX_BUCKET_TAGS: usize = 50;

fn invalid_tag(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, msg.into())
}

/// Checks AWS's limits: count, key 1–128 and value 0–256 Unicode characters, distinct keys,
/// no `aws:` prefix.
pub fn validate(tags: &[(String, String)], max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(invalid_tag(format!(
            "Object tags cannot be greater than {max}"
        )));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        let klen = k.chars().count();
        if klen == 0 || klen > 128 {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if k.starts_with("aws:") {
            return Err(invalid_tag("Your TagKey cannot be prefixed with aws:"));
        }
        if tags.iter().take(i).any(|(other, _)| other == k) {
            return Err(invalid_tag(
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(())
}

/// Parses an `x-amz-tagging` header (`k1=v1&k2=v2`, form-URL-encoded) and checks it.
pub fn from_header(h: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Ok(Vec::new());
    };
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| invalid_tag("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
    };
    let mut tags = Vec::new();
    for pair in h.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(k)?, decode(v)?));
    }
    validate(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

/// Tags from an XML tag set, checked.
pub fn from_set(set: TagSet, max: usize) -> S3Result<Vec<(String, String)>> {
    let tags: Vec<(String, String)> = set
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    validate(&tags, max)?;
    Ok(tags)
}

/// An XML tag set.
pub fn to_set(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// Bucket tags as stored in the bucket's `tagging` document (JSON pairs).
fn encode(tags: &[(String, String)]) -> S3Result<Vec<u8>> {
    serde_json::to_vec(tags)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))
}

fn decode(doc: &[u8]) -> S3Result<Vec<(String, String)>> {
    serde_json::from_slice(doc)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))
}

impl S3Api {
    pub(super) async fn do_put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let tags = from_set(i.tagging.tag_set, MAX_OBJECT_TAGS)?;
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        let m = self
            .run(&rc, move |s| {
                s.update_version(&b, &k, v.as_deref(), |m| {
                    m.extras.tags = tags;
                    Ok(())
                })
            })
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: m.version_id,
        }))
    }

    pub(super) async fn do_get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        let named = v.is_some();
        let m = self
            .run(&rc, move |s| s.head_version(&b, &k, v.as_deref()))
            .await?;
        if m.delete_marker {
            return Err(super::delete_marker_error(&m, named));
        }
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: to_set(&m.extras.tags),
            version_id: m.version_id.as_ref().map(|_| shown_version_id(&m)),
        }))
    }

    pub(super) async fn do_delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        let m = self
            .run(&rc, move |s| {
                s.update_version(&b, &k, v.as_deref(), |m| {
                    m.extras.tags.clear();
                    Ok(())
                })
            })
            .await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: m.version_id,
        }))
    }

    pub(super) async fn do_put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let tags = from_set(i.tagging.tag_set, MAX_BUCKET_TAGS)?;
        let doc = encode(&tags)?;
        let b = i.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, "tagging", Some(&doc)))
            .await?;
        Ok(S3Response::new(PutBucketTaggingOutput::default()))
    }

    pub(super) async fn do_get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let doc = self
            .run(&rc, move |s| s.bucket_config(&b, "tagging"))
            .await?;
        let Some(doc) = doc else {
            return Err(S3Error::with_message(
                S3ErrorCode::NoSuchTagSet,
                "The TagSet does not exist",
            ));
        };
        Ok(S3Response::new(GetBucketTaggingOutput {
            tag_set: to_set(&decode(&doc)?),
        }))
    }

    pub(super) async fn do_delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, "tagging", None))
            .await?;
        Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_and_limits() {
        assert_eq!(
            from_header(Some("a=1&b%20c=x+y&empty=")).ok(),
            Some(vec![
                ("a".into(), "1".into()),
                ("b c".into(), "x y".into()),
                ("empty".into(), String::new())
            ])
        );
        assert!(from_header(Some("a=1&a=2")).is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(from_header(Some(&eleven.join("&"))).is_err());
        assert!(from_header(Some(&format!("{}=v", "k".repeat(129)))).is_err());
        assert!(from_header(Some(&format!("k={}", "v".repeat(257)))).is_err());
        assert!(from_header(Some("aws:x=1")).is_err());
        assert_eq!(from_header(None).ok(), Some(Vec::new()));
    }
}
