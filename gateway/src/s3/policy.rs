//! Bucket policies: PutBucketPolicy (AWS IAM JSON translated to Cedar at write time, or Cedar
//! text), GetBucketPolicy (the document as written), DeleteBucketPolicy, GetBucketPolicyStatus.
//! A document that cannot be translated, or whose Cedar does not validate against the schema
//! with every other policy, is refused with MalformedPolicy and nothing changes.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use fsgate_policy::bucket_policy::translate;
use fsgate_store::StoreError;

use crate::iam::{BUCKET_POLICY, BUCKET_POLICY_CEDAR};

use super::{FsGate, ctx};

/// Largest bucket policy (AWS: 20 KB).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

fn malformed(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, msg.into())
}

fn no_policy() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
}

impl FsGate {
    /// Rebuilds the policy engine after a bucket policy changed.
    pub(super) async fn reload_policies(&self, rc: &crate::context::RequestCtx) -> S3Result<()> {
        let iam = self.gate.iam().clone();
        self.run(rc, move |s| {
            iam.reload(s).map_err(|e| StoreError::Corrupt {
                what: "policies",
                detail: e.to_string(),
            })
        })
        .await
    }

    pub(super) async fn do_put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        if i.policy.len() > MAX_POLICY_BYTES {
            return Err(malformed("Policies must be less than 20KB"));
        }
        let t = translate(&i.bucket, &i.policy).map_err(malformed)?;
        let (b, doc, iam) = (i.bucket, i.policy, self.gate.iam().clone());
        let checked = self
            .run(&rc, move |s| {
                s.bucket(&b)?;
                if let Err(e) = iam.check_bucket_policy(s, &b, &t.cedar) {
                    return Ok(Err(e.to_string()));
                }
                s.set_bucket_configs(
                    &b,
                    &[
                        (BUCKET_POLICY, Some(doc.as_bytes())),
                        (BUCKET_POLICY_CEDAR, Some(t.cedar.as_bytes())),
                    ],
                )?;
                Ok(Ok(()))
            })
            .await?;
        checked.map_err(malformed)?;
        self.reload_policies(&rc).await?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    pub(super) async fn do_get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let doc = self
            .run(&rc, move |s| s.bucket_config(&b, BUCKET_POLICY))
            .await?
            .ok_or_else(no_policy)?;
        Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(String::from_utf8_lossy(&doc).into_owned()),
        }))
    }

    pub(super) async fn do_delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        self.run(&rc, move |s| {
            s.set_bucket_configs(&b, &[(BUCKET_POLICY, None), (BUCKET_POLICY_CEDAR, None)])
        })
        .await?;
        self.reload_policies(&rc).await?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }

    pub(super) async fn do_get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let bucket = b.clone();
        let doc = self
            .run(&rc, move |s| s.bucket_config(&b, BUCKET_POLICY))
            .await?
            .ok_or_else(no_policy)?;
        let public = translate(&bucket, &String::from_utf8_lossy(&doc)).is_ok_and(|t| t.public);
        Ok(S3Response::new(GetBucketPolicyStatusOutput {
            policy_status: Some(PolicyStatus {
                is_public: Some(public),
            }),
        }))
    }
}
