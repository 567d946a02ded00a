//! The records the store keeps. Their encoding is described in `FORMAT.md`.

use serde::{Deserialize, Serialize};

use crate::blob::BlobId;

/// A bucket's versioning state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Never enabled: one version per key, with the `null` version id.
    #[default]
    Unversioned,
    /// Every write makes a new version; deletes make delete markers.
    Enabled,
    /// Writes replace the `null` version; older versions stay.
    Suspended,
}

/// A bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// Versioning state.
    pub versioning: Versioning,
    /// Object Lock was enabled at creation (it cannot be turned off; versioning stays on).
    pub object_lock: bool,
}

/// Object Lock retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    /// Users with the bypass permission may shorten or remove it.
    Governance,
    /// No one can shorten or remove it, nor delete the version, until it expires.
    Compliance,
}

/// A version's retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The mode.
    pub mode: RetentionMode,
    /// Retain until, nanoseconds since the Unix epoch.
    pub until_ns: u64,
}

/// How a version's bytes are encrypted at rest (interpreted by the gateway, not the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseInfo {
    /// `SSE-S3` or `SSE-C`.
    pub kind: String,
    /// Base64 MD5 of the customer key (SSE-C), to check the key given on GET.
    pub key_md5: String,
    /// The sealed (wrapped) data key and whatever the cipher needs to open it.
    pub sealed: Vec<u8>,
}

/// What a version carries besides its bytes and headers: tags, lock state and encryption.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectExtras {
    /// Object tags, in the order given.
    pub tags: Vec<(String, String)>,
    /// Object Lock retention.
    pub retention: Option<Retention>,
    /// Object Lock legal hold.
    pub legal_hold: bool,
    /// Encryption at rest.
    pub sse: Option<SseInfo>,
}

/// The headers and metadata a client gave an object; returned unchanged on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    /// Content-Type.
    pub content_type: Option<String>,
    /// Content-Encoding.
    pub content_encoding: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Expires, as sent (an HTTP date string).
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names without the prefix, sorted by name.
    pub user_metadata: Vec<(String, String)>,
}

/// A checksum the client asked for (or sent), kept to return on GET/HEAD with checksum mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// Algorithm name as S3 spells it: CRC32, CRC32C, CRC64NVME, SHA1, SHA256; `NAME#N` for
    /// part N's checksum of a multipart object (kept after the whole object's).
    pub algorithm: String,
    /// Base64 value (for multipart objects the checksum of checksums, suffixed `-N`).
    pub value: String,
}

/// One contiguous piece of an object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// The blob holding the bytes.
    pub blob: BlobId,
    /// Its length in bytes.
    pub len: u64,
}

/// An object: what a GET returns, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectManifest {
    /// Total size in bytes.
    pub size: u64,
    /// The ETag without quotes (hex MD5, or `md5-of-md5s-N` for multipart objects).
    pub etag: String,
    /// Last-Modified, nanoseconds since the Unix epoch.
    pub modified_ns: u64,
    /// Content pieces in order: one for a simple upload, one per part for multipart.
    pub extents: Vec<Extent>,
    /// Number of parts for a multipart object, 0 otherwise.
    pub parts_count: u32,
    /// Client headers and metadata.
    pub headers: ObjectHeaders,
    /// Checksums to return when asked.
    pub checksums: Vec<StoredChecksum>,
    /// The bytes live in the `inline` column family under the version's key (small objects),
    /// not in blobs; `extents` is then empty.
    pub inline: bool,
    /// Unique, increasing commit sequence (nanoseconds; also orders versions of a key).
    pub seq: u64,
    /// Version id; `None` is the `null` version (unversioned or suspended buckets).
    pub version_id: Option<String>,
    /// A delete marker: no bytes, hides older versions from GET and listings.
    pub delete_marker: bool,
    /// Tags, lock state and encryption.
    pub extras: ObjectExtras,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Initiation time, nanoseconds since the Unix epoch.
    pub initiated_ns: u64,
    /// Headers and metadata for the final object.
    pub headers: ObjectHeaders,
    /// The checksum algorithm the client declared, if any.
    pub checksum_algorithm: Option<String>,
    /// Who initiated it (principal name), for ListMultipartUploads.
    pub initiator: String,
    /// Tags, lock state and encryption for the final object.
    pub extras: ObjectExtras,
}

