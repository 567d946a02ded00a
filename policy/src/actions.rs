//! The actions fsgate decides: one per S3 operation, and one per admin API call.

/// Every action a request can be decided as. Matched exhaustively: a new operation cannot slip
/// past policy without a name here and in `policies/fsgate.cedarschema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// GetObject.
    GetObject,
    /// HeadObject.
    HeadObject,
    /// PutObject.
    PutObject,
    /// CopyObject (the destination; the source is decided as GetObject).
    CopyObject,
    /// DeleteObject (also each key of DeleteObjects).
    DeleteObject,
    /// CreateMultipartUpload.
    CreateMultipartUpload,
    /// UploadPart.
    UploadPart,
    /// UploadPartCopy (the destination; the source is decided as GetObject).
    UploadPartCopy,
    /// CompleteMultipartUpload.
    CompleteMultipartUpload,
    /// AbortMultipartUpload.
    AbortMultipartUpload,
    /// ListParts.
    ListParts,
    /// HeadBucket.
    HeadBucket,
    /// GetBucketLocation.
    GetBucketLocation,
    /// ListObjects (v1).
    ListObjects,
    /// ListObjectsV2.
    ListObjectsV2,
    /// ListMultipartUploads.
    ListMultipartUploads,
    /// CreateBucket.
    CreateBucket,
    /// DeleteBucket.
    DeleteBucket,
    /// ListBuckets.
    ListBuckets,
    /// Any S3 operation fsgate does not implement.
    Unsupported,
    /// Admin: list users.
    AdminListUsers,
    /// Admin: add a user.
    AdminAddUser,
    /// Admin: remove a user.
    AdminRemoveUser,
    /// Admin: enable a user.
    AdminEnableUser,
    /// Admin: disable a user.
    AdminDisableUser,
    /// Admin: create an access key.
    AdminCreateKey,
    /// Admin: list access keys.
    AdminListKeys,
    /// Admin: delete an access key.
    AdminDeleteKey,
    /// Admin: add a user to a group.
    AdminAddGroupMember,
    /// Admin: remove a user from a group.
    AdminRemoveGroupMember,
    /// Admin: attach a role or policy.
    AdminAttachPolicy,
    /// Admin: detach a policy.
    AdminDetachPolicy,
    /// Admin: list attached policies.
    AdminListPolicies,
    /// Admin: query the audit log.
    AdminQueryAudit,
}

/// What kind of resource an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// An object in a bucket.
    Object,
    /// A bucket.
    Bucket,
    /// The whole service.
    Service,
}

