//! Buckets: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_policy::{Action, Resource};
use fsgate_store::buckets::is_valid_bucket_name;

use crate::access::{AccessFacts, request_state};

use super::object_get::timestamp;
use super::{S3Api, ctx};

use crate::ownership::{OWNERSHIP_DOC, ROOT_OWNER, owner_name};

/// The page a ListBuckets asks for: `prefix`, `bucket-region`, `max-buckets` and the
/// `continuation-token` of the page before (the last name it held, base64url).
struct BucketPage {
    prefix: Option<String>,
    other_region: bool,
    max: Option<usize>,
    after: Option<String>,
}

impl BucketPage {
    fn of(i: &ListBucketsInput, region: &str) -> S3Result<Self> {
        let max = match i.max_buckets {
            None => None,
            Some(n @ 1..=10_000) => Some(usize::try_from(n).unwrap_or(10_000)),
            Some(n) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "max-buckets must be between 1 and 10000, not {n}"
                ));
            }
        };
        let after = match &i.continuation_token {
            None => None,
            Some(t) => Some(
                URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidArgument,
                            "The continuation token provided is incorrect"
                        )
                    })?,
            ),
        };
        Ok(Self {
            prefix: i.prefix.clone(),
            other_region: i.bucket_region.as_deref().is_some_and(|r| r != region),
            max,
            after,
        })
    }

    /// The buckets of this page (`all` in name order), and the token of the next one.
    fn take<T>(&self, all: Vec<(String, T)>) -> (Vec<(String, T)>, Option<String>) {
        if self.other_region {
            return (Vec::new(), None);
        }
        let mut left = all.into_iter().filter(|(name, _)| {
            self.prefix.as_deref().is_none_or(|p| name.starts_with(p))
                && self.after.as_deref().is_none_or(|a| name.as_str() > a)
        });
        let page: Vec<_> = match self.max {
            Some(n) => left.by_ref().take(n).collect(),
            None => left.by_ref().collect(),
        };
        let next = match (left.next(), page.last()) {
            (Some(_), Some((last, _))) => Some(URL_SAFE_NO_PAD.encode(last)),
            _ => None,
        };
        (page, next)
    }
}

impl S3Api {
    pub(super) async fn do_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let (rc, principal) = request_state(&req)?;
        let page = BucketPage::of(&req.input, &self.region)?;
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
        let (buckets, continuation_token) = page.take(all);
        let paginated = page.max.is_some() || page.after.is_some();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|(name, rec)| Bucket {
                        name: Some(name),
                        creation_date: Some(timestamp(rec.created_ns)),
                        // Paginated listings name each bucket's region, as AWS's do.
                        bucket_region: paginated.then(|| self.region.clone()),
                    })
                    .collect(),
            ),
            // AWS: the owner of the buckets listed, the caller's account.
            owner: Some(super::acl::owner_dto(&owner_name(&principal))),
            prefix: req.input.prefix,
            continuation_token,
        }))
    }

    pub(super) async fn do_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let (rc, principal) = request_state(&req)?;
        let name = req.input.bucket.clone();
        if !is_valid_bucket_name(&name) {
            return Err(s3_error!(
                InvalidBucketName,
                "The specified bucket is not valid."
            ));
        }
        let lock = req.input.object_lock_enabled_for_bucket.unwrap_or(false);
        let me = owner_name(&principal);
        let location = format!("/{name}");
        // The ACL and ownership controls it asks for, checked before anything is created (a
        // new bucket has no Public Access Block yet).
        let ownership = req
            .input
            .object_ownership
            .as_ref()
            .map(|o| super::acl::checked_ownership(o.as_str()))
            .transpose()?;
        let facts = super::acl::BucketAclFacts {
            owner: me.clone(),
            ownership: crate::ownership::ObjectOwnership::Unset,
            block: crate::ownership::PublicAccessBlock::default(),
        };
        let asked = super::acl::acl_request!(req.input, BucketCannedACL);
        let acl = self
            .requested_acl(&asked, &facts, &me, false)?
            .filter(|a| *a != crate::ownership::StoredAcl::private(&me));
        if acl.is_some() && ownership.as_deref() == Some(ObjectOwnership::BUCKET_OWNER_ENFORCED) {
            return Err(s3_error!(
                InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            ));
        }
        let (n, mine) = (name.clone(), me.clone());
        let created = self
            .run(&rc, move |s| {
                let docs: Vec<(&str, &[u8])> = ownership
                    .iter()
                    .map(|o| (OWNERSHIP_DOC, o.as_bytes()))
                    .collect();
                match s.create_bucket_owned(&n, lock, Some(&mine), &docs) {
                    // Whose it is decides the answer: AWS's BucketAlreadyOwnedByYou for the
                    // owner (409, as MinIO and Ceph answer in every region; AWS answers 200 in
                    // us-east-1 for legacy reasons), BucketAlreadyExists for anyone else.
                    Err(fsgate_store::StoreError::BucketExists) => Ok(Some(s.bucket_owner(&n)?)),
                    other => other.map(|()| None),
                }
            })
            .await?;
        if let Some(owner) = created {
            // Buckets made before owners were kept belong to the account: its root.
            if owner.as_deref().unwrap_or(ROOT_OWNER) != me {
                return Err(s3_error!(
                    BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
                ));
            }
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        if acl.is_some() {
            self.put_acl(&rc, &name, None, acl).await?;
        }
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
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..HeadBucketOutput::default()
        }))
    }

    pub(super) async fn do_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let rc = ctx(&req)?;
        let name = req.input.bucket;
        // Its policy and ACLs go with it: a new bucket of the same name must not inherit them.
        let (n, dropped) = (name.clone(), name.clone());
        self.change_bucket_policy(
            &rc,
            name,
            None,
            move |_| Ok(vec![fsgate_policy::AclChange::DropBucket(dropped)]),
            move |s| s.delete_bucket(&n),
        )
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
        // AWS: us-east-1 answers an empty LocationConstraint, other regions their name.
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: (self.region != super::DEFAULT_REGION)
                .then(|| BucketLocationConstraint::from(self.region.clone())),
        }))
    }
}
