//! The actions fsgate decides: one per S3 operation (with AWS's extra permissions where an
//! operation's meaning depends on its arguments: `s3:GetObjectVersion`,
//! `s3:DeleteObjectVersion`, `s3:BypassGovernanceRetention`), and one per admin API call.

/// What kind of resource an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// An object in a bucket.
    Object,
    /// A bucket.
    Bucket,
    /// The whole service.
    Service,
    /// A user (its service accounts).
    User,
}

/// Declares the action enum, its Cedar names and resource kinds, and `ALL`, from one table so
/// that they cannot disagree.
macro_rules! actions {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal, $kind:ident;)*) => {
        /// Every action a request can be decided as. Matched exhaustively: a new operation
        /// cannot slip past policy without a name here and in `policies/fsgate.cedarschema`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Action {
            /// The Cedar action id (`Action::"s3:GetObject"`).
            #[must_use]
            pub fn cedar_name(&self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// The resource kind the action applies to.
            #[must_use]
            pub fn resource_kind(&self) -> ResourceKind {
                match self {
                    $(Action::$variant => ResourceKind::$kind,)*
                }
            }
        }

        /// Every action, for tools (`who-can`, tests).
        pub const ALL: &[Action] = &[$(Action::$variant,)*];
    };
}

actions! {
    /// GetObject (the current version).
    GetObject => "s3:GetObject", Object;
    /// HeadObject (the current version).
    HeadObject => "s3:HeadObject", Object;
    /// GetObject or HeadObject of a named version.
    GetObjectVersion => "s3:GetObjectVersion", Object;
    /// GetObjectAttributes.
    GetObjectAttributes => "s3:GetObjectAttributes", Object;
    /// GetObjectTagging.
    GetObjectTagging => "s3:GetObjectTagging", Object;
    /// GetObjectRetention.
    GetObjectRetention => "s3:GetObjectRetention", Object;
    /// GetObjectLegalHold.
    GetObjectLegalHold => "s3:GetObjectLegalHold", Object;
    /// GetObjectAcl.
    GetObjectAcl => "s3:GetObjectAcl", Object;
    /// PutObject (also POST form uploads).
    PutObject => "s3:PutObject", Object;
    /// CopyObject (the destination; the source is decided as GetObject).
    CopyObject => "s3:CopyObject", Object;
    /// DeleteObject without a version (also each such key of DeleteObjects).
    DeleteObject => "s3:DeleteObject", Object;
    /// DeleteObject of a named version (also each such key of DeleteObjects).
    DeleteObjectVersion => "s3:DeleteObjectVersion", Object;
    /// PutObjectTagging.
    PutObjectTagging => "s3:PutObjectTagging", Object;
    /// DeleteObjectTagging.
    DeleteObjectTagging => "s3:DeleteObjectTagging", Object;
    /// PutObjectRetention.
    PutObjectRetention => "s3:PutObjectRetention", Object;
    /// PutObjectLegalHold.
    PutObjectLegalHold => "s3:PutObjectLegalHold", Object;
    /// Bypassing GOVERNANCE retention (decided in addition to the operation).
    BypassGovernanceRetention => "s3:BypassGovernanceRetention", Object;
    /// PutObjectAcl.
    PutObjectAcl => "s3:PutObjectAcl", Object;
    /// CreateMultipartUpload.
    CreateMultipartUpload => "s3:CreateMultipartUpload", Object;
    /// UploadPart.
    UploadPart => "s3:UploadPart", Object;
    /// UploadPartCopy (the destination; the source is decided as GetObject).
    UploadPartCopy => "s3:UploadPartCopy", Object;
    /// CompleteMultipartUpload.
    CompleteMultipartUpload => "s3:CompleteMultipartUpload", Object;
    /// AbortMultipartUpload.
    AbortMultipartUpload => "s3:AbortMultipartUpload", Object;
    /// ListParts.
    ListParts => "s3:ListParts", Object;
    /// HeadBucket.
    HeadBucket => "s3:HeadBucket", Bucket;
    /// GetBucketLocation.
    GetBucketLocation => "s3:GetBucketLocation", Bucket;
    /// GetBucketVersioning.
    GetBucketVersioning => "s3:GetBucketVersioning", Bucket;
    /// GetBucketTagging.
    GetBucketTagging => "s3:GetBucketTagging", Bucket;
    /// GetBucketCors.
    GetBucketCors => "s3:GetBucketCors", Bucket;
    /// GetBucketLifecycleConfiguration.
    GetBucketLifecycleConfiguration => "s3:GetBucketLifecycleConfiguration", Bucket;
    /// GetBucketEncryption.
    GetBucketEncryption => "s3:GetBucketEncryption", Bucket;
    /// GetObjectLockConfiguration.
    GetObjectLockConfiguration => "s3:GetObjectLockConfiguration", Bucket;
    /// GetBucketPolicy.
    GetBucketPolicy => "s3:GetBucketPolicy", Bucket;
    /// GetBucketPolicyStatus.
    GetBucketPolicyStatus => "s3:GetBucketPolicyStatus", Bucket;
    /// GetBucketAcl.
    GetBucketAcl => "s3:GetBucketAcl", Bucket;
    /// GetBucketOwnershipControls.
    GetBucketOwnershipControls => "s3:GetBucketOwnershipControls", Bucket;
    /// ListObjects (v1).
    ListObjects => "s3:ListObjects", Bucket;
    /// ListObjectsV2.
    ListObjectsV2 => "s3:ListObjectsV2", Bucket;
    /// ListObjectVersions.
    ListObjectVersions => "s3:ListObjectVersions", Bucket;
    /// ListMultipartUploads.
    ListMultipartUploads => "s3:ListMultipartUploads", Bucket;
    /// CreateBucket.
    CreateBucket => "s3:CreateBucket", Bucket;
    /// DeleteBucket.
    DeleteBucket => "s3:DeleteBucket", Bucket;
    /// PutBucketVersioning.
    PutBucketVersioning => "s3:PutBucketVersioning", Bucket;
    /// PutBucketTagging.
    PutBucketTagging => "s3:PutBucketTagging", Bucket;
    /// DeleteBucketTagging.
    DeleteBucketTagging => "s3:DeleteBucketTagging", Bucket;
    /// PutBucketCors.
    PutBucketCors => "s3:PutBucketCors", Bucket;
    /// DeleteBucketCors.
    DeleteBucketCors => "s3:DeleteBucketCors", Bucket;
    /// PutBucketLifecycleConfiguration.
    PutBucketLifecycleConfiguration => "s3:PutBucketLifecycleConfiguration", Bucket;
    /// DeleteBucketLifecycle.
    DeleteBucketLifecycle => "s3:DeleteBucketLifecycle", Bucket;
    /// PutBucketEncryption.
    PutBucketEncryption => "s3:PutBucketEncryption", Bucket;
    /// DeleteBucketEncryption.
    DeleteBucketEncryption => "s3:DeleteBucketEncryption", Bucket;
    /// PutObjectLockConfiguration.
    PutObjectLockConfiguration => "s3:PutObjectLockConfiguration", Bucket;
    /// PutBucketPolicy.
    PutBucketPolicy => "s3:PutBucketPolicy", Bucket;
    /// DeleteBucketPolicy.
    DeleteBucketPolicy => "s3:DeleteBucketPolicy", Bucket;
    /// PutBucketAcl.
    PutBucketAcl => "s3:PutBucketAcl", Bucket;
    /// PutBucketOwnershipControls.
    PutBucketOwnershipControls => "s3:PutBucketOwnershipControls", Bucket;
    /// DeleteBucketOwnershipControls.
    DeleteBucketOwnershipControls => "s3:DeleteBucketOwnershipControls", Bucket;
    /// GetBucketWebsite (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketWebsite => "s3:GetBucketWebsite", Bucket;
    /// GetBucketAccelerateConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketAccelerateConfiguration => "s3:GetBucketAccelerateConfiguration", Bucket;
    /// GetBucketRequestPayment (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketRequestPayment => "s3:GetBucketRequestPayment", Bucket;
    /// GetBucketReplication (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketReplication => "s3:GetBucketReplication", Bucket;
    /// GetBucketLogging.
    GetBucketLogging => "s3:GetBucketLogging", Bucket;
    /// PutBucketLogging.
    PutBucketLogging => "s3:PutBucketLogging", Bucket;
    /// GetBucketNotificationConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketNotificationConfiguration => "s3:GetBucketNotificationConfiguration", Bucket;
    /// GetPublicAccessBlock (fsgate keeps no such configuration: answered as for a bucket without one).
    GetPublicAccessBlock => "s3:GetPublicAccessBlock", Bucket;
    /// GetBucketAnalyticsConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketAnalyticsConfiguration => "s3:GetBucketAnalyticsConfiguration", Bucket;
    /// ListBucketAnalyticsConfigurations (fsgate keeps no such configuration: answered as for a bucket without one).
    ListBucketAnalyticsConfigurations => "s3:ListBucketAnalyticsConfigurations", Bucket;
    /// GetBucketIntelligentTieringConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketIntelligentTieringConfiguration => "s3:GetBucketIntelligentTieringConfiguration", Bucket;
    /// ListBucketIntelligentTieringConfigurations (fsgate keeps no such configuration: answered as for a bucket without one).
    ListBucketIntelligentTieringConfigurations => "s3:ListBucketIntelligentTieringConfigurations", Bucket;
    /// GetBucketInventoryConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketInventoryConfiguration => "s3:GetBucketInventoryConfiguration", Bucket;
    /// ListBucketInventoryConfigurations (fsgate keeps no such configuration: answered as for a bucket without one).
    ListBucketInventoryConfigurations => "s3:ListBucketInventoryConfigurations", Bucket;
    /// GetBucketMetricsConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    GetBucketMetricsConfiguration => "s3:GetBucketMetricsConfiguration", Bucket;
    /// ListBucketMetricsConfigurations (fsgate keeps no such configuration: answered as for a bucket without one).
    ListBucketMetricsConfigurations => "s3:ListBucketMetricsConfigurations", Bucket;
    /// DeleteBucketWebsite (fsgate keeps no such configuration: answered as for a bucket without one).
    DeleteBucketWebsite => "s3:DeleteBucketWebsite", Bucket;
    /// DeleteBucketReplication (fsgate keeps no such configuration: answered as for a bucket without one).
    DeleteBucketReplication => "s3:DeleteBucketReplication", Bucket;
    /// DeletePublicAccessBlock (fsgate keeps no such configuration: answered as for a bucket without one).
    DeletePublicAccessBlock => "s3:DeletePublicAccessBlock", Bucket;
    /// DeleteBucketAnalyticsConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    DeleteBucketAnalyticsConfiguration => "s3:DeleteBucketAnalyticsConfiguration", Bucket;
    /// DeleteBucketIntelligentTieringConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    DeleteBucketIntelligentTieringConfiguration => "s3:DeleteBucketIntelligentTieringConfiguration", Bucket;
    /// DeleteBucketInventoryConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    DeleteBucketInventoryConfiguration => "s3:DeleteBucketInventoryConfiguration", Bucket;
    /// DeleteBucketMetricsConfiguration (fsgate keeps no such configuration: answered as for a bucket without one).
    DeleteBucketMetricsConfiguration => "s3:DeleteBucketMetricsConfiguration", Bucket;
    /// PutPublicAccessBlock.
    PutPublicAccessBlock => "s3:PutPublicAccessBlock", Bucket;
    /// ListBuckets.
    ListBuckets => "s3:ListBuckets", Service;
    /// Any S3 operation fsgate does not implement.
    Unsupported => "s3:Unsupported", Service;
    /// Admin: list users.
    AdminListUsers => "admin:ListUsers", Service;
    /// Admin: add a user.
    AdminAddUser => "admin:AddUser", Service;
    /// Admin: remove a user.
    AdminRemoveUser => "admin:RemoveUser", Service;
    /// Admin: enable a user.
    AdminEnableUser => "admin:EnableUser", Service;
    /// Admin: disable a user.
    AdminDisableUser => "admin:DisableUser", Service;
    /// Admin: create an access key.
    AdminCreateKey => "admin:CreateKey", Service;
    /// Admin: list access keys.
    AdminListKeys => "admin:ListKeys", Service;
    /// Admin: make an access key active or inactive (IAM's `UpdateAccessKey`).
    AdminUpdateKey => "admin:UpdateKey", Service;
    /// Admin: delete an access key.
    AdminDeleteKey => "admin:DeleteKey", Service;
    /// Admin: add a user to a group.
    AdminAddGroupMember => "admin:AddGroupMember", Service;
    /// Admin: remove a user from a group.
    AdminRemoveGroupMember => "admin:RemoveGroupMember", Service;
    /// Admin: attach a role or policy.
    AdminAttachPolicy => "admin:AttachPolicy", Service;
    /// Admin: detach a policy.
    AdminDetachPolicy => "admin:DetachPolicy", Service;
    /// Admin: list attached policies.
    AdminListPolicies => "admin:ListPolicies", Service;
    /// Admin: query the audit log.
    AdminQueryAudit => "admin:QueryAudit", Service;
    /// Admin: run a lifecycle pass now (or as of a given time).
    AdminRunLifecycle => "admin:RunLifecycle", Service;
    /// Admin: re-read every stored blob and inline object, checking them (bitrot).
    AdminScrub => "admin:Scrub", Service;
    /// Admin: write a backup of the store into a directory on the server.
    AdminBackup => "admin:Backup", Service;
    /// Read `/metrics` with a signature (when a metrics token is set).
    AdminScrapeMetrics => "admin:ScrapeMetrics", Service;
    /// Admin: refuse a user's signatures and sessions made before a time.
    AdminRevokeKeys => "admin:RevokeKeys", Service;
    /// Admin: list identity providers.
    AdminListIdentityProviders => "admin:ListIdentityProviders", Service;
    /// Admin: add or replace an identity provider.
    AdminAddIdentityProvider => "admin:AddIdentityProvider", Service;
    /// Admin: remove an identity provider.
    AdminRemoveIdentityProvider => "admin:RemoveIdentityProvider", Service;
    /// Admin: read the account-wide Public Access Block.
    AdminGetPublicAccessBlock => "admin:GetPublicAccessBlock", Service;
    /// Admin: set the account-wide Public Access Block.
    AdminPutPublicAccessBlock => "admin:PutPublicAccessBlock", Service;
    /// Admin: remove the account-wide Public Access Block.
    AdminDeletePublicAccessBlock => "admin:DeletePublicAccessBlock", Service;
    /// Admin: list the KMS key ring's keys.
    AdminListKmsKeys => "admin:ListKmsKeys", Service;
    /// Admin: create a KMS key.
    AdminCreateKmsKey => "admin:CreateKmsKey", Service;
    /// Admin: enable, disable or rotate a KMS key.
    AdminUpdateKmsKey => "admin:UpdateKmsKey", Service;
    /// Admin: read the server's state (MinIO's `info`, `datausageinfo`).
    AdminServerInfo => "admin:ServerInfo", Service;
    /// Admin: list groups and read one group's members and status.
    AdminListGroups => "admin:ListGroups", Service;
    /// Admin: enable a group (its grants count again).
    AdminEnableGroup => "admin:EnableGroup", Service;
    /// Admin: disable a group (its grants stop counting for its members).
    AdminDisableGroup => "admin:DisableGroup", Service;
    /// Admin: remove an empty group.
    AdminRemoveGroup => "admin:RemoveGroup", Service;
    /// Admin: create or replace a named (canned) policy.
    AdminCreatePolicy => "admin:CreatePolicy", Service;
    /// Admin: delete a named (canned) policy.
    AdminDeletePolicy => "admin:DeletePolicy", Service;
    /// Admin: set or clear a bucket's quota (the resource).
    AdminSetBucketQuota => "admin:SetBucketQuota", Bucket;
    /// Admin: read a bucket's quota.
    AdminGetBucketQuota => "admin:GetBucketQuota", Bucket;
    /// Create a service account owned by a user (the resource).
    AdminCreateServiceAccount => "admin:CreateServiceAccount", User;
    /// List a user's service accounts.
    AdminListServiceAccounts => "admin:ListServiceAccounts", User;
    /// Delete one of a user's service accounts.
    AdminDeleteServiceAccount => "admin:DeleteServiceAccount", User;
    /// Change one of a user's service accounts (secret, policy, status, expiry).
    AdminUpdateServiceAccount => "admin:UpdateServiceAccount", User;
    /// Create a share link acting for a user (the resource: the link's creator).
    AdminCreateShareLink => "admin:CreateShareLink", User;
    /// List a user's share links.
    AdminListShareLinks => "admin:ListShareLinks", User;
    /// Revoke a user's share links.
    AdminRevokeShareLink => "admin:RevokeShareLink", User;
    /// STS AssumeRole: temporary credentials for the caller.
    StsAssumeRole => "sts:AssumeRole", Service;
    /// STS AssumeRoleWithWebIdentity, decided for the token's identity.
    StsAssumeRoleWithWebIdentity => "sts:AssumeRoleWithWebIdentity", Service;
    /// STS AssumeRoleWithLDAPIdentity, decided for the directory's identity.
    StsAssumeRoleWithLdapIdentity => "sts:AssumeRoleWithLDAPIdentity", Service;
}

impl Action {
    /// True for bucket listings, whose prefix places the bucket under granted prefixes.
    #[must_use]
    pub fn is_listing(&self) -> bool {
        matches!(
            self,
            Action::ListObjects
                | Action::ListObjectsV2
                | Action::ListMultipartUploads
                | Action::ListObjectVersions
        )
    }

    /// Looks an action up by its Cedar name.
    #[must_use]
    pub fn from_cedar_name(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|a| a.cedar_name() == name)
    }
}