/// An uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Hex MD5 of the part.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// The blob holding it.
    pub blob: BlobId,
    /// Upload time, nanoseconds since the Unix epoch.
    pub modified_ns: u64,
    /// Checksums the client sent with the part.
    pub checksums: Vec<StoredChecksum>,
}

/// A user of the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Unique name.
    pub name: String,
    /// A disabled user's keys are refused.
    pub enabled: bool,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
}

/// An access key pair owned by a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    /// The public access key id.
    pub access_key: String,
    /// The secret (needed in clear to verify SigV4 HMACs).
    pub secret_key: String,
    /// The owning user.
    pub user: String,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
}

/// Who a policy attachment applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachTarget {
    /// A user by name.
    User(String),
    /// A group by name.
    Group(String),
}

/// What is attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachedPolicy {
    /// A built-in role, scoped to all buckets, one bucket, or one prefix of a bucket.
    Role {
        /// Role name (`readonly`, `readwrite`, `writeonly`, `admin`).
        role: String,
        /// Bucket scope; `None` means every bucket.
        bucket: Option<String>,
        /// Prefix scope inside the bucket.
        prefix: Option<String>,
    },
    /// A custom Cedar policy, as written.
    Cedar {
        /// Cedar source text.
        text: String,
    },
    /// A named policy (`NamedPolicyRecord`), with its text as of the last change (every
    /// attachment of a name is rewritten in the same batch when the name's text changes).
    Named {
        /// The policy's name.
        name: String,
        /// Its text: AWS IAM JSON or Cedar.
        text: String,
    },
}

/// A policy attached to a user or a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Unique id (also the Cedar policy id prefix).
    pub id: String,
    /// Who it applies to.
    pub target: AttachTarget,
    /// What is attached.
    pub policy: AttachedPolicy,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
}

/// One audit record: one per request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Time the request arrived, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Request id (the hex of the record's key).
    pub request_id: String,
    /// Principal name (`anonymous` when unsigned).
    pub principal: String,
    /// Access key used, if any.
    pub access_key: String,
    /// How the request authenticated: `sigv4`, `presigned`, `sigv2`, `anonymous`.
    pub auth: String,
    /// Client address.
    pub source_ip: String,
    /// User-Agent header.
    pub user_agent: String,
    /// Action name (`s3:GetObject`, `admin:AddUser`, or the HTTP route when none was resolved).
    pub action: String,
    /// Bucket, when the request named one.
    pub bucket: String,
    /// Object key, when the request named one.
    pub key: String,
    /// `allow`, `deny`, or empty when the request never reached a decision.
    pub decision: String,
    /// Ids of the policies that determined the decision.
    pub policies: Vec<String>,
    /// HTTP status sent.
    pub status: u16,
    /// S3 error code, when the response was an error.
    pub error_code: String,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Time from arrival to the end of the response body, in microseconds.
    pub duration_us: u64,
    /// The object version read, written or deleted (or the delete marker made), when any.
    pub version_id: String,
    /// The request's OpenTelemetry trace id (32 hex digits) when tracing is on.
    pub trace_id: String,
}

/// An audit record borrowing its text from the request that made it: what the request path
/// encodes, so that writing a record copies its strings once, into the encoded bytes. Encodes
/// exactly as the `AuditRecord` with the same values (same fields, same order).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AuditEntry<'a> {
    /// Time the request arrived, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Request id.
    pub request_id: &'a str,
    /// Principal name.
    pub principal: &'a str,
    /// Access key used, if any.
    pub access_key: &'a str,
    /// How the request authenticated.
    pub auth: &'a str,
    /// Client address.
    pub source_ip: &'a str,
    /// User-Agent header.
    pub user_agent: &'a str,
    /// Action name, or the HTTP route.
    pub action: &'a str,
    /// Bucket.
    pub bucket: &'a str,
    /// Object key.
    pub key: &'a str,
    /// `allow`, `deny` or empty.
    pub decision: &'a str,
    /// Ids of the deciding policies.
    pub policies: &'a [String],
    /// HTTP status sent.
    pub status: u16,
    /// S3 error code.
    pub error_code: &'a str,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Microseconds from arrival to the end of the response body.
    pub duration_us: u64,
    /// Object version.
    pub version_id: &'a str,
    /// OpenTelemetry trace id.
    pub trace_id: &'a str,
}

