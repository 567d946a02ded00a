//! S3 ACL grants as Cedar policies. Each grant of a bucket's or an object's ACL to another
//! user, or to AWS's AllUsers and AuthenticatedUsers groups, becomes one `permit` built as
//! Cedar's JSON form (names enter only as entity ids), scoped to the bucket or object, with
//! the actions AWS documents for its permission. The ids (`acl:BUCKET#N`,
//! `acl:BUCKET/KEY#N`) name the grant in decisions, `policy test` and `who-can`.

use cedar_policy::{Policy, PolicyId};
use serde_json::{Value, json};

use crate::actions::Action;
use crate::load::PolicyError;

/// Who an ACL grant is to (those that can be decided: log delivery grants decide nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclGrantee {
    /// One user (sessions and service accounts act as their user).
    User(String),
    /// Root.
    Root,
    /// AWS's AllUsers group: anyone, signed or not.
    AllUsers,
    /// AWS's AuthenticatedUsers group: any signed request.
    AuthenticatedUsers,
}

/// An ACL permission, as AWS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclPermission {
    /// Bucket: list; object: read.
    Read,
    /// Bucket: create, overwrite and delete objects. (Objects have no WRITE.)
    Write,
    /// Read the ACL.
    ReadAcp,
    /// Write the ACL.
    WriteAcp,
    /// All of the above.
    FullControl,
}

/// One grant of an ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclGrant {
    /// To whom.
    pub grantee: AclGrantee,
    /// What.
    pub permission: AclPermission,
}

/// A change to the ACL grants in force (`Changes::acls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclChange {
    /// The grants of a bucket's ACL (`key` None) or of an object's, replacing those in force.
    /// An empty list keeps a record that the object has its own ACL (`has_object_acl`).
    Set {
        /// The bucket.
        bucket: String,
        /// The object, or the bucket itself.
        key: Option<String>,
        /// The grants that decide (grants to the owner of its own resource are left out by
        /// the caller: roles decide those).
        grants: Vec<AclGrant>,
    },
    /// An object's ACL record is gone (the key's ACL is its bucket's default again).
    Remove {
        /// The bucket.
        bucket: String,
        /// The object.
        key: String,
    },
    /// A bucket and every ACL in it are gone.
    DropBucket(String),
}

use AclPermission::{FullControl, Read, ReadAcp, Write, WriteAcp};

/// What a permission allows on a bucket (AWS: READ lists, WRITE creates, overwrites and
/// deletes objects in it — not their older versions, which only the owner may delete — and
/// runs multipart uploads, READ_ACP and WRITE_ACP read and write the bucket's ACL).
fn bucket_actions(p: AclPermission) -> &'static [Action] {
    match p {
        Read => &[
            Action::HeadBucket,
            Action::ListObjects,
            Action::ListObjectsV2,
            Action::ListObjectVersions,
            Action::ListMultipartUploads,
        ],
        Write => &[
            Action::PutObject,
            Action::CopyObject,
            Action::DeleteObject,
            Action::CreateMultipartUpload,
            Action::UploadPart,
            Action::UploadPartCopy,
            Action::CompleteMultipartUpload,
            Action::AbortMultipartUpload,
            Action::ListParts,
        ],
        ReadAcp => &[Action::GetBucketAcl],
        WriteAcp => &[Action::PutBucketAcl],
        FullControl => &[],
    }
}

/// What a permission allows on an object (AWS: READ reads its data and metadata, READ_ACP and
/// WRITE_ACP its ACL; WRITE does not apply to objects).
fn object_actions(p: AclPermission) -> &'static [Action] {
    match p {
        Read => &[
            Action::GetObject,
            Action::HeadObject,
            Action::GetObjectVersion,
        ],
        ReadAcp => &[Action::GetObjectAcl],
        WriteAcp => &[Action::PutObjectAcl],
        Write | FullControl => &[],
    }
}

/// The actions a grant allows on a bucket (`object` false) or an object.
#[must_use]
pub fn actions(p: AclPermission, object: bool) -> Vec<Action> {
    let of = if object {
        object_actions
    } else {
        bucket_actions
    };
    if p == FullControl {
        [Read, Write, ReadAcp, WriteAcp]
            .into_iter()
            .flat_map(|p| of(p).iter().copied())
            .collect()
    } else {
        of(p).to_vec()
    }
}

/// The Cedar id of an ACL's `n`th policy: `acl:BUCKET#N` or `acl:BUCKET/KEY#N`.
fn policy_id(bucket: &str, key: Option<&str>, n: usize) -> String {
    match key {
        None => format!("acl:{bucket}#{n}"),
        Some(k) => format!("acl:{bucket}/{k}#{n}"),
    }
}

/// The Cedar policy of one grant of the ACL of `bucket` (or of its object `key`).
pub(crate) fn grant_policy(
    bucket: &str,
    key: Option<&str>,
    n: usize,
    grant: &AclGrant,
) -> Result<Policy, PolicyError> {
    let actions: Vec<Value> = actions(grant.permission, key.is_some())
        .iter()
        .map(|a| json!({"type": "Action", "id": a.cedar_name()}))
        .collect();
    let resource = match key {
        None => json!({"type": "Bucket", "id": bucket}),
        Some(k) => json!({"type": "Object", "id": format!("{bucket}/{k}")}),
    };
    let principal = match &grant.grantee {
        AclGrantee::User(name) => json!({"op": "==", "entity": {"type": "User", "id": name}}),
        AclGrantee::Root => json!({"op": "==", "entity": {"type": "Root", "id": "root"}}),
        AclGrantee::AllUsers | AclGrantee::AuthenticatedUsers => json!({"op": "All"}),
    };
    let conditions = if grant.grantee == AclGrantee::AuthenticatedUsers {
        json!([{"kind": "unless", "body": {"is": {"left": {"Var": "principal"}, "entity_type": "Anonymous"}}}])
    } else {
        json!([])
    };
    let id = policy_id(bucket, key, n);
    let policy = json!({
        "effect": "permit",
        "principal": principal,
        "action": {"op": "in", "entities": actions},
        "resource": {"op": "in", "entity": resource},
        "conditions": conditions,
    });
    Policy::from_json(Some(PolicyId::new(&id)), policy)
        .map_err(|e| PolicyError::one(format!("ACL policy {id}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn grants_become_scoped_permits() {
        let g = AclGrant {
            grantee: AclGrantee::User("bob \"x\"".into()),
            permission: Read,
        };
        let text = grant_policy("b", Some("k\"; permit"), 0, &g)
            .unwrap()
            .to_string();
        assert!(text.contains(r#"principal == User::"bob \"x\"""#), "{text}");
        assert!(
            text.contains(r#"resource in Object::"b/k\"; permit""#),
            "{text}"
        );
        assert!(text.contains(r#"Action::"s3:GetObject""#), "{text}");
        let g = AclGrant {
            grantee: AclGrantee::AuthenticatedUsers,
            permission: FullControl,
        };
        let text = grant_policy("b", None, 1, &g).unwrap().to_string();
        assert!(text.contains("principal is Anonymous"), "{text}");
        assert!(text.contains(r#"Action::"s3:PutBucketAcl""#), "{text}");
        assert!(text.contains(r#"Action::"s3:ListObjectsV2""#), "{text}");
        assert!(text.contains(r#"Action::"s3:DeleteObject""#), "{text}");
        assert!(!text.contains("DeleteObjectVersion"), "{text}");
    }

    #[test]
    fn objects_have_no_write() {
        assert!(actions(Write, true).is_empty());
        assert_eq!(actions(FullControl, true).len(), 5);
    }
}
