//! Who owns buckets and objects, and their ACLs as stored: owner names and the canonical ids
//! S3 shows for them, the ACL documents (`acl` for a bucket, `acl/KEY` for an object,
//! `upload-acl/ID` for a multipart upload until it completes), the canned ACLs, the Public
//! Access Block settings ACLs are subject to, and the Cedar grants an ACL becomes.
//!
//! - An owner name is `root`, `user:NAME` (sessions and service accounts count as the user
//!   they act for) or `anonymous`. Its canonical id is the hex SHA-256 of `fsgate-owner:NAME`:
//!   64 hex digits like AWS's, stable, and revealing nothing.
//! - A bucket's owner is the principal that created it (buckets from before owners were kept
//!   belong to root). An object belongs to its bucket's owner unless it was written with an
//!   ACL, in which case its writer owns it (ObjectWriter) unless the bucket's ownership
//!   controls say otherwise; only such objects carry an ACL document.
//! - Grants to the bucket owner on what it owns decide nothing (its roles decide); every other
//!   grant is a Cedar policy (`fsgate_policy::AclGrant`), so bucket policy denies still win
//!   and `policy test` and `who-can` show it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use fsgate_policy::{AclChange, AclGrant, AclGrantee, AclPermission, Principal};
use fsgate_store::{Store, StoreResult};

/// The owner of buckets made before owners were recorded, and of root's.
pub const ROOT_OWNER: &str = "root";

/// AWS's group of everyone, signed or not.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// AWS's group of every signed request.
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// AWS's log delivery group (kept and shown; it decides nothing here).
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// The bucket document holding the bucket's ACL (absent: private to its owner).
pub const BUCKET_ACL_DOC: &str = "acl";
/// The bucket document holding the object ownership setting.
pub const OWNERSHIP_DOC: &str = "ownership";
/// The bucket document holding the Public Access Block settings.
pub const PUBLIC_ACCESS_BLOCK_DOC: &str = "public-access-block";
/// Where object ACL documents are kept: `acl/KEY`.
const OBJECT_ACL_PREFIX: &str = "acl/";

/// The bucket document of an object's ACL.
#[must_use]
pub fn object_acl_doc(key: &str) -> String {
    format!("{OBJECT_ACL_PREFIX}{key}")
}

/// The bucket document of a multipart upload's ACL, until it completes.
#[must_use]
pub fn upload_acl_doc(upload_id: &str) -> String {
    format!("upload-acl/{upload_id}")
}

/// The owner name of what a principal creates.
#[must_use]
pub fn owner_name(p: &Principal) -> String {
    match p.unlimited() {
        Principal::Root(_) => ROOT_OWNER.to_owned(),
        Principal::User { name, .. } => format!("user:{name}"),
        Principal::Anonymous | Principal::Limited { .. } => "anonymous".to_owned(),
        // What a link uploads belongs to whoever made the link.
        Principal::ShareLink(link) => owner_name(&link.creator),
    }
}

/// The canonical id S3 shows for an owner.
#[must_use]
pub fn canonical_id(owner: &str) -> String {
    hex::encode(Sha256::digest(format!("fsgate-owner:{owner}")))
}

/// The display name S3 shows for an owner: the user's name, `root` or `anonymous`.
#[must_use]
pub fn display_name(owner: &str) -> &str {
    owner.strip_prefix("user:").unwrap_or(owner)
}

/// A bucket's owner (root for buckets from before owners were kept).
pub fn bucket_owner(store: &Store, bucket: &str) -> StoreResult<String> {
    Ok(store
        .bucket_owner(bucket)?
        .unwrap_or_else(|| ROOT_OWNER.to_owned()))
}

/// A bucket's object ownership setting, as AWS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOwnership {
    /// No setting: ACLs apply, and a writer that sets one owns what it writes.
    Unset,
    /// `ObjectWriter`: as `Unset`, stated.
    ObjectWriter,
    /// `BucketOwnerPreferred`: an object written with `bucket-owner-full-control` is the
    /// bucket owner's.
    BucketOwnerPreferred,
    /// `BucketOwnerEnforced`: ACLs are disabled; everything is the bucket owner's.
    BucketOwnerEnforced,
}

impl ObjectOwnership {
    /// The setting of a stored document.
    #[must_use]
    pub fn of(doc: Option<&[u8]>) -> Self {
        match doc {
            Some(b"ObjectWriter") => Self::ObjectWriter,
            Some(b"BucketOwnerPreferred") => Self::BucketOwnerPreferred,
            Some(b"BucketOwnerEnforced") => Self::BucketOwnerEnforced,
            _ => Self::Unset,
        }
    }
}

