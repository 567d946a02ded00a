//! Authorization: builds the Cedar request for each S3 operation and asks fsgate-policy.
//!
//! THE RULE: a decision reads only what was authenticated. Every value a decision reads —
//! the operation, bucket, key, version id, listing parameters, copy source — comes from the
//! typed input s3s parsed from the decoded, signature-verified request, the same input the
//! handler then executes; signing facts come from the one decoded query (`identity/query.rs`,
//! `identity/signing.rs`). Nothing here reads the raw query text or a header s3s did not verify.
//!
//! How it is enforced:
//! - `S3Access::check` (s3s calls it for signed and unsigned requests alike, because an auth
//!   provider is always set) only authenticates: it finds the principal. It decides nothing
//!   for an operation fsgate implements; any other operation is decided there as
//!   `s3:Unsupported`, which only root and admins hold.
//! - Each implemented operation is decided in its own access hook, from `req.input`
//!   (`decided_operations!` lists them by the shape of their input; copies, POST uploads and
//!   the per-item operations have hand-written hooks). A hook that allows marks the request
//!   [`Decided`].
//! - Handlers get their request state only through [`request_state`] (and `s3::ctx`), which
//!   refuse a request that no hook marked: a handler added without a hook answers
//!   AccessDenied instead of running undecided. DeleteObjects and ListBuckets are marked by
//!   their hooks as decided per key, in the handler.
//! - Object attributes a policy reads (tags) are read from the version the request names.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fsgate_policy::{
    AccessRequest, Action, Decision, Principal, RequestContext, RequestHeaders, Resource,
};
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result, s3_error};

use crate::context::RequestCtx;
use crate::identity::iam::Iam;
use crate::identity::query::DecodedQuery;

/// Set in a request's extensions by the access hook that decided it (allowed). Handlers run
/// only on requests that carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// Allowed by the hook, as the operation named in the input.
    Whole,
    /// Decided key by key (or bucket by bucket) in the handler: DeleteObjects, ListBuckets.
    PerItem,
}

/// AWS decides reads and deletes of a named version as their own permissions.
#[must_use]
pub fn versioned_action(action: Action, has_version: bool) -> Action {
    match action {
        Action::GetObject | Action::HeadObject if has_version => Action::GetObjectVersion,
        Action::DeleteObject if has_version => Action::DeleteObjectVersion,
        a => a,
    }
}

