//! Buckets: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_policy::{Action, Resource};
use fsgate_store::buckets::is_valid_bucket_name;

use crate::access::{AccessFacts, request_state};

use super::object_get::timestamp;
use super::{S3Api, ctx};

use crate::identity::ACCOUNT_ID;

/// The owner shown in listings and ACLs.
pub fn owner() -> Owner {
    Owner {
        display_name: Some(ACCOUNT_ID.into()),
        id: Some(ACCOUNT_ID.into()),
    }
}

impl S3Api {
    pub(super) async fn do_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let (rc, principal) = request_state(&req)?;
        let prefix = req.input.prefix.clone();
        let all = self.run(&rc, |s| s.list_buckets()).await?;
        // Every bucket when allowed on the service; otherwise the buckets allowed one by one
        // (as MinIO shows a user the buckets it can use); AccessDenied when none is.
        let whole = self.gate.decide(
            &rc,
            &principal,
            Action::ListBuckets,
            Resource::Service,
            AccessFacts::default(),
        );
        let all: Vec<_> = if whole.allowed {
            all
        } else {
            let mut allowed = Vec::new();
            let mut policies = Vec::new();
            for (name, rec) in all {
                let d = self.gate.decide_quietly(
                    &rc,
                    &principal,
                    Action::ListBuckets,
                    Resource::Bucket(name.clone()),
                );
                if d.allowed {
                    policies.extend(d.policies);
                    allowed.push((name, rec));
                }
            }
            if allowed.is_empty() {
                return Err(s3_error!(AccessDenied, "Access Denied"));
            }
            policies.sort();
            policies.dedup();
            // Allowed, by the policies that allowed its buckets.
            let mut f = rc.fields();
            f.allowed = Some(true);
            f.policies = policies;
            allowed
        };
        let buckets = all
            .into_iter()
            .filter(|(name, _)| prefix.as_deref().is_none_or(|p| name.starts_with(p)))
            .map(|(name, rec)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(rec.created_ns)),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            prefix: req.input.prefix,
            continuation_token: None,
        }))
    }

    pub(super) async fn do_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let rc = ctx(&req)?;
        let name = req.input.bucket;
        if !is_valid_bucket_name(&name) {
            return Err(s3_error!(
                InvalidBucketName,
                "The specified bucket is not valid."
            ));
        }
        let location = format!("/{name}");
        let lock = req.input.object_lock_enabled_for_bucket.unwrap_or(false);
        self.run(&rc, move |s| s.create_bucket(&name, lock)).await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(location),
        }))
    }

    pub(super) async fn do_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let rc = ctx(&req)?;
        let name = req.input.bucket;
        self.run(&rc, move |s| s.bucket(&name)).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    pub(super) async fn do_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let rc = ctx(&req)?;
        let name = req.input.bucket;
        // Its policy goes with it: a new bucket of the same name must not inherit it.
        let n = name.clone();
        self.change_bucket_policy(&rc, name, None, move |s| s.delete_bucket(&n))
            .await?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    pub(super) async fn do_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let rc = ctx(&req)?;
        let name = req.input.bucket;
        self.run(&rc, move |s| s.bucket(&name)).await?;
        // AWS: us-east-1 answers an empty LocationConstraint.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }
}