impl<'a> AuditEntry<'a> {
    /// The record as the audit log's line holds it, with its arrival time as `time`.
    #[must_use]
    pub fn log_record(
        &self,
        time: &'a str,
    ) -> fsgate_auditlog::record::Record<&'a str, &'a [String]> {
        fsgate_auditlog::record::Record {
            seq: 0,
            time,
            request_id: self.request_id,
            principal: self.principal,
            access_key: self.access_key,
            auth: self.auth,
            source_ip: self.source_ip,
            user_agent: self.user_agent,
            action: self.action,
            bucket: self.bucket,
            key: self.key,
            version_id: self.version_id,
            decision: self.decision,
            policies: self.policies,
            status: self.status,
            error_code: self.error_code,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            duration_us: self.duration_us,
            trace_id: self.trace_id,
        }
    }
}

impl From<fsgate_auditlog::record::OwnedRecord> for AuditRecord {
    fn from(r: fsgate_auditlog::record::OwnedRecord) -> Self {
        Self {
            time_ns: fsgate_auditlog::checkpoint::parse_rfc3339_nanos(&r.time).unwrap_or(0),
            request_id: r.request_id,
            principal: r.principal,
            access_key: r.access_key,
            auth: r.auth,
            source_ip: r.source_ip,
            user_agent: r.user_agent,
            action: r.action,
            bucket: r.bucket,
            key: r.key,
            decision: r.decision,
            policies: r.policies,
            status: r.status,
            error_code: r.error_code,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            duration_us: r.duration_us,
            version_id: r.version_id,
            trace_id: r.trace_id,
        }
    }
}

impl<'a> From<&'a AuditRecord> for AuditEntry<'a> {
    fn from(r: &'a AuditRecord) -> Self {
        Self {
            time_ns: r.time_ns,
            request_id: &r.request_id,
            principal: &r.principal,
            access_key: &r.access_key,
            auth: &r.auth,
            source_ip: &r.source_ip,
            user_agent: &r.user_agent,
            action: &r.action,
            bucket: &r.bucket,
            key: &r.key,
            decision: &r.decision,
            policies: &r.policies,
            status: r.status,
            error_code: &r.error_code,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            duration_us: r.duration_us,
            version_id: &r.version_id,
            trace_id: &r.trace_id,
        }
    }
}

/// An audit record as written before trace ids (value version 1), read back into the current
/// shape with an empty `trace_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditRecordV1 {
    pub time_ns: u64,
    pub request_id: String,
    pub principal: String,
    pub access_key: String,
    pub auth: String,
    pub source_ip: String,
    pub user_agent: String,
    pub action: String,
    pub bucket: String,
    pub key: String,
    pub decision: String,
    pub policies: Vec<String>,
    pub status: u16,
    pub error_code: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_us: u64,
    pub version_id: String,
}

impl From<AuditRecordV1> for AuditRecord {
    fn from(r: AuditRecordV1) -> Self {
        Self {
            time_ns: r.time_ns,
            request_id: r.request_id,
            principal: r.principal,
            access_key: r.access_key,
            auth: r.auth,
            source_ip: r.source_ip,
            user_agent: r.user_agent,
            action: r.action,
            bucket: r.bucket,
            key: r.key,
            decision: r.decision,
            policies: r.policies,
            status: r.status,
            error_code: r.error_code,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            duration_us: r.duration_us,
            version_id: r.version_id,
            trace_id: String::new(),
        }
    }
}

/// A service account: an access key owned by a user, optionally narrowed by a Cedar policy.
/// The key itself is an ordinary `AccessKeyRecord` of the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountRecord {
    /// The access key it describes.
    pub access_key: String,
    /// The owning user.
    pub owner: String,
    /// Cedar policies the key is limited to (on top of the owner's own), if any.
    pub policy: Option<String>,
    /// Free text shown in listings.
    pub description: String,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
}

