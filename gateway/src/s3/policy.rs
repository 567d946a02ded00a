//! Bucket policies: PutBucketPolicy (AWS IAM JSON translated to Cedar at write time, or Cedar
//! text), GetBucketPolicy (the document as written), DeleteBucketPolicy, GetBucketPolicyStatus.
//! A document that cannot be translated, or whose Cedar does not validate against the schema
//! with every other policy, is refused with MalformedPolicy and nothing changes.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use fsgate_policy::bucket_policy::translate;
use fsgate_store::StoreError;

use crate::identity::iam::{BUCKET_POLICY, BUCKET_POLICY_CEDAR, IamError};

use super::{S3Api, ctx};

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

impl S3Api {
    /// Puts a bucket's new policy (or its removal, `None`) in force together with `write`, the
    /// store change: a policy that does not validate is MalformedPolicy and nothing changes.
    /// `acls` are ACL changes that go with it (a deleted bucket's, a changed Public Access
    /// Block's).
    pub(super) async fn change_bucket_policy(
        &self,
        rc: &crate::context::RequestCtx,
        bucket: String,
        cedar: Option<String>,
        acls: impl FnOnce(&fsgate_store::Store) -> Result<Vec<fsgate_policy::AclChange>, StoreError>
        + Send
        + 'static,
        write: impl FnOnce(&fsgate_store::Store) -> Result<(), StoreError> + Send + 'static,
    ) -> S3Result<()> {
        let outcome = self
            .change_policies(
                rc,
                move |s| {
                    Ok((
                        fsgate_policy::Changes {
                            bucket_policies: vec![(bucket, cedar)],
                            acls: acls(s)?,
                            ..fsgate_policy::Changes::default()
                        },
                        (),
                    ))
                },
                move |s, ()| write(s),
            )
            .await?;
        outcome.map_err(|e| malformed(e.to_string()))
    }

    /// Puts a change of policies in force with its store write, both worked out while no
    /// other change runs (`Iam::change_policies_from`). The outer error is the store's; the
    /// inner one says why the policies did not validate (nothing was written).
    pub(super) async fn change_policies<U: Send + 'static>(
        &self,
        rc: &crate::context::RequestCtx,
        changes: impl FnOnce(&fsgate_store::Store) -> Result<(fsgate_policy::Changes, U), StoreError>
        + Send
        + 'static,
        write: impl FnOnce(&fsgate_store::Store, U) -> Result<(), StoreError> + Send + 'static,
    ) -> S3Result<Result<(), fsgate_policy::PolicyError>> {
        let iam = self.gate.iam().clone();
        self.run(rc, move |s| {
            match iam.change_policies_from(s, changes, write) {
                Ok(()) => Ok(Ok(())),
                Err(IamError::Policy(p)) => Ok(Err(p)),
                Err(IamError::Store(e)) => Err(e),
            }
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
        let t = translate(&i.bucket, &i.policy).map_err(|e| malformed(e.to_string()))?;
        let block = self.public_access_block(&rc, &i.bucket).await?;
        if block.block_public_policy && t.public {
            return Err(super::public_access::blocked());
        }
        let in_force = super::public_access::bucket_cedar(Some(t.cedar), block);
        let (b, doc, cedar) = (i.bucket.clone(), i.policy, in_force.clone());
        self.change_bucket_policy(
            &rc,
            i.bucket,
            in_force,
            |_| Ok(Vec::new()),
            move |s| {
                s.bucket(&b)?;
                s.set_bucket_configs(
                    &b,
                    &[
                        (BUCKET_POLICY, Some(doc.as_bytes())),
                        (BUCKET_POLICY_CEDAR, cedar.as_deref().map(str::as_bytes)),
                    ],
                )
            },
        )
        .await?;
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
        let b = req.input.bucket.clone();
        self.change_bucket_policy(
            &rc,
            req.input.bucket,
            None,
            |_| Ok(Vec::new()),
            move |s| {
                s.set_bucket_configs(&b, &[(BUCKET_POLICY, None), (BUCKET_POLICY_CEDAR, None)])
            },
        )
        .await?;
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
