//! What the gateway asks about: who ([`Principal`], with the limits of a session or service
//! account), what ([`Resource`]), in which circumstances ([`RequestContext`]).

use std::net::IpAddr;
use std::sync::Arc;

use cedar_policy::PolicySet;

use crate::actions::Action;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The root credentials.
    Root(String),
    /// A user, with the groups it belongs to.
    User {
        /// User name.
        name: String,
        /// Group names.
        groups: Vec<String>,
        /// Principal tags (`principal.getTag("…")`): claims of a federated identity.
        tags: Vec<(String, String)>,
    },
    /// An unsigned request.
    Anonymous,
    /// A principal whose permissions are narrowed (an STS session with a session policy, a
    /// service account with a policy): allowed only what the principal may do and every limit
    /// permits.
    Limited {
        /// Who is acting.
        principal: Box<Principal>,
        /// The narrowing policy sets.
        limits: Vec<Limit>,
    },
    /// A share link: allowed what the policies permit the link (only within its object or
    /// folder) and, at the same time, its creator.
    ShareLink(Box<ShareLink>),
}

/// A share link as a principal, with its creator as the creator is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// The link's id.
    pub id: String,
    /// `sharelink:<id>`, the name recorded in audit records.
    pub name: String,
    /// Who made the link, authenticated afresh for this request.
    pub creator: Principal,
    /// The bucket.
    pub bucket: String,
    /// The object's key, or the folder's prefix (ending in `/`) when `folder`.
    pub key: String,
    /// Whether the link names a folder.
    pub folder: bool,
    /// Whether the link only accepts uploads.
    pub upload_only: bool,
    /// Whether the link has a password.
    pub has_password: bool,
    /// Creation and expiry, seconds since the Unix epoch.
    pub created: i64,
    /// Expiry, seconds since the Unix epoch.
    pub expires: i64,
    /// How many uses it allows, if limited.
    pub max_uses: Option<i64>,
}

impl ShareLink {
    /// Whether `resource` lies within the link's object or folder (a folder's listing counts
    /// when its prefix lies within the folder).
    #[must_use]
    pub fn covers(&self, resource: &Resource, list_prefix: Option<&str>) -> bool {
        match resource {
            Resource::Object { bucket, key } => {
                *bucket == self.bucket
                    && (*key == self.key || (self.folder && key.starts_with(&self.key)))
            }
            Resource::Bucket(bucket) => {
                *bucket == self.bucket
                    && self.folder
                    && list_prefix.is_some_and(|p| p.starts_with(&self.key))
            }
            Resource::Service | Resource::User(_) => false,
        }
    }
}

/// A policy set that narrows what a principal may do. It never grants anything by itself:
/// an access is allowed only when the main policy set allows it and the limit permits it too.
#[derive(Debug, Clone)]
pub struct Limit {
    pub(super) id: String,
    pub(super) set: Arc<PolicySet>,
}

impl PartialEq for Limit {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Limit {}

impl Limit {
    /// The limit's name (its policies are `<name>-<n>`).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Principal {
    /// The name recorded in audit records.
    #[must_use]
    pub fn display_name(&self) -> &str {
        match self {
            Principal::Root(n) => n,
            Principal::User { name, .. } => name,
            Principal::Anonymous => "anonymous",
            Principal::Limited { principal, .. } => principal.display_name(),
            Principal::ShareLink(link) => &link.name,
        }
    }

    /// A user with groups and no tags.
    #[must_use]
    pub fn user(name: impl Into<String>, groups: Vec<String>) -> Self {
        Principal::User {
            name: name.into(),
            groups,
            tags: Vec::new(),
        }
    }

    /// This principal narrowed by `limits` (unchanged when there are none).
    #[must_use]
    pub fn limited(self, limits: Vec<Limit>) -> Self {
        match (self, limits.is_empty()) {
            (p, true) => p,
            (
                Principal::Limited {
                    principal,
                    limits: mut own,
                },
                false,
            ) => {
                own.extend(limits);
                Principal::Limited {
                    principal,
                    limits: own,
                }
            }
            (p, false) => Principal::Limited {
                principal: Box::new(p),
                limits,
            },
        }
    }