/// The operations decided by a generated hook, by the shape of their input: objects that may
/// name a version, objects, buckets. The hook reads `bucket`, `key` and `version_id` from the
/// input s3s parsed. (A callback macro: one list, read by the hooks and by the table below.)
macro_rules! decided_operations {
    ($then:ident) => {
        $then! {
            // GET and HEAD also refuse anonymous `response-*` overrides.
            read {
                get_object: GetObjectInput => GetObject,
                head_object: HeadObjectInput => HeadObject,
            }
            // Decided on the bucket, with the listing parameters in the context.
            listing {
                list_objects: ListObjectsInput => ListObjects (max_keys),
                list_objects_v2: ListObjectsV2Input => ListObjectsV2 (max_keys),
                list_object_versions: ListObjectVersionsInput => ListObjectVersions (max_keys),
                list_multipart_uploads: ListMultipartUploadsInput => ListMultipartUploads (max_uploads),
            }
            versioned_object {
                delete_object: DeleteObjectInput => DeleteObject,
                get_object_tagging: GetObjectTaggingInput => GetObjectTagging,
                put_object_tagging: PutObjectTaggingInput => PutObjectTagging,
                delete_object_tagging: DeleteObjectTaggingInput => DeleteObjectTagging,
                get_object_retention: GetObjectRetentionInput => GetObjectRetention,
                put_object_retention: PutObjectRetentionInput => PutObjectRetention,
                get_object_legal_hold: GetObjectLegalHoldInput => GetObjectLegalHold,
                put_object_legal_hold: PutObjectLegalHoldInput => PutObjectLegalHold,
                get_object_acl: GetObjectAclInput => GetObjectAcl,
                put_object_acl: PutObjectAclInput => PutObjectAcl,
                get_object_attributes: GetObjectAttributesInput => GetObjectAttributes,
            }
            object {
                put_object: PutObjectInput => PutObject,
                create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUpload,
                upload_part: UploadPartInput => UploadPart,
                complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUpload,
                abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUpload,
                list_parts: ListPartsInput => ListParts,
            }
            bucket {
                head_bucket: HeadBucketInput => HeadBucket,
                get_bucket_location: GetBucketLocationInput => GetBucketLocation,
                get_bucket_versioning: GetBucketVersioningInput => GetBucketVersioning,
                get_bucket_tagging: GetBucketTaggingInput => GetBucketTagging,
                get_bucket_cors: GetBucketCorsInput => GetBucketCors,
                get_bucket_lifecycle_configuration: GetBucketLifecycleConfigurationInput => GetBucketLifecycleConfiguration,
                get_bucket_encryption: GetBucketEncryptionInput => GetBucketEncryption,
                get_object_lock_configuration: GetObjectLockConfigurationInput => GetObjectLockConfiguration,
                get_bucket_policy: GetBucketPolicyInput => GetBucketPolicy,
                get_bucket_policy_status: GetBucketPolicyStatusInput => GetBucketPolicyStatus,
                get_bucket_acl: GetBucketAclInput => GetBucketAcl,
                get_bucket_ownership_controls: GetBucketOwnershipControlsInput => GetBucketOwnershipControls,
                create_bucket: CreateBucketInput => CreateBucket,
                delete_bucket: DeleteBucketInput => DeleteBucket,
                put_bucket_versioning: PutBucketVersioningInput => PutBucketVersioning,
                put_bucket_tagging: PutBucketTaggingInput => PutBucketTagging,
                delete_bucket_tagging: DeleteBucketTaggingInput => DeleteBucketTagging,
                put_bucket_cors: PutBucketCorsInput => PutBucketCors,
                delete_bucket_cors: DeleteBucketCorsInput => DeleteBucketCors,
                put_bucket_lifecycle_configuration: PutBucketLifecycleConfigurationInput => PutBucketLifecycleConfiguration,
                delete_bucket_lifecycle: DeleteBucketLifecycleInput => DeleteBucketLifecycle,
                put_bucket_encryption: PutBucketEncryptionInput => PutBucketEncryption,
                delete_bucket_encryption: DeleteBucketEncryptionInput => DeleteBucketEncryption,
                put_object_lock_configuration: PutObjectLockConfigurationInput => PutObjectLockConfiguration,
                put_bucket_policy: PutBucketPolicyInput => PutBucketPolicy,
                delete_bucket_policy: DeleteBucketPolicyInput => DeleteBucketPolicy,
                put_bucket_acl: PutBucketAclInput => PutBucketAcl,
                put_bucket_ownership_controls: PutBucketOwnershipControlsInput => PutBucketOwnershipControls,
                delete_bucket_ownership_controls: DeleteBucketOwnershipControlsInput => DeleteBucketOwnershipControls,
                get_bucket_website: GetBucketWebsiteInput => GetBucketWebsite,
                get_bucket_accelerate_configuration: GetBucketAccelerateConfigurationInput => GetBucketAccelerateConfiguration,
                get_bucket_request_payment: GetBucketRequestPaymentInput => GetBucketRequestPayment,
                get_bucket_replication: GetBucketReplicationInput => GetBucketReplication,
                get_bucket_logging: GetBucketLoggingInput => GetBucketLogging,
                put_bucket_logging: PutBucketLoggingInput => PutBucketLogging,
                get_bucket_notification_configuration: GetBucketNotificationConfigurationInput => GetBucketNotificationConfiguration,
                get_public_access_block: GetPublicAccessBlockInput => GetPublicAccessBlock,
                get_bucket_analytics_configuration: GetBucketAnalyticsConfigurationInput => GetBucketAnalyticsConfiguration,
                list_bucket_analytics_configurations: ListBucketAnalyticsConfigurationsInput => ListBucketAnalyticsConfigurations,
                get_bucket_intelligent_tiering_configuration: GetBucketIntelligentTieringConfigurationInput => GetBucketIntelligentTieringConfiguration,
                list_bucket_intelligent_tiering_configurations: ListBucketIntelligentTieringConfigurationsInput => ListBucketIntelligentTieringConfigurations,
                get_bucket_inventory_configuration: GetBucketInventoryConfigurationInput => GetBucketInventoryConfiguration,
                list_bucket_inventory_configurations: ListBucketInventoryConfigurationsInput => ListBucketInventoryConfigurations,
                get_bucket_metrics_configuration: GetBucketMetricsConfigurationInput => GetBucketMetricsConfiguration,
                list_bucket_metrics_configurations: ListBucketMetricsConfigurationsInput => ListBucketMetricsConfigurations,
                delete_bucket_website: DeleteBucketWebsiteInput => DeleteBucketWebsite,
                delete_bucket_replication: DeleteBucketReplicationInput => DeleteBucketReplication,
                delete_public_access_block: DeletePublicAccessBlockInput => DeletePublicAccessBlock,
                put_public_access_block: PutPublicAccessBlockInput => PutPublicAccessBlock,
                delete_bucket_analytics_configuration: DeleteBucketAnalyticsConfigurationInput => DeleteBucketAnalyticsConfiguration,
                delete_bucket_intelligent_tiering_configuration: DeleteBucketIntelligentTieringConfigurationInput => DeleteBucketIntelligentTieringConfiguration,
                delete_bucket_inventory_configuration: DeleteBucketInventoryConfigurationInput => DeleteBucketInventoryConfiguration,
                delete_bucket_metrics_configuration: DeleteBucketMetricsConfigurationInput => DeleteBucketMetricsConfiguration,
            }
        }
    };
}

