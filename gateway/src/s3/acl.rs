//! ACLs, answered as MinIO does: private, owner full control; canned `private` and owner
//! full-control grants accepted, anything that would open access refused with NotImplemented
//! in favour of bucket policies. Bucket ownership controls (`BucketOwnerEnforced`).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::bucket::owner;
use super::{S3Api, ctx};

/// The one grant every bucket and object has: the owner's full control.
fn owner_grants() -> Grants {
    let o = owner();
    vec![Grant {
        grantee: Some(Grantee {
            display_name: o.display_name,
            email_address: None,
            id: o.id,
            type_: Type::from_static(Type::CANONICAL_USER),
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }]
}

/// Whether an ACL would make its resource public (AWS: a canned public ACL, or a grant to the
/// AllUsers or AuthenticatedUsers group), for `BlockPublicAcls`.
fn is_public_acl(
    canned: Option<&str>,
    policy: Option<&AccessControlPolicy>,
    grant_headers: &[Option<&String>],
) -> bool {
    let public_group =
        |uri: &str| uri.contains("/global/AllUsers") || uri.contains("/global/AuthenticatedUsers");
    canned.is_some_and(|c| {
        matches!(
            c,
            "public-read" | "public-read-write" | "authenticated-read"
        )
    }) || policy.is_some_and(|p| {
        p.grants.iter().flatten().any(|g| {
            g.grantee
                .as_ref()
                .and_then(|e| e.uri.as_deref())
                .is_some_and(public_group)
        })
    }) || grant_headers.iter().flatten().any(|h| public_group(h))
}

/// Accepts only ACLs that keep the resource private to its owner.
fn check_private_acl(
    canned: Option<&str>,
    policy: Option<&AccessControlPolicy>,
    grant_headers: &[Option<&String>],
) -> S3Result<()> {
    let refuse = || {
        Err(s3_error!(
            NotImplemented,
            "fsgate keeps ACLs private (owner full control); grant access with a bucket policy"
        ))
    };
    if let Some(c) = canned
        && !matches!(
            c,
            "private" | "bucket-owner-full-control" | "bucket-owner-read"
        )
    {
        return refuse();
    }
    let owner_id = owner().id;
    let own = |id: Option<&String>| id.is_some() && id == owner_id.as_ref();
    if let Some(p) = policy {
        for g in p.grants.iter().flatten() {
            let full = g
                .permission
                .as_ref()
                .is_some_and(|p| p.as_str() == Permission::FULL_CONTROL);
            if !full || !own(g.grantee.as_ref().and_then(|e| e.id.as_ref())) {
                return refuse();
            }
        }
    }
    for h in grant_headers.iter().flatten() {
        if !h
            .split(',')
            .all(|g| g.trim() == format!("id={}", owner_id.as_deref().unwrap_or_default()))
        {
            return refuse();
        }
    }
    Ok(())
}

/// The canned ACL and `x-amz-grant-*` headers of an input, for `check_acl`.
macro_rules! acl_headers {
    // The ACL operations and CreateBucket: every grant header.
    ($i:expr, $canned:ident) => {
        $crate::s3::acl::acl_headers!(
            $i,
            $canned,
            grant_full_control,
            grant_read,
            grant_read_acp,
            grant_write,
            grant_write_acp
        )
    };
    ($i:expr, $canned:ident, $($grant:ident),+) => {
        ($i.acl.as_ref().map($canned::as_str), [$($i.$grant.as_ref()),+])
    };
}

/// The ACL headers of a write that creates an object (PutObject, CopyObject,
/// CreateMultipartUpload).
macro_rules! object_write_acl {
    ($i:expr) => {
        $crate::s3::acl::acl_headers!(
            $i,
            ObjectCannedACL,
            grant_full_control,
            grant_read,
            grant_read_acp,
            grant_write_acp
        )
    };
}

pub(super) use {acl_headers, object_write_acl};

/// The canned ACLs AWS knows (`x-amz-acl`).
const CANNED: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

impl S3Api {
    /// Checks an ACL — of PutBucketAcl and PutObjectAcl, or the `x-amz-acl` and
    /// `x-amz-grant-*` headers of CreateBucket, PutObject, CopyObject and
    /// CreateMultipartUpload — as AWS orders the checks: an unknown canned ACL is
    /// InvalidArgument; with `BlockPublicAcls` on `bucket` (when it exists already) a public
    /// one is AccessDenied; then anything that would grant beyond the owner is NotImplemented
    /// (fsgate's ACLs stay private: access is granted by policies).
    pub(super) async fn check_acl(
        &self,
        rc: &crate::context::RequestCtx,
        bucket: Option<&str>,
        canned: Option<&str>,
        policy: Option<&AccessControlPolicy>,
        grant_headers: &[Option<&String>],
    ) -> S3Result<()> {
        if let Some(c) = canned
            && !CANNED.contains(&c)
        {
            return Err(s3_error!(
                InvalidArgument,
                "The canned ACL {c} is not valid"
            ));
        }
        if let Some(b) = bucket
            && is_public_acl(canned, policy, grant_headers)
            && self.public_access_block(rc, b).await?.block_public_acls
        {
            return Err(super::public_access::blocked());
        }
        check_private_acl(canned, policy, grant_headers)
    }

    pub(super) async fn do_get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        self.run(&rc, move |s| s.bucket(&b)).await?;
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(owner_grants()),
            owner: Some(owner()),
        }))
    }

    pub(super) async fn do_put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let (canned, grants) = acl_headers!(i, BucketCannedACL);
        let policy = i.access_control_policy.as_ref();
        self.check_acl(&rc, Some(&i.bucket), canned, policy, &grants)
            .await?;
        let b = i.bucket;
        self.run(&rc, move |s| s.bucket(&b)).await?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    pub(super) async fn do_get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        let m = self
            .run(&rc, move |s| s.head_version(&b, &k, v.as_deref()))
            .await?;
        if m.delete_marker {
            return Err(super::delete_marker_error(&m, true));
        }
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(owner_grants()),
            owner: Some(owner()),
            request_charged: None,
        }))
    }

    pub(super) async fn do_put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let (canned, grants) = acl_headers!(i, ObjectCannedACL);
        let policy = i.access_control_policy.as_ref();
        self.check_acl(&rc, Some(&i.bucket), canned, policy, &grants)
            .await?;
        let (b, k, v) = (i.bucket, i.key, i.version_id);
        self.run(&rc, move |s| s.head_version(&b, &k, v.as_deref()))
            .await?;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    pub(super) async fn do_get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let doc = self
            .run(&rc, move |s| s.bucket_config(&b, "ownership"))
            .await?;
        // New AWS buckets default to BucketOwnerEnforced, and fsgate behaves that way.
        let value = doc
            .and_then(|d| String::from_utf8(d).ok())
            .unwrap_or_else(|| ObjectOwnership::BUCKET_OWNER_ENFORCED.to_owned());
        Ok(S3Response::new(GetBucketOwnershipControlsOutput {
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: ObjectOwnership::from(value),
                }],
            }),
        }))
    }

    pub(super) async fn do_put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let [rule] = i.ownership_controls.rules.as_slice() else {
            return Err(s3_error!(
                MalformedXML,
                "OwnershipControls needs exactly one rule"
            ));
        };
        let value = rule.object_ownership.as_str().to_owned();
        if !matches!(
            value.as_str(),
            ObjectOwnership::BUCKET_OWNER_ENFORCED
                | ObjectOwnership::BUCKET_OWNER_PREFERRED
                | ObjectOwnership::OBJECT_WRITER
        ) {
            return Err(s3_error!(MalformedXML, "Unknown ObjectOwnership"));
        }
        let b = i.bucket;
        self.run(&rc, move |s| {
            s.set_bucket_config(&b, "ownership", Some(value.as_bytes()))
        })
        .await?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
    }

    pub(super) async fn do_delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, "ownership", None))
            .await?;
        Ok(S3Response::new(
            DeleteBucketOwnershipControlsOutput::default(),
        ))
    }
}
