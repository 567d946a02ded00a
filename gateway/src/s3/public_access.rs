//! Public Access Block, bucket level (PutPublicAccessBlock, GetPublicAccessBlock,
//! DeletePublicAccessBlock), its four settings enforced as AWS documents them:
//! - `BlockPublicAcls`: PutBucketAcl and PutObjectAcl with a public ACL are AccessDenied;
//! - `IgnorePublicAcls`: public ACLs grant nothing: their grants to AllUsers and
//!   AuthenticatedUsers are taken out of the Cedar in force while it is on (and put back when
//!   it goes);
//! - `BlockPublicPolicy`: PutBucketPolicy with a public policy is AccessDenied;
//! - `RestrictPublicBuckets`: a public bucket policy no longer lets anonymous callers in. The
//!   bucket's Cedar in force gets a `forbid` for `Anonymous` while it is on, so `policy test`
//!   and `who-can` show why.
//!
//! Stored as the bucket document `public-access-block`; the account's settings (admin API,
//! `admin/account.rs`) apply to every bucket with its own, each setting on when either is.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use fsgate_policy::bucket_policy::translate;

use super::{S3Api, ctx};
use crate::context::RequestCtx;
use crate::identity::iam::{BUCKET_POLICY, BUCKET_POLICY_CEDAR};

use crate::ownership::PUBLIC_ACCESS_BLOCK_DOC as DOC;

/// What `RestrictPublicBuckets` adds to a bucket's policy (the engine confines it to the
/// bucket, as every bucket policy).
const RESTRICT: &str = "forbid (principal is Anonymous, action, resource);";

/// A bucket's settings (all off when none are stored).
pub type Block = crate::ownership::PublicAccessBlock;

fn block_of(c: &PublicAccessBlockConfiguration) -> Block {
    Block {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    }
}

fn block_dto(b: Block) -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration {
        block_public_acls: Some(b.block_public_acls),
        ignore_public_acls: Some(b.ignore_public_acls),
        block_public_policy: Some(b.block_public_policy),
        restrict_public_buckets: Some(b.restrict_public_buckets),
    }
}

/// The Cedar in force for a bucket: its translated policy, with the `RestrictPublicBuckets`
/// forbid while that is on. `None` without a policy (nothing public to restrict).
pub(super) fn bucket_cedar(policy_cedar: Option<String>, block: Block) -> Option<String> {
    policy_cedar.map(|c| {
        if block.restrict_public_buckets {
            format!("{c}\n\n{RESTRICT}")
        } else {
            c
        }
    })
}

/// A bucket and the Cedar of its policy in force (`None`: it has none).
pub type PolicyInForce = (String, Option<String>);

/// What puts every bucket's Cedar in force again under new account-wide settings: each
/// bucket policy with its `RestrictPublicBuckets` forbid as the combined settings say, and
/// each ACL without its public grants while `IgnorePublicAcls` is on; with the `policy.cedar`
/// document of each bucket that has a policy.
pub fn account_block_changes(
    store: &fsgate_store::Store,
    account: Block,
) -> Result<(fsgate_policy::Changes, Vec<PolicyInForce>), fsgate_store::StoreError> {
    let mut changes = fsgate_policy::Changes::default();
    let mut docs = Vec::new();
    for (bucket, _) in store.list_buckets()? {
        let block = Block::bucket(store, &bucket)?.or(account);
        if let Some(doc) = store.bucket_config(&bucket, BUCKET_POLICY)?
            && let Ok(t) = translate(&bucket, &String::from_utf8_lossy(&doc))
        {
            let in_force = bucket_cedar(Some(t.cedar), block);
            changes
                .bucket_policies
                .push((bucket.clone(), in_force.clone()));
            docs.push((bucket.clone(), in_force));
        }
        changes.acls.extend(crate::ownership::bucket_acl_changes(
            store,
            &bucket,
            Some(block.ignore_public_acls),
        )?);
    }
    Ok((changes, docs))
}

/// The refusal AWS answers when a setting blocks a request.
pub(super) fn blocked() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

fn no_block() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
        "The public access block configuration was not found",
    );
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

impl S3Api {
    /// A bucket's settings, all off when none are stored.
    pub(super) async fn public_access_block(
        &self,
        rc: &RequestCtx,
        bucket: &str,
    ) -> S3Result<Block> {
        let b = bucket.to_owned();
        self.run(rc, move |s| Block::read(s, &b)).await
    }

    /// Stores `block` (or removes the settings) and puts the bucket's Cedar in force again.
    async fn set_public_access_block(
        &self,
        rc: &RequestCtx,
        bucket: String,
        block: Option<Block>,
    ) -> S3Result<()> {
        let b = bucket.clone();
        let policy = self
            .run(rc, move |s| s.bucket_config(&b, BUCKET_POLICY))
            .await?;
        let policy_cedar = match policy {
            None => None,
            Some(doc) => Some(
                translate(&bucket, &String::from_utf8_lossy(&doc))
                    .map_err(|e| s3_error!(InternalError, "stored bucket policy: {e}"))?
                    .cedar,
            ),
        };
        // What is in force is this bucket's settings with the account's.
        let account = self.run(rc, Block::account).await?;
        let effective = block.unwrap_or_default().or(account);
        let cedar = bucket_cedar(policy_cedar, effective);
        let doc = block
            .map(|b| serde_json::to_vec(&b))
            .transpose()
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        let (b, in_force) = (bucket.clone(), cedar.clone());
        // The ACLs go back in force with the new IgnorePublicAcls.
        let (acl_bucket, ignore) = (bucket.clone(), effective.ignore_public_acls);
        let acls = move |s: &fsgate_store::Store| {
            crate::ownership::bucket_acl_changes(s, &acl_bucket, Some(ignore))
        };
        self.change_bucket_policy(rc, bucket, cedar, acls, move |s| {
            s.bucket(&b)?;
            s.set_bucket_configs(
                &b,
                &[
                    (DOC, doc.as_deref()),
                    (BUCKET_POLICY_CEDAR, in_force.as_deref().map(str::as_bytes)),
                ],
            )
        })
        .await
    }

    pub(super) async fn do_put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let block = block_of(&i.public_access_block_configuration);
        self.set_public_access_block(&rc, i.bucket, Some(block))
            .await?;
        Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
    }

    pub(super) async fn do_get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let doc = self.run(&rc, move |s| s.bucket_config(&b, DOC)).await?;
        let block: Block = doc
            .and_then(|d| serde_json::from_slice(&d).ok())
            .ok_or_else(no_block)?;
        Ok(S3Response::new(GetPublicAccessBlockOutput {
            public_access_block_configuration: Some(block_dto(block)),
        }))
    }

    pub(super) async fn do_delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        let rc = ctx(&req)?;
        self.set_public_access_block(&rc, req.input.bucket, None)
            .await?;
        Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
    }
}