/// Operations with a hand-written hook (below), by s3s operation name.
const HAND_DECIDED: &[&str] = &[
    "CopyObject",
    "UploadPartCopy",
    "PostObject",
    "DeleteObjects",
    "ListBuckets",
];

macro_rules! operation_table {
    (
        read { $($rh:ident: $ri:ident => $ra:ident,)* }
        listing { $($lh:ident: $li:ident => $la:ident ($lmax:ident),)* }
        versioned_object { $($vh:ident: $vi:ident => $va:ident,)* }
        object { $($oh:ident: $oi:ident => $oa:ident,)* }
        bucket { $($bh:ident: $bi:ident => $ba:ident,)* }
    ) => {
        /// The input types of the operations `decided_operations!` lists.
        const TABLE_DECIDED: &[&str] = &[
            $(stringify!($ri),)* $(stringify!($li),)* $(stringify!($vi),)* $(stringify!($oi),)*
            $(stringify!($bi),)*
        ];
    };
}
decided_operations!(operation_table);

/// The s3s operation names decided in a hook (`GetObjectInput` → `GetObject`).
static DECIDED_IN_HOOK: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        HAND_DECIDED
            .iter()
            .copied()
            .chain(
                TABLE_DECIDED
                    .iter()
                    .filter_map(|input| input.strip_suffix("Input")),
            )
            .collect()
    });

/// Whether an s3s operation is one fsgate implements and decides in its hook.
#[must_use]
pub fn decided_in_hook(op: &str) -> bool {
    DECIDED_IN_HOOK.contains(op)
}

/// Facts of one access beyond principal, action and resource: the version addressed (whose
/// attributes a policy sees) and the listing parameters that go into the Cedar context.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessFacts<'a> {
    /// The version the request names (`versionId`), if any.
    pub version: Option<&'a str>,
    /// Prefix.
    pub prefix: Option<&'a str>,
    /// Delimiter.
    pub delimiter: Option<&'a str>,
    /// max-keys.
    pub max_keys: Option<i32>,
    /// The `x-amz-server-side-encryption` a write asks for.
    pub server_side_encryption: Option<&'a str>,
    /// The other request headers conditions read.
    pub headers: Option<&'a RequestHeaders>,
}

impl<'a> AccessFacts<'a> {
    /// The facts of an access to one version (`None`: the current one).
    #[must_use]
    pub fn version(version: Option<&'a str>) -> Self {
        Self {
            version,
            ..Self::default()
        }
    }
}

/// The `x-amz-server-side-encryption` an object write asks for (PutObject,
/// CopyObject, CreateMultipartUpload), for the `s3:x-amz-server-side-encryption` condition key.
fn requested_sse<T: 'static>(input: &T) -> Option<&str> {
    let any = input as &dyn std::any::Any;
    if let Some(i) = any.downcast_ref::<PutObjectInput>() {
        return i
            .server_side_encryption
            .as_ref()
            .map(ServerSideEncryption::as_str);
    }
    if let Some(i) = any.downcast_ref::<CopyObjectInput>() {
        return i
            .server_side_encryption
            .as_ref()
            .map(ServerSideEncryption::as_str);
    }
    any.downcast_ref::<CreateMultipartUploadInput>()
        .and_then(|i| i.server_side_encryption.as_ref())
        .map(ServerSideEncryption::as_str)
}