/// A bucket's Public Access Block settings (all off when none are stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Public ACLs are refused.
    pub block_public_acls: bool,
    /// Public ACLs grant nothing.
    pub ignore_public_acls: bool,
    /// Public bucket policies are refused.
    pub block_public_policy: bool,
    /// A public bucket policy does not let anonymous callers in.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// The settings of a stored document.
    #[must_use]
    pub fn of(doc: Option<&[u8]>) -> Self {
        doc.and_then(|d| serde_json::from_slice(d).ok())
            .unwrap_or_default()
    }

    /// The settings in force for a bucket: each one on when the bucket's or the account's
    /// is (AWS applies the most restrictive combination).
    pub fn read(store: &Store, bucket: &str) -> StoreResult<Self> {
        Ok(Self::bucket(store, bucket)?.or(Self::account(store)?))
    }

    /// A bucket's own settings.
    pub fn bucket(store: &Store, bucket: &str) -> StoreResult<Self> {
        Ok(Self::of(
            store
                .bucket_config(bucket, PUBLIC_ACCESS_BLOCK_DOC)?
                .as_deref(),
        ))
    }

    /// The account's settings (admin API).
    pub fn account(store: &Store) -> StoreResult<Self> {
        Ok(Self::of(
            store.account_setting(PUBLIC_ACCESS_BLOCK_DOC)?.as_deref(),
        ))
    }

    /// Each setting on when either's is.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self {
            block_public_acls: self.block_public_acls || other.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || other.ignore_public_acls,
            block_public_policy: self.block_public_policy || other.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || other.restrict_public_buckets,
        }
    }
}

/// An ACL permission, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    /// READ.
    Read,
    /// WRITE.
    Write,
    /// READ_ACP.
    ReadAcp,
    /// WRITE_ACP.
    WriteAcp,
    /// FULL_CONTROL.
    FullControl,
}

impl Permission {
    /// The name S3 uses.
    #[must_use]
    pub fn s3_name(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::ReadAcp => "READ_ACP",
            Self::WriteAcp => "WRITE_ACP",
            Self::FullControl => "FULL_CONTROL",
        }
    }

    /// The permission S3 names so.
    #[must_use]
    pub fn from_s3(name: &str) -> Option<Self> {
        Some(match name {
            "READ" => Self::Read,
            "WRITE" => Self::Write,
            "READ_ACP" => Self::ReadAcp,
            "WRITE_ACP" => Self::WriteAcp,
            "FULL_CONTROL" => Self::FullControl,
            _ => return None,
        })
    }

    fn cedar(self) -> AclPermission {
        match self {
            Self::Read => AclPermission::Read,
            Self::Write => AclPermission::Write,
            Self::ReadAcp => AclPermission::ReadAcp,
            Self::WriteAcp => AclPermission::WriteAcp,
            Self::FullControl => AclPermission::FullControl,
        }
    }
}

/// Who a stored grant is to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// An owner name (`root`, `user:NAME`).
    Owner(String),
    /// A group, by AWS's URI.
    Group(String),
}

/// One stored grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGrant {
    /// To whom.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

/// A bucket's or an object's ACL as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAcl {
    /// The owner of the bucket or object.
    pub owner: String,
    /// The grants, in the order given.
    pub grants: Vec<StoredGrant>,
    /// For an object's ACL set by a write: the commit sequence of the version written, so
    /// that a later write's settling can tell whose ACL is in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl StoredAcl {
    /// Owner full control, nothing else: every bucket's and object's default.
    #[must_use]
    pub fn private(owner: &str) -> Self {
        Self {
            owner: owner.to_owned(),
            grants: vec![StoredGrant {
                grantee: Grantee::Owner(owner.to_owned()),
                permission: Permission::FullControl,
            }],
            version: None,
        }
    }

    /// A canned ACL (`x-amz-acl`) of a bucket (`object` false) or an object owned by `owner`
    /// in a bucket owned by `bucket_owner`; `None` for a name AWS does not know.
    #[must_use]
    pub fn canned(name: &str, owner: &str, bucket_owner: &str, object: bool) -> Option<Self> {
        let mut acl = Self::private(owner);
        let mut add = |grantee: Grantee, permission| {
            acl.grants.push(StoredGrant {
                grantee,
                permission,
            });
        };
        let group = |uri: &str| Grantee::Group(uri.to_owned());
        match name {
            "private" | "aws-exec-read" => {}
            "public-read" => add(group(ALL_USERS), Permission::Read),
            "public-read-write" => {
                add(group(ALL_USERS), Permission::Read);
                add(group(ALL_USERS), Permission::Write);
            }
            "authenticated-read" => add(group(AUTHENTICATED_USERS), Permission::Read),
            "bucket-owner-read" if object && owner != bucket_owner => {
                add(Grantee::Owner(bucket_owner.to_owned()), Permission::Read);
            }
            "bucket-owner-full-control" if object && owner != bucket_owner => {
                add(
                    Grantee::Owner(bucket_owner.to_owned()),
                    Permission::FullControl,
                );
            }
            "bucket-owner-read" | "bucket-owner-full-control" => {}
            "log-delivery-write" => {
                add(group(LOG_DELIVERY), Permission::Write);
                add(group(LOG_DELIVERY), Permission::ReadAcp);
            }
            _ => return None,
        }
        Some(acl)
    }

    /// True when it grants anything to AllUsers or AuthenticatedUsers (AWS's "public").
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| {
            matches!(&g.grantee, Grantee::Group(u) if u == ALL_USERS || u == AUTHENTICATED_USERS)
        })
    }

    /// The grants that Cedar decides, for an ACL in a bucket owned by `bucket_owner`: all but
    /// the bucket owner's on what it owns (its roles decide those) and log delivery's; public
    /// ones only when `ignore_public` is off.
    #[must_use]
    pub fn cedar_grants(&self, bucket_owner: &str, ignore_public: bool) -> Vec<AclGrant> {
        self.grants
            .iter()
            .filter_map(|g| {
                let grantee = match &g.grantee {
                    Grantee::Owner(o) if o == bucket_owner && self.owner == bucket_owner => {
                        return None;
                    }
                    Grantee::Owner(o) if o == ROOT_OWNER => AclGrantee::Root,
                    Grantee::Owner(o) => AclGrantee::User(o.strip_prefix("user:")?.to_owned()),
                    Grantee::Group(u) if u == ALL_USERS && !ignore_public => AclGrantee::AllUsers,
                    Grantee::Group(u) if u == AUTHENTICATED_USERS && !ignore_public => {
                        AclGrantee::AuthenticatedUsers
                    }
                    Grantee::Group(_) => return None,
                };
                Some(AclGrant {
                    grantee,
                    permission: g.permission.cedar(),
                })
            })
            .collect()
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored ACL; `None` for a document that does not read as one.
    #[must_use]
    pub fn decode(doc: &[u8]) -> Option<Self> {
        serde_json::from_slice(doc).ok()
    }
}