    /// The principal without its limits.
    #[must_use]
    pub fn unlimited(&self) -> &Principal {
        match self {
            Principal::Limited { principal, .. } => principal.unlimited(),
            p => p,
        }
    }
}

/// What is being accessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The service (ListBuckets, admin API).
    Service,
    /// A bucket.
    Bucket(String),
    /// An object.
    Object {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
    },
    /// A user as the subject of an action (its service accounts).
    User(String),
}

/// Request facts that conditions may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Client address.
    pub source_ip: IpAddr,
    /// Whether the connection used TLS.
    pub secure_transport: bool,
    /// Current time, seconds since the Unix epoch.
    pub now: i64,
    /// List prefix (listings only).
    pub prefix: Option<String>,
    /// List delimiter (listings only).
    pub delimiter: Option<String>,
    /// List max-keys (listings only).
    pub max_keys: Option<i64>,
    /// The version a request names (`versionId`), when it names one.
    pub version_id: Option<String>,
    /// The `x-amz-server-side-encryption` an object write asks for.
    pub server_side_encryption: Option<String>,
    /// The other request headers bucket-policy conditions read.
    pub headers: RequestHeaders,
}

/// Request headers that bucket-policy conditions read (each a context attribute of the same
/// name when present), taken from the parsed request the operation executes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    pub sse_kms_key_id: Option<String>,
    /// `x-amz-server-side-encryption-customer-algorithm`.
    pub sse_customer_algorithm: Option<String>,
    /// `x-amz-acl`.
    pub acl: Option<String>,
    /// `x-amz-grant-read`.
    pub grant_read: Option<String>,
    /// `x-amz-grant-write`.
    pub grant_write: Option<String>,
    /// `x-amz-grant-read-acp`.
    pub grant_read_acp: Option<String>,
    /// `x-amz-grant-write-acp`.
    pub grant_write_acp: Option<String>,
    /// `x-amz-grant-full-control`.
    pub grant_full_control: Option<String>,
    /// A copy's source, `bucket/key`.
    pub copy_source: Option<String>,
    /// `x-amz-metadata-directive`.
    pub metadata_directive: Option<String>,
    /// `User-Agent` (client-asserted).
    pub user_agent: Option<String>,
    /// `Referer` (client-asserted).
    pub referer: Option<String>,
    /// The tags a write asks to put on an object (`x-amz-tagging`, PutObjectTagging).
    pub request_tags: Option<Vec<(String, String)>>,
}

impl RequestHeaders {
    /// Each header present, with its context attribute's name.
    pub(super) fn present(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [
            ("sse_kms_key_id", &self.sse_kms_key_id),
            ("sse_customer_algorithm", &self.sse_customer_algorithm),
            ("acl", &self.acl),
            ("grant_read", &self.grant_read),
            ("grant_write", &self.grant_write),
            ("grant_read_acp", &self.grant_read_acp),
            ("grant_write_acp", &self.grant_write_acp),
            ("grant_full_control", &self.grant_full_control),
            ("copy_source", &self.copy_source),
            ("metadata_directive", &self.metadata_directive),
            ("user_agent", &self.user_agent),
            ("referer", &self.referer),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (name, v)))
    }
}

/// One access to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// Who.
    pub principal: Principal,
    /// What.
    pub action: Action,
    /// On what.
    pub resource: Resource,
    /// In which circumstances.
    pub context: RequestContext,
    /// The object's tags (Cedar entity tags on the `Object`), when the resource is an object
    /// and the policies read tags (`uses_object_tags`); empty otherwise.
    pub object_tags: Vec<(String, String)>,
    /// The user owning the bucket addressed (`resource.owner` on the `Bucket` and its
    /// `Object`s), when the policies read owners (`uses_bucket_owners`) and a user owns it;
    /// `None` otherwise (and for buckets root owns or that do not exist yet).
    pub bucket_owner: Option<String>,
}