/// The request headers bucket-policy conditions read, from the input s3s parsed (the one the
/// operation executes) and, for `User-Agent` and `Referer` (client-asserted, as AWS warns),
/// the headers it parsed.
fn condition_headers<T: 'static>(req: &S3Request<T>) -> RequestHeaders {
    let header = |name: http::header::HeaderName| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut h = RequestHeaders {
        user_agent: header(http::header::USER_AGENT),
        referer: header(http::header::REFERER),
        ..RequestHeaders::default()
    };
    let owned = |v: Option<&String>| v.cloned();
    let source = |c: &CopySource| match c {
        CopySource::Bucket { bucket, key, .. } => Some(format!("{bucket}/{key}")),
        _ => None,
    };
    let any = &req.input as &dyn std::any::Any;
    // The ACL headers of an input, by field.
    macro_rules! acl_of {
        ($i:expr, $canned:ty) => {{
            h.acl = $i.acl.as_ref().map(|a| <$canned>::as_str(a).to_owned());
            h.grant_read = owned($i.grant_read.as_ref());
            h.grant_read_acp = owned($i.grant_read_acp.as_ref());
            h.grant_write_acp = owned($i.grant_write_acp.as_ref());
            h.grant_full_control = owned($i.grant_full_control.as_ref());
        }};
    }
    // The tags of an `x-amz-tagging` header (a malformed one is refused by the operation).
    let tagging = |t: Option<&String>| {
        t.and_then(|t| crate::tags::from_header(Some(t)).ok())
            .filter(|tags| !tags.is_empty())
    };
    if let Some(i) = any.downcast_ref::<PutObjectInput>() {
        acl_of!(i, ObjectCannedACL);
        h.sse_kms_key_id = owned(i.ssekms_key_id.as_ref());
        h.sse_customer_algorithm = owned(i.sse_customer_algorithm.as_ref());
        h.request_tags = tagging(i.tagging.as_ref());
    } else if let Some(i) = any.downcast_ref::<PutObjectTaggingInput>() {
        h.request_tags = Some(
            i.tagging
                .tag_set
                .iter()
                .map(|t| {
                    (
                        t.key.clone().unwrap_or_default(),
                        t.value.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        );
    } else if let Some(i) = any.downcast_ref::<CopyObjectInput>() {
        acl_of!(i, ObjectCannedACL);
        h.request_tags = tagging(i.tagging.as_ref());
        h.sse_kms_key_id = owned(i.ssekms_key_id.as_ref());
        h.sse_customer_algorithm = owned(i.sse_customer_algorithm.as_ref());
        h.copy_source = source(&i.copy_source);
        h.metadata_directive = i.metadata_directive.as_ref().map(|d| d.as_str().to_owned());
    } else if let Some(i) = any.downcast_ref::<CreateMultipartUploadInput>() {
        acl_of!(i, ObjectCannedACL);
        h.request_tags = tagging(i.tagging.as_ref());
        h.sse_kms_key_id = owned(i.ssekms_key_id.as_ref());
        h.sse_customer_algorithm = owned(i.sse_customer_algorithm.as_ref());
    } else if let Some(i) = any.downcast_ref::<UploadPartCopyInput>() {
        h.copy_source = source(&i.copy_source);
    } else if let Some(i) = any.downcast_ref::<PutObjectAclInput>() {
        acl_of!(i, ObjectCannedACL);
        h.grant_write = owned(i.grant_write.as_ref());
    } else if let Some(i) = any.downcast_ref::<PutBucketAclInput>() {
        acl_of!(i, BucketCannedACL);
        h.grant_write = owned(i.grant_write.as_ref());
    } else if let Some(i) = any.downcast_ref::<CreateBucketInput>() {
        acl_of!(i, BucketCannedACL);
        h.grant_write = owned(i.grant_write.as_ref());
    }
    h
}

/// The request's condition headers, kept on its state (the first look's stand).
fn kept_condition_headers<'r, T: 'static>(
    rc: &'r RequestCtx,
    req: &S3Request<T>,
) -> &'r RequestHeaders {
    rc.condition_headers.get_or_init(|| condition_headers(req))
}

/// The access gate: turns requests into Cedar decisions and records them.
#[derive(Debug, Clone)]
pub struct Gate {
    iam: Arc<Iam>,
    /// Read only for object tags, when a policy reads them.
    store: Arc<fsgate_store::Store>,
    /// Requests per second per principal, checked once a request is authenticated.
    rates: Arc<crate::rate::Rates>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

impl Gate {
    /// A gate over the IAM cache.
    #[must_use]
    pub fn new(iam: Arc<Iam>, store: Arc<fsgate_store::Store>) -> Self {
        Self {
            iam,
            store,
            rates: Arc::default(),
        }
    }

    /// Holds every authenticated principal to `rates`.
    #[must_use]
    pub fn with_rates(mut self, rates: Arc<crate::rate::Rates>) -> Self {
        self.rates = rates;
        self
    }

    /// The IAM cache (to reload it after a bucket policy changes).
    #[must_use]
    pub fn iam(&self) -> &Arc<Iam> {
        &self.iam
    }

    /// The tags Cedar sees on an object: those of the version the request addresses (the
    /// current one when it names none). Read only when some policy reads tags (a metadata
    /// point read, served from RocksDB's cache). A missing object or version, or a delete
    /// marker, has none; a failed read is an error, so that a tag-based forbid cannot be
    /// skipped by a storage fault.
    fn object_tags(
        &self,
        engine: &fsgate_policy::PolicyEngine,
        resource: &Resource,
        version: Option<&str>,
    ) -> Result<Vec<(String, String)>, fsgate_store::StoreError> {
        let Resource::Object { bucket, key } = resource else {
            return Ok(Vec::new());
        };
        if !engine.uses_object_tags() {
            return Ok(Vec::new());
        }
        match self.store.head_version(bucket, key, version) {
            Ok(m) if m.delete_marker => Ok(Vec::new()),
            Ok(m) => Ok(m.extras.tags),
            Err(
                fsgate_store::StoreError::NoSuchKey
                | fsgate_store::StoreError::NoSuchVersion
                | fsgate_store::StoreError::NoSuchBucket,
            ) => Ok(Vec::new()),
            // A version id that is not one fsgate makes names no version: nothing to read
            // (the operation answers the error itself).
            Err(fsgate_store::StoreError::InvalidVersionId) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The user owning the bucket a request addresses, when some policy reads owners (the
    /// owner role); a failed read is an error, as for tags.
    fn bucket_owner(
        &self,
        engine: &fsgate_policy::PolicyEngine,
        resource: &Resource,
    ) -> Result<Option<String>, fsgate_store::StoreError> {
        let (Resource::Bucket(bucket) | Resource::Object { bucket, .. }) = resource else {
            return Ok(None);
        };
        if !engine.uses_bucket_owners() {
            return Ok(None);
        }
        match self.store.bucket_owner(bucket) {
            Ok(owner) => Ok(owner.and_then(|o| o.strip_prefix("user:").map(str::to_owned))),
            Err(fsgate_store::StoreError::NoSuchBucket) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Decides with the current engine, loading object tags and the bucket's owner when its
    /// policies need them.
    fn evaluate(&self, req: AccessRequest, version: Option<&str>) -> Decision {
        let engine = self.iam.snapshot_now().engine.clone();
        let resource = req.resource.clone();
        let facts = self
            .object_tags(&engine, &resource, version)
            .and_then(|tags| Ok((tags, self.bucket_owner(&engine, &resource)?)));
        match facts {
            Ok((object_tags, bucket_owner)) => engine.decide(&AccessRequest {
                object_tags,
                bucket_owner,
                ..req
            }),
            Err(e) => Decision {
                allowed: false,
                policies: Vec::new(),
                errors: vec![format!("reading the object's tags or bucket's owner: {e}")],
            },
        }
    }

    /// The principal for a request's credentials. A key that is no longer valid (deleted,
    /// owner disabled) is refused even if its signature verified a moment ago.
    /// Sessions need their token; anything signed before its owner's revocation time is
    /// refused. The signing facts come from the decoded query and the signed headers.
    pub fn principal(
        &self,
        access_key: Option<&str>,
        method: &http::Method,
        headers: &http::HeaderMap,
        query: &DecodedQuery,
    ) -> S3Result<Principal> {
        let Some(ak) = access_key else {
            return Ok(Principal::Anonymous);
        };
        let _span = tracing::info_span!("authenticate").entered();
        let facts = crate::identity::signing::SignedFacts::of(method, headers, query)?;
        self.iam
            .authenticate(crate::identity::iam::Presented {
                access_key: ak,
                token: facts.token.as_deref(),
                signed_ns: facts.signed_ns,
            })
            .map_err(crate::identity::signing::failure_error)
    }

    /// Decides one access and records it in the request's audit fields.
    pub fn decide(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        resource: Resource,
        facts: AccessFacts<'_>,
    ) -> Decision {
        let (bucket, key) = match &resource {
            Resource::Service | Resource::User(_) => (String::new(), String::new()),
            Resource::Bucket(b) => (b.clone(), String::new()),
            Resource::Object { bucket, key } => (bucket.clone(), key.clone()),
        };
        let req = access_request(rc, principal, action, resource, facts);
        let _span = tracing::info_span!("policy", action = action.cedar_name()).entered();
        let started = std::time::Instant::now();
        let d = self.evaluate(req, facts.version);
        crate::telemetry::requests::decision(d.allowed, started.elapsed().as_secs_f64());
        if !d.errors.is_empty() {
            tracing::warn!(request_id = %rc.request_id, errors = ?d.errors, "policy evaluation error; denied");
        }
        rc.record_decision(action, &bucket, &key, &d);
        d
    }

    /// Whether the policies in force read object tags.
    #[must_use]
    pub fn reads_tags(&self) -> bool {
        self.iam.snapshot_now().engine.uses_object_tags()
    }

    /// Decides a read again with the tags of the version the handler is about to serve (call
    /// it when [`Gate::reads_tags`]). The hook decided on the version current when it looked; a write
    /// landing before the handler pins the object can make another version current, and a
    /// tag-based `forbid` must hold for the bytes actually sent.
    pub fn confirm_served(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        (action, version): (Action, Option<&str>),
        resource: Resource,
        served_tags: &[(String, String)],
    ) -> S3Result<()> {
        let engine = self.iam.snapshot_now().engine.clone();
        let (bucket, key) = match &resource {
            Resource::Object { bucket, key } => (bucket.clone(), key.clone()),
            _ => (String::new(), String::new()),
        };
        let bucket_owner = match self.bucket_owner(&engine, &resource) {
            Ok(o) => o,
            Err(_) => return Err(denied()),
        };
        let req = AccessRequest {
            object_tags: served_tags.to_vec(),
            bucket_owner,
            ..access_request(
                rc,
                principal,
                action,
                resource,
                AccessFacts {
                    headers: rc.condition_headers.get(),
                    ..AccessFacts::version(version)
                },
            )
        };
        let d = engine.decide(&req);
        rc.record_decision(action, &bucket, &key, &d);
        if d.allowed { Ok(()) } else { Err(denied()) }
    }

    /// Decides for an explanation (`fsctl policy test`, `who-can`): nothing is recorded.
    pub fn explain(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        resource: Resource,
        facts: AccessFacts<'_>,
    ) -> Decision {
        self.evaluate(
            access_request(rc, principal, action, resource, facts),
            facts.version,
        )
    }

    /// Decides without recording: for filtering (ListBuckets), where the request records one
    /// summary decision itself.
    pub fn decide_quietly(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        resource: Resource,
    ) -> Decision {
        self.explain(rc, principal, action, resource, AccessFacts::default())
    }

    /// Decides, and turns a deny into `AccessDenied`.
    pub fn require(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        resource: Resource,
        facts: AccessFacts<'_>,
    ) -> S3Result<()> {
        if self.decide(rc, principal, action, resource, facts).allowed {
            Ok(())
        } else {
            Err(denied())
        }
    }
}

/// The Cedar request for one access.
fn access_request(
    rc: &RequestCtx,
    principal: &Principal,
    action: Action,
    resource: Resource,
    facts: AccessFacts<'_>,
) -> AccessRequest {
    AccessRequest {
        principal: principal.clone(),
        action,
        resource,
        context: RequestContext {
            source_ip: rc.source_ip,
            secure_transport: rc.secure,
            now: now_secs(),
            prefix: facts.prefix.map(str::to_owned),
            delimiter: facts.delimiter.map(str::to_owned),
            max_keys: facts.max_keys.map(i64::from),
            version_id: facts.version.map(str::to_owned),
            server_side_encryption: facts.server_side_encryption.map(str::to_owned),
            headers: facts.headers.cloned().unwrap_or_default(),
        },
        object_tags: Vec::new(),
        bucket_owner: None,
    }
}

/// The request state and principal `check` stored, before any decision (for the hooks).
fn authenticated_state<T>(req: &S3Request<T>) -> S3Result<(&Arc<RequestCtx>, &Principal)> {
    let rc = req.extensions.get::<Arc<RequestCtx>>();
    let p = req.extensions.get::<Principal>();
    match (rc, p) {
        (Some(rc), Some(p)) => Ok((rc, p)),
        // Never expected: without the state there is nothing to decide on, so deny.
        _ => Err(denied()),
    }
}

/// The request state, for a handler: only once an access hook has decided the request (see
/// the module doc). An undecided request is refused, and the fault logged.
pub fn decided_state<T>(req: &S3Request<T>) -> S3Result<Arc<RequestCtx>> {
    let (rc, _) = authenticated_state(req)?;
    if req.extensions.get::<Decided>().is_none() {
        tracing::error!(
            request_id = %rc.request_id,
            uri = %req.uri,
            "a handler ran on a request no access hook decided; denied"
        );
        return Err(denied());
    }
    Ok(rc.clone())
}

/// The request state and principal, for a handler that decides more itself (per key, bypass
/// permissions): only once an access hook has decided the request.
pub fn request_state<T>(req: &S3Request<T>) -> S3Result<(Arc<RequestCtx>, Principal)> {
    let rc = decided_state(req)?;
    let (_, p) = authenticated_state(req)?;
    Ok((rc, p.clone()))
}

/// Marks a request decided, for the handler and for the body's memory accounting.
fn mark<T>(req: &mut S3Request<T>, how: Decided) {
    if let Some(rc) = req.extensions.get::<Arc<RequestCtx>>() {
        rc.mark_decided();
    }
    req.extensions.insert(how);
}

/// AWS: "Request specific response headers cannot be used for anonymous GET requests."
fn refuse_anonymous_overrides(principal: &Principal, overrides: [bool; 6]) -> S3Result<()> {
    if matches!(principal, Principal::Anonymous) && overrides.contains(&true) {
        return Err(s3_error!(
            InvalidRequest,
            "Request specific response headers cannot be used for anonymous GET requests."
        ));
    }
    Ok(())
}

impl Gate {
    /// Authenticates a request (s3s's `check`): finds and records the principal. Operations
    /// fsgate implements are decided later, in their hooks; any other is decided here.
    fn authenticate_request(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let rc = cx
            .extensions_mut()
            .get::<Arc<RequestCtx>>()
            .cloned()
            .ok_or_else(denied)?;
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        // A share link's request is built by the share route, without credentials.
        let principal = match (rc.share_link.get(), &access_key) {
            (Some(link), None) => link.clone(),
            (Some(_), Some(_)) => return Err(denied()),
            (None, _) => {
                self.principal(access_key.as_deref(), cx.method(), cx.headers(), &rc.query)?
            }
        };
        rc.set_principal(&principal, access_key.as_deref().unwrap_or(""));
        if !matches!(principal, Principal::Anonymous)
            && !self.rates.admit_principal(principal.display_name())
        {
            return Err(crate::error::slow_down());
        }
        // AWS answers 403 when the bucket (or copy source) belongs to another account.
        for h in [
            "x-amz-expected-bucket-owner",
            "x-amz-source-expected-bucket-owner",
        ] {
            if cx
                .headers()
                .get_all(h)
                .iter()
                .any(|v| v.as_bytes() != crate::identity::ACCOUNT_ID.as_bytes())
            {
                return Err(denied());
            }
        }
        cx.extensions_mut().insert(principal.clone());
        if decided_in_hook(cx.s3_op().name()) {
            return Ok(());
        }
        self.require(
            &rc,
            &principal,
            Action::Unsupported,
            Resource::Service,
            AccessFacts::default(),
        )
    }

    /// Decides an operation on one object or bucket, named by the parsed input, and marks the
    /// request decided.
    fn require_input<T: 'static>(
        &self,
        req: &mut S3Request<T>,
        action: Action,
        resource: Resource,
        version: Option<&str>,
    ) -> S3Result<()> {
        let (rc, p) = authenticated_state(req)?;
        let headers = kept_condition_headers(rc, req);
        let action = versioned_action(action, version.is_some());
        let facts = AccessFacts {
            headers: Some(headers),
            ..AccessFacts::version(version)
        };
        self.require(rc, p, action, resource, facts)?;
        mark(req, Decided::Whole);
        Ok(())
    }

    /// A listing is decided on its bucket, with the prefix (and delimiter, max-keys) in the
    /// context; the bucket is placed in the granted prefixes the listing prefix falls under.
    fn require_listing<T: 'static>(
        &self,
        req: &mut S3Request<T>,
        action: Action,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: Option<i32>,
    ) -> S3Result<()> {
        let (rc, p) = authenticated_state(req)?;
        let headers = kept_condition_headers(rc, req);
        let facts = AccessFacts {
            prefix: Some(prefix.unwrap_or("")),
            delimiter,
            max_keys,
            headers: Some(headers),
            ..AccessFacts::default()
        };
        self.require(rc, p, action, Resource::Bucket(bucket.to_owned()), facts)?;
        mark(req, Decided::Whole);
        Ok(())
    }

    /// A copy is decided at both ends: reading the source (the version it names), and writing
    /// the destination.
    fn require_copy<T: 'static>(
        &self,
        req: &mut S3Request<T>,
        action: Action,
        source: &CopySource,
        bucket: &str,
        key: &str,
    ) -> S3Result<()> {
        let sse = requested_sse(&req.input).map(str::to_owned);
        let (rc, p) = authenticated_state(req)?;
        let headers = kept_condition_headers(rc, req);
        let CopySource::Bucket {
            bucket: src_bucket,
            key: src_key,
            version_id,
        } = source
        else {
            return Err(s3_error!(
                NotImplemented,
                "Only bucket/key copy sources are supported"
            ));
        };
        let src = Resource::Object {
            bucket: src_bucket.to_string(),
            key: src_key.to_string(),
        };
        let dst = Resource::Object {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        let version = version_id.as_deref();
        let read_action = versioned_action(Action::GetObject, version.is_some());
        // The destination first: the request is audited as the copy (with both decisions'
        // policies).
        let facts = AccessFacts {
            server_side_encryption: sse.as_deref(),
            headers: Some(headers),
            ..AccessFacts::default()
        };
        let write = self.decide(rc, p, action, dst, facts);
        let read = self.decide(
            rc,
            p,
            read_action,
            src,
            AccessFacts {
                headers: Some(headers),
                ..AccessFacts::version(version)
            },
        );
        if read.allowed && write.allowed {
            mark(req, Decided::Whole);
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// Operations decided item by item in their handler: only marked here.
    fn defer_to_handler<T>(req: &mut S3Request<T>) -> S3Result<()> {
        authenticated_state(req)?;
        mark(req, Decided::PerItem);
        Ok(())
    }
}

macro_rules! access_hooks {
    (
        read { $($rh:ident: $ri:ident => $ra:ident,)* }
        listing { $($lh:ident: $li:ident => $la:ident ($lmax:ident),)* }
        versioned_object { $($vh:ident: $vi:ident => $va:ident,)* }
        object { $($oh:ident: $oi:ident => $oa:ident,)* }
        bucket { $($bh:ident: $bi:ident => $ba:ident,)* }
    ) => {
        #[async_trait::async_trait]
        impl S3Access for Gate {
            async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
                self.authenticate_request(cx)
            }

            $(
                async fn $rh(&self, req: &mut S3Request<$ri>) -> S3Result<()> {
                    let (_, p) = authenticated_state(req)?;
                    let i = &req.input;
                    refuse_anonymous_overrides(&p, [
                        i.response_cache_control.is_some(),
                        i.response_content_disposition.is_some(),
                        i.response_content_encoding.is_some(),
                        i.response_content_language.is_some(),
                        i.response_content_type.is_some(),
                        i.response_expires.is_some(),
                    ])?;
                    let resource = Resource::Object { bucket: i.bucket.clone(), key: i.key.clone() };
                    let version = i.version_id.clone();
                    self.require_input(req, Action::$ra, resource, version.as_deref())
                }
            )*

            $(
                async fn $lh(&self, req: &mut S3Request<$li>) -> S3Result<()> {
                    let i = &req.input;
                    let (b, prefix, delimiter, max) =
                        (i.bucket.clone(), i.prefix.clone(), i.delimiter.clone(), i.$lmax);
                    self.require_listing(req, Action::$la, &b, prefix.as_deref(), delimiter.as_deref(), max)
                }
            )*

            $(
                async fn $vh(&self, req: &mut S3Request<$vi>) -> S3Result<()> {
                    let i = &req.input;
                    let resource = Resource::Object { bucket: i.bucket.clone(), key: i.key.clone() };
                    let version = i.version_id.clone();
                    self.require_input(req, Action::$va, resource, version.as_deref())
                }
            )*

            $(
                async fn $oh(&self, req: &mut S3Request<$oi>) -> S3Result<()> {
                    let i = &req.input;
                    let resource = Resource::Object { bucket: i.bucket.clone(), key: i.key.clone() };
                    let sse = requested_sse(i).map(str::to_owned);
                    let (rc, p) = authenticated_state(req)?;
                    let headers = kept_condition_headers(rc, req);
                    let facts = AccessFacts {
                        server_side_encryption: sse.as_deref(),
                        headers: Some(headers),
                        ..AccessFacts::default()
                    };
                    self.require(rc, p, Action::$oa, resource, facts)?;
                    mark(req, Decided::Whole);
                    Ok(())
                }
            )*

            $(
                async fn $bh(&self, req: &mut S3Request<$bi>) -> S3Result<()> {
                    let resource = Resource::Bucket(req.input.bucket.clone());
                    self.require_input(req, Action::$ba, resource, None)
                }
            )*

            async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
                // s3s 0.14 does not hand the uploaded file's name to the service, so the key
                // cannot be completed; refusing beats storing a key with a literal `${filename}`.
                if req.input.key.contains("${filename}") {
                    return Err(s3_error!(
                        NotImplemented,
                        "${{filename}} in a POST key is not supported by fsgate; put the full key in the form"
                    ));
                }
                let resource = Resource::Object {
                    bucket: req.input.bucket.clone(),
                    key: req.input.key.clone(),
                };
                self.require_input(req, Action::PutObject, resource, None)
            }

            async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
                let i = &req.input;
                let (src, b, k) = (i.copy_source.clone(), i.bucket.clone(), i.key.clone());
                self.require_copy(req, Action::CopyObject, &src, &b, &k)
            }

            async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
                let i = &req.input;
                let (src, b, k) = (i.copy_source.clone(), i.bucket.clone(), i.key.clone());
                self.require_copy(req, Action::UploadPartCopy, &src, &b, &k)
            }

            async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
                Self::defer_to_handler(req)
            }

            async fn list_buckets(&self, req: &mut S3Request<ListBucketsInput>) -> S3Result<()> {
                Self::defer_to_handler(req)
            }
        }
    };
}
decided_operations!(access_hooks);

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations of `s3/mod.rs`'s `s3_operations!` table (`get_object(...)`) → s3s
    /// operation names (`GetObject`).
    fn implemented_operations() -> Vec<String> {
        let source = include_str!("s3/mod.rs");
        let (_, table) = source.split_once("s3_operations! {\n").unwrap_or_default();
        table
            .lines()
            .take_while(|l| !l.starts_with('}'))
            .filter_map(|l| l.trim().split_once('(').map(|(op, _)| op))
            .map(|snake| {
                snake
                    .split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn every_implemented_operation_is_decided_in_a_hook() {
        let ops = implemented_operations();
        assert!(ops.len() > 50, "{ops:?}");
        for op in &ops {
            assert!(
                decided_in_hook(op),
                "{op} is implemented but no access hook decides it"
            );
        }
        // Not implemented: decided in `check` as s3:Unsupported.
        assert!(!decided_in_hook("SelectObjectContent"));
        assert!(!decided_in_hook("PutBucketReplication"));
    }

    #[test]
    fn named_versions_are_their_own_permissions() {
        assert_eq!(
            versioned_action(Action::HeadObject, true),
            Action::GetObjectVersion
        );
        assert_eq!(
            versioned_action(Action::GetObject, true),
            Action::GetObjectVersion
        );
        assert_eq!(
            versioned_action(Action::DeleteObject, true),
            Action::DeleteObjectVersion
        );
        assert_eq!(
            versioned_action(Action::GetObject, false),
            Action::GetObject
        );
        assert_eq!(versioned_action(Action::PutObject, true), Action::PutObject);
    }
}
