//! Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging, and
//! the `x-amz-tagging` header of PutObject, CopyObject and CreateMultipartUpload.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use fsgate_store::objects::shown_version_id;

use super::{S3Api, ctx};

pub use crate::tags::{MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, from_header, from_set, to_set};

/// Bucket tags as stored in the bucket's `tagging` document (JSON pairs).
fn encode(tags: &[(String, String)]) -> S3Result<Vec<u8>> {
    serde_json::to_vec(tags)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))
}

pub(crate) fn decode(doc: &[u8]) -> S3Result<Vec<(String, String)>> {
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
