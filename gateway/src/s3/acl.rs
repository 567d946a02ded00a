//! ACLs as AWS answers them: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl, the
//! `x-amz-acl` and `x-amz-grant-*` headers of the writes that create buckets and objects, and
//! bucket ownership controls. What an ACL is stored as and what it grants in Cedar is
//! `crate::ownership`'s; this file reads requests into it and answers with it.
//!
//! Checks, in AWS's order: an unknown canned ACL is InvalidArgument; a canned ACL with grant
//! headers InvalidRequest; a grant by e-mail UnresolvableGrantByEmailAddress (fsgate's users
//! have no e-mail address); an unknown canonical id or group InvalidArgument; an ACL other
//! than the owner's full control on a bucket that enforces bucket ownership
//! AccessControlListNotSupported; a public ACL under `BlockPublicAcls` AccessDenied.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_policy::{AclChange, Changes, Principal};

use super::{S3Api, ctx};
use crate::context::RequestCtx;
use crate::ownership::{
    ALL_USERS, AUTHENTICATED_USERS, BUCKET_ACL_DOC, Grantee as StoredGrantee, LOG_DELIVERY,
    OWNERSHIP_DOC, ObjectOwnership as Ownership, Permission as StoredPermission, PublicAccessBlock,
    StoredAcl, StoredGrant, bucket_owner, canonical_id, display_name, object_acl_doc, owner_name,
};

/// The ACL a request asks for, as the client sent it: a canned ACL, grant headers (each with
/// its permission) or an AccessControlPolicy document.
pub(super) struct AclRequest<'a> {
    pub(super) canned: Option<&'a str>,
    pub(super) headers: Vec<(StoredPermission, &'a String)>,
    pub(super) policy: Option<&'a AccessControlPolicy>,
}

impl AclRequest<'_> {
    fn is_empty(&self) -> bool {
        self.canned.is_none() && self.headers.is_empty() && self.policy.is_none()
    }
}

/// The ACL a request asks for, from an input's `acl` (of type `$canned`) and grant header
/// fields; by default every grant header, or those named (`Permission: field`).
macro_rules! acl_request {
    ($i:expr, $canned:ident) => {
        $crate::s3::acl::acl_request!(
            $i,
            $canned,
            FullControl: grant_full_control,
            Read: grant_read,
            ReadAcp: grant_read_acp,
            Write: grant_write,
            WriteAcp: grant_write_acp
        )
    };
    ($i:expr, $canned:ident, $($perm:ident: $grant:ident),+) => {
        $crate::s3::acl::AclRequest {
            canned: $i.acl.as_ref().map($canned::as_str),
            headers: [$(($crate::ownership::Permission::$perm, $i.$grant.as_ref())),+]
                .into_iter()
                .filter_map(|(p, h)| h.map(|h| (p, h)))
                .collect(),
            policy: None,
        }
    };
}

/// The ACL a write that creates an object asks for (PutObject, CopyObject,
/// CreateMultipartUpload: no WRITE header, objects have no WRITE).
macro_rules! object_write_acl {
    ($i:expr) => {
        $crate::s3::acl::acl_request!(
            $i,
            ObjectCannedACL,
            FullControl: grant_full_control,
            Read: grant_read,
            ReadAcp: grant_read_acp,
            WriteAcp: grant_write_acp
        )
    };
}

pub(super) use {acl_request, object_write_acl};

/// What an ACL check needs to know of a bucket.
pub(super) struct BucketAclFacts {
    pub(super) owner: String,
    pub(super) ownership: Ownership,
    pub(super) block: PublicAccessBlock,
}

/// The owner as S3 shows it.
pub(super) fn owner_dto(owner: &str) -> Owner {
    Owner {
        display_name: Some(display_name(owner).to_owned()),
        id: Some(canonical_id(owner)),
    }
}