impl Action {
    /// The Cedar action id (`Action::"s3:GetObject"`).
    #[must_use]
    pub fn cedar_name(&self) -> &'static str {
        match self {
            Action::GetObject => "s3:GetObject",
            Action::HeadObject => "s3:HeadObject",
            Action::PutObject => "s3:PutObject",
            Action::CopyObject => "s3:CopyObject",
            Action::DeleteObject => "s3:DeleteObject",
            Action::CreateMultipartUpload => "s3:CreateMultipartUpload",
            Action::UploadPart => "s3:UploadPart",
            Action::UploadPartCopy => "s3:UploadPartCopy",
            Action::CompleteMultipartUpload => "s3:CompleteMultipartUpload",
            Action::AbortMultipartUpload => "s3:AbortMultipartUpload",
            Action::ListParts => "s3:ListParts",
            Action::HeadBucket => "s3:HeadBucket",
            Action::GetBucketLocation => "s3:GetBucketLocation",
            Action::ListObjects => "s3:ListObjects",
            Action::ListObjectsV2 => "s3:ListObjectsV2",
            Action::ListMultipartUploads => "s3:ListMultipartUploads",
            Action::CreateBucket => "s3:CreateBucket",
            Action::DeleteBucket => "s3:DeleteBucket",
            Action::ListBuckets => "s3:ListBuckets",
            Action::Unsupported => "s3:Unsupported",
            Action::AdminListUsers => "admin:ListUsers",
            Action::AdminAddUser => "admin:AddUser",
            Action::AdminRemoveUser => "admin:RemoveUser",
            Action::AdminEnableUser => "admin:EnableUser",
            Action::AdminDisableUser => "admin:DisableUser",
            Action::AdminCreateKey => "admin:CreateKey",
            Action::AdminListKeys => "admin:ListKeys",
            Action::AdminDeleteKey => "admin:DeleteKey",
            Action::AdminAddGroupMember => "admin:AddGroupMember",
            Action::AdminRemoveGroupMember => "admin:RemoveGroupMember",
            Action::AdminAttachPolicy => "admin:AttachPolicy",
            Action::AdminDetachPolicy => "admin:DetachPolicy",
            Action::AdminListPolicies => "admin:ListPolicies",
            Action::AdminQueryAudit => "admin:QueryAudit",
        }
    }

    /// The resource kind the action applies to.
    #[must_use]
    pub fn resource_kind(&self) -> ResourceKind {
        match self {
            Action::GetObject
            | Action::HeadObject
            | Action::PutObject
            | Action::CopyObject
            | Action::DeleteObject
            | Action::CreateMultipartUpload
            | Action::UploadPart
            | Action::UploadPartCopy
            | Action::CompleteMultipartUpload
            | Action::AbortMultipartUpload
            | Action::ListParts => ResourceKind::Object,
            Action::HeadBucket
            | Action::GetBucketLocation
            | Action::ListObjects
            | Action::ListObjectsV2
            | Action::ListMultipartUploads
            | Action::CreateBucket
            | Action::DeleteBucket => ResourceKind::Bucket,
            Action::ListBuckets
            | Action::Unsupported
            | Action::AdminListUsers
            | Action::AdminAddUser
            | Action::AdminRemoveUser
            | Action::AdminEnableUser
            | Action::AdminDisableUser
            | Action::AdminCreateKey
            | Action::AdminListKeys
            | Action::AdminDeleteKey
            | Action::AdminAddGroupMember
            | Action::AdminRemoveGroupMember
            | Action::AdminAttachPolicy
            | Action::AdminDetachPolicy
            | Action::AdminListPolicies
            | Action::AdminQueryAudit => ResourceKind::Service,
        }
    }

    /// True for bucket listings, whose prefix places the bucket under granted prefixes.
    #[must_use]
    pub fn is_listing(&self) -> bool {
        matches!(
            self,
            Action::ListObjects | Action::ListObjectsV2 | Action::ListMultipartUploads
        )
    }

    /// Looks an action up by its Cedar name.
    #[must_use]
    pub fn from_cedar_name(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|a| a.cedar_name() == name)
    }
}

/// Every action, for tools (`who-can`, tests).
pub const ALL: [Action; 34] = [
    Action::GetObject,
    Action::HeadObject,
    Action::PutObject,
    Action::CopyObject,
    Action::DeleteObject,
    Action::CreateMultipartUpload,
    Action::UploadPart,
    Action::UploadPartCopy,
    Action::CompleteMultipartUpload,
    Action::AbortMultipartUpload,
    Action::ListParts,
    Action::HeadBucket,
    Action::GetBucketLocation,
    Action::ListObjects,
    Action::ListObjectsV2,
    Action::ListMultipartUploads,
    Action::CreateBucket,
    Action::DeleteBucket,
    Action::ListBuckets,
    Action::Unsupported,
    Action::AdminListUsers,
    Action::AdminAddUser,
    Action::AdminRemoveUser,
    Action::AdminEnableUser,
    Action::AdminDisableUser,
    Action::AdminCreateKey,
    Action::AdminListKeys,
    Action::AdminDeleteKey,
    Action::AdminAddGroupMember,
    Action::AdminRemoveGroupMember,
    Action::AdminAttachPolicy,
    Action::AdminDetachPolicy,
    Action::AdminListPolicies,
    Action::AdminQueryAudit,
];