/// The ACL changes that put one bucket's stored ACLs (its own and its objects') in force,
/// with `IgnorePublicAcls` as stored or as given.
pub fn bucket_acl_changes(
    store: &Store,
    bucket: &str,
    ignore_public: Option<bool>,
) -> StoreResult<Vec<AclChange>> {
    let owner = bucket_owner(store, bucket)?;
    let ignore = match ignore_public {
        Some(i) => i,
        None => PublicAccessBlock::read(store, bucket)?.ignore_public_acls,
    };
    let mut changes = Vec::new();
    if let Some(acl) = store
        .bucket_config(bucket, BUCKET_ACL_DOC)?
        .as_deref()
        .and_then(StoredAcl::decode)
    {
        changes.push(AclChange::Set {
            bucket: bucket.to_owned(),
            key: None,
            grants: acl.cedar_grants(&owner, ignore),
        });
    }
    for (name, doc) in store.bucket_configs_under(bucket, OBJECT_ACL_PREFIX)? {
        let (Some(key), Some(acl)) = (
            name.strip_prefix(OBJECT_ACL_PREFIX),
            StoredAcl::decode(&doc),
        ) else {
            continue;
        };
        changes.push(AclChange::Set {
            bucket: bucket.to_owned(),
            key: Some(key.to_owned()),
            grants: acl.cedar_grants(&owner, ignore),
        });
    }
    Ok(changes)
}

/// The ACL changes that put every stored ACL in force (start-up).
pub fn all_acl_changes(store: &Store) -> StoreResult<Vec<AclChange>> {
    let mut changes = Vec::new();
    for (bucket, _) in store.list_buckets()? {
        changes.extend(bucket_acl_changes(store, &bucket, None)?);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_expand_as_aws_documents() {
        let acl = StoredAcl::canned("public-read-write", "user:a", "user:a", false);
        assert_eq!(acl.as_ref().map(|a| a.grants.len()), Some(3));
        assert!(acl.is_some_and(|a| a.is_public()));
        // bucket-owner-* add the bucket owner only when another owns the object.
        let own = StoredAcl::canned("bucket-owner-read", "user:a", "user:a", true);
        assert_eq!(own, Some(StoredAcl::private("user:a")));
        let other = StoredAcl::canned("bucket-owner-full-control", "user:b", "user:a", true);
        assert_eq!(other.map(|a| a.grants.len()), Some(2));
        assert_eq!(
            StoredAcl::canned("public-ready", "root", "root", false),
            None
        );
    }

    #[test]
    fn the_bucket_owners_own_grants_decide_nothing() {
        let mut acl = StoredAcl::private("user:a");
        assert!(acl.cedar_grants("user:a", false).is_empty());
        acl.grants.push(StoredGrant {
            grantee: Grantee::Group(ALL_USERS.into()),
            permission: Permission::Read,
        });
        assert_eq!(acl.cedar_grants("user:a", false).len(), 1);
        assert!(acl.cedar_grants("user:a", true).is_empty());
        // Another's object: its owner's grant decides.
        let theirs = StoredAcl::private("user:b");
        assert_eq!(
            theirs.cedar_grants("user:a", false),
            vec![AclGrant {
                grantee: AclGrantee::User("b".into()),
                permission: AclPermission::FullControl
            }]
        );
        assert_eq!(canonical_id("root").len(), 64);
        assert_ne!(canonical_id("user:a"), canonical_id("user:b"));
    }
}