/// What an access key has besides its secret: MinIO's service-account name and expiry, and
/// the on/off switch of both MinIO's service accounts and IAM's `UpdateAccessKey`. Kept beside
/// the key (`key-settings/AK`) so records written before it still read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySettings {
    /// Display name (MinIO's `name`).
    pub name: String,
    /// A disabled (IAM: Inactive) key is refused.
    pub disabled: bool,
    /// After this time (ns since the Unix epoch) the key is refused.
    pub expires_ns: Option<u64>,
}

/// A named policy (MinIO's canned policy): an AWS IAM JSON document or Cedar text that
/// attachments refer to by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPolicyRecord {
    /// Its name.
    pub name: String,
    /// The document as written.
    pub text: String,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// Last replacement, nanoseconds since the Unix epoch.
    pub updated_ns: u64,
}

/// A group's own record: groups exist through their members, and this keeps what a group has
/// besides (MinIO's enable/disable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Its name.
    pub name: String,
    /// A disabled group's grants do not count for its members.
    pub disabled: bool,
}

/// How an STS session was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionSource {
    /// `AssumeRole`, signed with this access key (a user's key, a service account or root).
    AssumeRole {
        /// The access key that signed the request.
        parent_key: String,
    },
    /// `AssumeRoleWithWebIdentity` with a token of this identity provider.
    WebIdentity {
        /// Identity provider name.
        provider: String,
    },
    /// `AssumeRoleWithLDAPIdentity` against this identity provider.
    Ldap {
        /// Identity provider name.
        provider: String,
        /// The user's distinguished name.
        dn: String,
    },
}

/// Temporary credentials issued by STS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The temporary access key id.
    pub access_key: String,
    /// The temporary secret.
    pub secret_key: String,
    /// The session token every request must carry.
    pub token: String,
    /// The user the session acts as (`root` for root's own sessions).
    pub user: String,
    /// Groups the session is a member of (from the token or directory for federated users).
    pub groups: Vec<String>,
    /// Principal tags (chosen token claims).
    pub tags: Vec<(String, String)>,
    /// Inline session policy (Cedar), which can only narrow.
    pub policy: Option<String>,
    /// Where it came from.
    pub source: SessionSource,
    /// Issue time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// Expiry, nanoseconds since the Unix epoch.
    pub expires_ns: u64,
}

/// A key of the built-in KMS key ring: its versions' material, each sealed by the gateway
/// (the store never sees it in the clear). Encryption uses the newest version; every version
/// stays for reading what it encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKeyRecord {
    /// The key id clients name (`x-amz-server-side-encryption-aws-kms-key-id`).
    pub name: String,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// A disabled key encrypts and decrypts nothing.
    pub enabled: bool,
    /// Sealed material by version, oldest first (version n is at index n - 1).
    pub versions: Vec<Vec<u8>>,
}

/// An identity provider that STS trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityProvider {
    /// An OpenID Connect issuer.
    Oidc(OidcProvider),
    /// An LDAP directory.
    Ldap(LdapProvider),
}

impl IdentityProvider {
    /// The provider's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            IdentityProvider::Oidc(p) => &p.name,
            IdentityProvider::Ldap(p) => &p.name,
        }
    }
}

/// OpenID Connect settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcProvider {
    /// Unique name.
    pub name: String,
    /// Issuer URL (`iss`); discovery is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The audience tokens must carry (`aud` or `azp`).
    pub client_id: String,
    /// Claim holding group or role names.
    pub groups_claim: String,
    /// Claim naming the fsgate user.
    pub user_claim: String,
    /// Claims copied to principal tags.
    pub tag_claims: Vec<String>,
}

/// LDAP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapProvider {
    /// Unique name.
    pub name: String,
    /// `host:port`.
    pub server: String,
    /// `none`, `tls` (ldaps) or `starttls`.
    pub tls: String,
    /// Accept any server certificate (tests only).
    pub tls_insecure: bool,
    /// Service account used to search for users.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
    /// Where users are searched.
    pub user_base: String,
    /// Filter with `%s` for the (escaped) user name.
    pub user_filter: String,
    /// Where groups are searched.
    pub group_base: String,
    /// Filter with `%d` for the user's (escaped) DN and `%s` for the user name.
    pub group_filter: String,
    /// Attribute naming a group.
    pub group_attribute: String,
}