fn grant_dto(g: &StoredGrant) -> Grant {
    let grantee = match &g.grantee {
        StoredGrantee::Owner(o) => Grantee {
            display_name: Some(display_name(o).to_owned()),
            email_address: None,
            id: Some(canonical_id(o)),
            type_: Type::from_static(Type::CANONICAL_USER),
            uri: None,
        },
        StoredGrantee::Group(uri) => Grantee {
            display_name: None,
            email_address: None,
            id: None,
            type_: Type::from_static(Type::GROUP),
            uri: Some(uri.clone()),
        },
    };
    Grant {
        grantee: Some(grantee),
        permission: Some(Permission::from(g.permission.s3_name().to_owned())),
    }
}

fn invalid_id() -> s3s::S3Error {
    s3_error!(InvalidArgument, "Invalid id")
}

fn by_email() -> s3s::S3Error {
    s3_error!(
        UnresolvableGrantByEmailAddress,
        "The e-mail address you provided does not match any account on record."
    )
}

fn group(uri: &str) -> S3Result<StoredGrantee> {
    if [ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY].contains(&uri) {
        Ok(StoredGrantee::Group(uri.to_owned()))
    } else {
        Err(s3_error!(InvalidArgument, "Invalid group uri"))
    }
}

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
    /// The owner name of a canonical id, or InvalidArgument.
    fn grantee_by_id(&self, id: &str) -> S3Result<StoredGrantee> {
        self.gate
            .iam()
            .owner_by_canonical_id(id.trim())
            .map(StoredGrantee::Owner)
            .ok_or_else(invalid_id)
    }

    /// The grants of one `x-amz-grant-*` header: `id="…"`, `uri="…"` or `emailAddress="…"`,
    /// comma-separated.
    fn header_grants(
        &self,
        permission: StoredPermission,
        header: &str,
    ) -> S3Result<Vec<StoredGrant>> {
        let mut out = Vec::new();
        for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, value) = part
                .split_once('=')
                .ok_or_else(|| s3_error!(InvalidArgument, "Invalid grant header: {part}"))?;
            let value = value.trim().trim_matches('"');
            let grantee = match kind.trim() {
                "id" => self.grantee_by_id(value)?,
                "uri" => group(value)?,
                "emailAddress" => return Err(by_email()),
                other => {
                    return Err(s3_error!(
                        InvalidArgument,
                        "Invalid grantee type {other} in a grant header"
                    ));
                }
            };
            out.push(StoredGrant {
                grantee,
                permission,
            });
        }
        Ok(out)
    }

    /// The grants of an AccessControlPolicy document.
    fn document_grants(&self, policy: &AccessControlPolicy) -> S3Result<Vec<StoredGrant>> {
        let malformed = || {
            s3_error!(
                MalformedACLError,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )
        };
        let mut out = Vec::new();
        for g in policy.grants.iter().flatten() {
            let grantee = g.grantee.as_ref().ok_or_else(malformed)?;
            let permission = g
                .permission
                .as_ref()
                .and_then(|p| StoredPermission::from_s3(p.as_str()))
                .ok_or_else(malformed)?;
            let grantee = match grantee.type_.as_str() {
                Type::CANONICAL_USER => {
                    self.grantee_by_id(grantee.id.as_deref().ok_or_else(malformed)?)?
                }
                Type::GROUP => group(grantee.uri.as_deref().ok_or_else(malformed)?)?,
                Type::AMAZON_CUSTOMER_BY_EMAIL => return Err(by_email()),
                _ => return Err(malformed()),
            };
            out.push(StoredGrant {
                grantee,
                permission,
            });
        }
        Ok(out)
    }

    /// What a bucket's ACL checks need: its owner, ownership setting and Public Access Block.
    pub(super) async fn bucket_acl_facts(
        &self,
        rc: &RequestCtx,
        bucket: &str,
    ) -> S3Result<BucketAclFacts> {
        let b = bucket.to_owned();
        self.run(rc, move |s| {
            Ok(BucketAclFacts {
                owner: bucket_owner(s, &b)?,
                ownership: Ownership::of(s.bucket_config(&b, OWNERSHIP_DOC)?.as_deref()),
                block: PublicAccessBlock::read(s, &b)?,
            })
        })
        .await
    }

    /// The ACL a request asks for, owned by `owner`, checked as AWS checks it (see the module
    /// doc); `None` when it asks for none.
    pub(super) fn requested_acl(
        &self,
        req: &AclRequest<'_>,
        facts: &BucketAclFacts,
        owner: &str,
        object: bool,
    ) -> S3Result<Option<StoredAcl>> {
        if req.is_empty() {
            return Ok(None);
        }
        if let Some(c) = req.canned
            && !CANNED.contains(&c)
        {
            return Err(s3_error!(
                InvalidArgument,
                "The canned ACL {c} is not valid"
            ));
        }
        if req.canned.is_some() && !req.headers.is_empty() {
            return Err(s3_error!(
                InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed"
            ));
        }
        if req.policy.is_some() && (req.canned.is_some() || !req.headers.is_empty()) {
            return Err(s3_error!(
                UnexpectedContent,
                "This request does not support content with ACL headers"
            ));
        }
        let acl = if let Some(c) = req.canned {
            StoredAcl::canned(c, owner, &facts.owner, object)
                .ok_or_else(|| s3_error!(InvalidArgument, "The canned ACL {c} is not valid"))?
        } else {
            let mut grants = Vec::new();
            for (permission, header) in &req.headers {
                grants.extend(self.header_grants(*permission, header)?);
            }
            if let Some(p) = req.policy {
                grants.extend(self.document_grants(p)?);
            }
            StoredAcl {
                owner: owner.to_owned(),
                grants,
                version: None,
            }
        };
        if facts.ownership == Ownership::BucketOwnerEnforced
            && acl != StoredAcl::private(&facts.owner)
        {
            return Err(s3_error!(
                AccessControlListNotSupported,
                "The bucket does not allow ACLs"
            ));
        }
        if acl.is_public() && facts.block.block_public_acls {
            return Err(super::public_access::blocked());
        }
        Ok(Some(acl))
    }

    /// The ACL a write that creates an object asks for, checked before any data is read, with
    /// the object's owner: the writer, or the bucket owner where the bucket's ownership
    /// controls give it the object. `None` for the default (private to the bucket owner),
    /// which reads nothing when the request names no ACL.
    pub(super) async fn object_write_acl(
        &self,
        rc: &RequestCtx,
        writer: &Principal,
        bucket: &str,
        req: &AclRequest<'_>,
    ) -> S3Result<Option<StoredAcl>> {
        if req.is_empty() {
            return Ok(None);
        }
        let facts = self.bucket_acl_facts(rc, bucket).await?;
        let to_bucket_owner = match facts.ownership {
            Ownership::BucketOwnerEnforced => true,
            Ownership::BucketOwnerPreferred => req.canned == Some("bucket-owner-full-control"),
            Ownership::Unset | Ownership::ObjectWriter => false,
        };
        let owner = if to_bucket_owner {
            facts.owner.clone()
        } else {
            owner_name(writer)
        };
        let acl = self.requested_acl(req, &facts, &owner, true)?;
        Ok(acl.filter(|a| *a != StoredAcl::private(&facts.owner)))
    }

    /// Puts an object's ACL in force after a write created version `seq`: `acl` (from
    /// `object_write_acl`), or the default, which takes out any ACL the key had. Settling is
    /// not part of the write's commit, so concurrent writes to one key settle in any order;
    /// an ACL is only put in force while its version is the key's current one, and taken
    /// out again if a newer write overtook it meanwhile (that write settles its own).
    pub(super) async fn settle_object_acl(
        &self,
        rc: &RequestCtx,
        bucket: &str,
        key: &str,
        seq: u64,
        acl: Option<StoredAcl>,
    ) -> S3Result<()> {
        if acl.is_none()
            && !self
                .gate
                .iam()
                .snapshot_now()
                .engine
                .has_object_acl(bucket, key)
        {
            return Ok(());
        }
        let had_acl = acl.is_some();
        self.put_acl(rc, bucket, Some((key, Some(seq))), acl)
            .await?;
        if had_acl {
            self.retract_overtaken_acl(rc, bucket, key, seq).await?;
        }
        Ok(())
    }

    /// Takes out the ACL set for version `seq` of a key when that version is no longer the
    /// current one (a newer write came between the check and the change).
    async fn retract_overtaken_acl(
        &self,
        rc: &RequestCtx,
        bucket: &str,
        key: &str,
        seq: u64,
    ) -> S3Result<()> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let (b2, k2) = (b.clone(), k.clone());
        let outcome = self
            .change_policies(
                rc,
                move |s| {
                    let current = s.head_object(&b, &k).map(|m| m.seq).ok();
                    let doc = object_acl_doc(&k);
                    let mine = s
                        .bucket_config(&b, &doc)?
                        .as_deref()
                        .and_then(StoredAcl::decode)
                        .is_some_and(|a| a.version == Some(seq));
                    if current == Some(seq) || !mine {
                        return Ok((Changes::default(), false));
                    }
                    let change = AclChange::Remove { bucket: b, key: k };
                    Ok((
                        Changes {
                            acls: vec![change],
                            ..Changes::default()
                        },
                        true,
                    ))
                },
                move |s, retract| {
                    if retract {
                        s.set_bucket_config(&b2, &object_acl_doc(&k2), None)?;
                    }
                    Ok(())
                },
            )
            .await?;
        outcome.map_err(|e| s3_error!(InternalError, "ACL grants: {e}"))
    }

    /// Stores the ACL of a bucket (`object` None) or of an object (its key, and for a write
    /// the sequence of the version written: nothing changes unless that version is still the
    /// current one) and puts its grants in force; `None` (or, for a bucket, the owner's full
    /// control alone) is the default and is stored as no document.
    pub(super) async fn put_acl(
        &self,
        rc: &RequestCtx,
        bucket: &str,
        object: Option<(&str, Option<u64>)>,
        acl: Option<StoredAcl>,
    ) -> S3Result<()> {
        let (b, k) = (bucket.to_owned(), object.map(|(k, _)| k.to_owned()));
        let written = object.and_then(|(_, seq)| seq);
        let (b2, k2) = (b.clone(), k.clone());
        let outcome = self
            .change_policies(
                rc,
                move |s| {
                    if let (Some(key), Some(seq)) = (&k, written)
                        && s.head_object(&b, key).map(|m| m.seq).ok() != Some(seq)
                    {
                        // Overtaken by a newer write, which settles its own ACL.
                        return Ok((Changes::default(), None));
                    }
                    let owner = bucket_owner(s, &b)?;
                    let acl = acl
                        .filter(|a| k.is_some() || *a != StoredAcl::private(&owner))
                        .map(|a| StoredAcl {
                            version: written,
                            ..a
                        });
                    let ignore = PublicAccessBlock::read(s, &b)?.ignore_public_acls;
                    let change = match (&acl, k) {
                        (Some(a), key) => AclChange::Set {
                            bucket: b.clone(),
                            key,
                            grants: a.cedar_grants(&owner, ignore),
                        },
                        (None, None) => AclChange::Set {
                            bucket: b.clone(),
                            key: None,
                            grants: Vec::new(),
                        },
                        (None, Some(key)) => AclChange::Remove {
                            bucket: b.clone(),
                            key,
                        },
                    };
                    let doc = acl.as_ref().map(StoredAcl::encode);
                    Ok((
                        Changes {
                            acls: vec![change],
                            ..Changes::default()
                        },
                        Some(doc),
                    ))
                },
                move |s, doc| {
                    let Some(doc) = doc else {
                        return Ok(());
                    };
                    let name = k2
                        .as_deref()
                        .map_or_else(|| BUCKET_ACL_DOC.to_owned(), object_acl_doc);
                    s.set_bucket_config(&b2, &name, doc.as_deref())
                },
            )
            .await?;
        outcome.map_err(|e| s3_error!(InternalError, "ACL grants: {e}"))
    }

    /// The stored ACL of a bucket, or its default.
    async fn bucket_acl(&self, rc: &RequestCtx, bucket: &str) -> S3Result<StoredAcl> {
        let b = bucket.to_owned();
        self.run(rc, move |s| {
            let stored = s.bucket_config(&b, BUCKET_ACL_DOC)?;
            let owner = bucket_owner(s, &b)?;
            Ok(stored
                .as_deref()
                .and_then(StoredAcl::decode)
                .unwrap_or_else(|| StoredAcl::private(&owner)))
        })
        .await
    }

    /// The stored ACL of an object that exists (NoSuchKey, or the delete marker's answer,
    /// otherwise), or its default.
    async fn object_acl(
        &self,
        rc: &RequestCtx,
        bucket: &str,
        key: &str,
        version: Option<String>,
    ) -> S3Result<StoredAcl> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let (m, stored, owner) = self
            .run(rc, move |s| {
                let m = s.head_version(&b, &k, version.as_deref())?;
                let stored = s.bucket_config(&b, &object_acl_doc(&k))?;
                Ok((m, stored, bucket_owner(s, &b)?))
            })
            .await?;
        if m.delete_marker {
            return Err(super::delete_marker_error(&m, true));
        }
        Ok(stored
            .as_deref()
            .and_then(StoredAcl::decode)
            .unwrap_or_else(|| StoredAcl::private(&owner)))
    }

    pub(super) async fn do_get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let rc = ctx(&req)?;
        let acl = self.bucket_acl(&rc, &req.input.bucket).await?;
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(acl.grants.iter().map(grant_dto).collect()),
            owner: Some(owner_dto(&acl.owner)),
        }))
    }

    pub(super) async fn do_put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let mut asked = acl_request!(i, BucketCannedACL);
        asked.policy = i.access_control_policy.as_ref();
        let facts = self.bucket_acl_facts(&rc, &i.bucket).await?;
        let acl = self
            .requested_acl(&asked, &facts, &facts.owner, false)?
            .ok_or_else(|| {
                s3_error!(
                    MissingSecurityHeader,
                    "Your request was missing a required header: x-amz-acl"
                )
            })?;
        self.put_acl(&rc, &i.bucket, None, Some(acl)).await?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    pub(super) async fn do_get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let acl = self
            .object_acl(&rc, &i.bucket, &i.key, i.version_id)
            .await?;
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(acl.grants.iter().map(grant_dto).collect()),
            owner: Some(owner_dto(&acl.owner)),
            request_charged: None,
        }))
    }

    pub(super) async fn do_put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let mut asked = acl_request!(i, ObjectCannedACL);
        asked.policy = i.access_control_policy.as_ref();
        let current = self
            .object_acl(&rc, &i.bucket, &i.key, i.version_id.clone())
            .await?;
        let facts = self.bucket_acl_facts(&rc, &i.bucket).await?;
        let acl = self
            .requested_acl(&asked, &facts, &current.owner, true)?
            .ok_or_else(|| {
                s3_error!(
                    MissingSecurityHeader,
                    "Your request was missing a required header: x-amz-acl"
                )
            })?;
        let acl = Some(acl).filter(|a| *a != StoredAcl::private(&facts.owner));
        self.put_acl(&rc, &i.bucket, Some((&i.key, None)), acl)
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
            .run(&rc, move |s| s.bucket_config(&b, OWNERSHIP_DOC))
            .await?;
        // AWS: a bucket without ownership controls answers OwnershipControlsNotFoundError.
        let value = doc.and_then(|d| String::from_utf8(d).ok()).ok_or_else(|| {
            s3_error!(
                OwnershipControlsNotFoundError,
                "The bucket ownership controls were not found"
            )
        })?;
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
        let value = checked_ownership(rule.object_ownership.as_str())?;
        let b = i.bucket;
        self.run(&rc, move |s| {
            s.set_bucket_config(&b, OWNERSHIP_DOC, Some(value.as_bytes()))
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
        self.run(&rc, move |s| s.set_bucket_config(&b, OWNERSHIP_DOC, None))
            .await?;
        Ok(S3Response::new(
            DeleteBucketOwnershipControlsOutput::default(),
        ))
    }
}

/// An ObjectOwnership value AWS knows, or MalformedXML.
pub(super) fn checked_ownership(value: &str) -> S3Result<String> {
    if matches!(
        value,
        ObjectOwnership::BUCKET_OWNER_ENFORCED
            | ObjectOwnership::BUCKET_OWNER_PREFERRED
            | ObjectOwnership::OBJECT_WRITER
    ) {
        Ok(value.to_owned())
    } else {
        Err(s3_error!(MalformedXML, "Unknown ObjectOwnership {value}"))
    }
}
