//! Bucket versioning: GetBucketVersioning, PutBucketVersioning (ListObjectVersions is with
//! the other listings, in `list.rs`).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_store::model::Versioning;

use super::{S3Api, ctx};

impl S3Api {
    pub(super) async fn do_get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let rec = self.run(&rc, move |s| s.bucket(&b)).await?;
        // A never-versioned bucket answers an empty configuration, as AWS does.
        let status = match rec.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::ENABLED),
            Versioning::Suspended => Some(BucketVersioningStatus::SUSPENDED),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            mfa_delete: None,
            status: status.map(BucketVersioningStatus::from_static),
        }))
    }

    pub(super) async fn do_put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let cfg = i.versioning_configuration;
        if cfg
            .mfa_delete
            .as_ref()
            .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
        {
            return Err(s3_error!(
                NotImplemented,
                "MFA Delete is not supported by fsgate"
            ));
        }
        let v = match cfg.status.as_ref().map(BucketVersioningStatus::as_str) {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        };
        let b = i.bucket;
        self.run(&rc, move |s| s.set_versioning(&b, v)).await?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }
}
