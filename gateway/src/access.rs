//! Authorization: builds the Cedar request for each S3 operation and asks fsgate-policy.
//!
//! Every S3 request passes `S3Access::check` (s3s calls it for signed and unsigned requests
//! alike, because an auth provider is always set). Operations whose decision needs the parsed
//! input — listings (prefix), copies (source), DeleteObjects (each key) — are decided in their
//! per-operation hook or handler; `stage_of` says which, and has no way to skip a decision.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fsgate_policy::{AccessRequest, Action, Decision, Principal, RequestContext, Resource};
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{
    CopyObjectInput, CopySource, ListMultipartUploadsInput, ListObjectVersionsInput,
    ListObjectsInput, ListObjectsV2Input, PostObjectInput, UploadPartCopyInput,
};
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result, s3_error};

use crate::context::RequestCtx;
use crate::iam::Iam;

/// When an operation is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// In `check`, from the path alone.
    Now(Action),
    /// In the operation's own access hook, which sees the parsed input.
    Hook(Action),
    /// Per key, in the handler (DeleteObjects).
    PerKey,
}

/// Maps an s3s operation name to when and how it is decided. Unknown operations are decided as
/// `s3:Unsupported`, which only root and admins hold.
#[must_use]
pub fn stage_of(op: &str) -> Stage {
    use Action as A;
    let now = |a| Stage::Now(a);
    match op {
        "GetObject" => now(A::GetObject),
        "HeadObject" => now(A::HeadObject),
        "GetObjectAttributes" => now(A::GetObjectAttributes),
        "GetObjectTagging" => now(A::GetObjectTagging),
        "GetObjectRetention" => now(A::GetObjectRetention),
        "GetObjectLegalHold" => now(A::GetObjectLegalHold),
        "GetObjectAcl" => now(A::GetObjectAcl),
        "PutObject" => now(A::PutObject),
        "DeleteObject" => now(A::DeleteObject),
        "PutObjectTagging" => now(A::PutObjectTagging),
        "DeleteObjectTagging" => now(A::DeleteObjectTagging),
        "PutObjectRetention" => now(A::PutObjectRetention),
        "PutObjectLegalHold" => now(A::PutObjectLegalHold),
        "PutObjectAcl" => now(A::PutObjectAcl),
        "CreateMultipartUpload" => now(A::CreateMultipartUpload),
        "UploadPart" => now(A::UploadPart),
        "CompleteMultipartUpload" => now(A::CompleteMultipartUpload),
        "AbortMultipartUpload" => now(A::AbortMultipartUpload),
        "ListParts" => now(A::ListParts),
        "HeadBucket" => now(A::HeadBucket),
        "GetBucketLocation" => now(A::GetBucketLocation),
        "GetBucketVersioning" => now(A::GetBucketVersioning),
        "GetBucketTagging" => now(A::GetBucketTagging),
        "GetBucketCors" => now(A::GetBucketCors),
        "GetBucketLifecycleConfiguration" => now(A::GetBucketLifecycleConfiguration),
        "GetBucketEncryption" => now(A::GetBucketEncryption),
        "GetObjectLockConfiguration" => now(A::GetObjectLockConfiguration),
        "GetBucketPolicy" => now(A::GetBucketPolicy),
        "GetBucketPolicyStatus" => now(A::GetBucketPolicyStatus),
        "GetBucketAcl" => now(A::GetBucketAcl),
        "GetBucketOwnershipControls" => now(A::GetBucketOwnershipControls),
        "CreateBucket" => now(A::CreateBucket),
        "DeleteBucket" => now(A::DeleteBucket),
        "PutBucketVersioning" => now(A::PutBucketVersioning),
        "PutBucketTagging" => now(A::PutBucketTagging),
        "DeleteBucketTagging" => now(A::DeleteBucketTagging),
        "PutBucketCors" => now(A::PutBucketCors),
        "DeleteBucketCors" => now(A::DeleteBucketCors),
        "PutBucketLifecycleConfiguration" => now(A::PutBucketLifecycleConfiguration),
        "DeleteBucketLifecycle" => now(A::DeleteBucketLifecycle),
        "PutBucketEncryption" => now(A::PutBucketEncryption),
        "DeleteBucketEncryption" => now(A::DeleteBucketEncryption),
        "PutObjectLockConfiguration" => now(A::PutObjectLockConfiguration),
        "PutBucketPolicy" => now(A::PutBucketPolicy),
        "DeleteBucketPolicy" => now(A::DeleteBucketPolicy),
        "PutBucketAcl" => now(A::PutBucketAcl),
        "PutBucketOwnershipControls" => now(A::PutBucketOwnershipControls),
        "DeleteBucketOwnershipControls" => now(A::DeleteBucketOwnershipControls),
        "ListBuckets" => Stage::PerKey,
        "ListObjects" => Stage::Hook(A::ListObjects),
        "ListObjectsV2" => Stage::Hook(A::ListObjectsV2),
        "ListObjectVersions" => Stage::Hook(A::ListObjectVersions),
        "ListMultipartUploads" => Stage::Hook(A::ListMultipartUploads),
        "CopyObject" => Stage::Hook(A::CopyObject),
        // Browser form uploads: decided as PutObject on the key from the form.
        "PostObject" => Stage::Hook(A::PutObject),
        "UploadPartCopy" => Stage::Hook(A::UploadPartCopy),
        "DeleteObjects" => Stage::PerKey,
        _ => now(A::Unsupported),
    }
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

/// True when a request's query names a version (`versionId=`).
fn query_has_version(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.split('=').next() == Some("versionId"))
    })
}

/// Listing parameters that go into the Cedar context.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListingContext<'a> {
    /// Prefix.
    pub prefix: Option<&'a str>,
    /// Delimiter.
    pub delimiter: Option<&'a str>,
    /// max-keys.
    pub max_keys: Option<i32>,
}

/// The access gate: turns requests into Cedar decisions and records them.
#[derive(Debug, Clone)]
pub struct Gate {
    iam: Arc<Iam>,
    /// Read only for object tags, when a policy reads them.
    store: Arc<fsgate_store::Store>,
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
        Self { iam, store }
    }

    /// The IAM cache (to reload it after a bucket policy changes).
    #[must_use]
    pub fn iam(&self) -> &Arc<Iam> {
        &self.iam
    }

    /// The tags Cedar sees on an object: read only when some policy reads tags (a metadata
    /// point read, served from RocksDB's cache). A missing object has none; a failed read is
    /// an error, so that a tag-based forbid cannot be skipped by a storage fault.
    fn object_tags(
        &self,
        engine: &fsgate_policy::PolicyEngine,
        resource: &Resource,
    ) -> Result<Vec<(String, String)>, String> {
        let Resource::Object { bucket, key } = resource else {
            return Ok(Vec::new());
        };
        if !engine.uses_object_tags() {
            return Ok(Vec::new());
        }
        match self.store.head_object(bucket, key) {
            Ok(m) => Ok(m.extras.tags),
            Err(fsgate_store::StoreError::NoSuchKey | fsgate_store::StoreError::NoSuchBucket) => {
                Ok(Vec::new())
            }
            Err(e) => Err(format!("reading the object's tags: {e}")),
        }
    }

    /// Decides with the current engine, loading object tags when its policies need them.
    fn evaluate(&self, req: AccessRequest) -> Decision {
        let engine = self.iam.snapshot_now().engine.clone();
        let resource = req.resource.clone();
        match self.object_tags(&engine, &resource) {
            Ok(object_tags) => engine.decide(&AccessRequest { object_tags, ..req }),
            Err(e) => Decision {
                allowed: false,
                policies: Vec::new(),
                errors: vec![e],
            },
        }
    }

    /// The principal for a request's credentials. A key that is no longer valid (deleted,
    /// owner disabled) is refused even if its signature verified a moment ago.
    /// Sessions need their token; anything signed before its owner's revocation time is
    /// refused.
    pub fn principal(
        &self,
        access_key: Option<&str>,
        headers: &http::HeaderMap,
        uri: &http::Uri,
    ) -> S3Result<Principal> {
        let Some(ak) = access_key else {
            return Ok(Principal::Anonymous);
        };
        let _span = tracing::info_span!("authenticate").entered();
        let facts = crate::auth::SignedFacts::of(headers, uri)?;
        self.iam
            .authenticate(crate::iam::Presented {
                access_key: ak,
                token: facts.token.as_deref(),
                signed_ns: facts.signed_ns,
            })
            .map_err(crate::auth::failure_error)
    }

    /// Decides one access and records it in the request's audit fields.
    pub fn decide(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        resource: Resource,
        listing: ListingContext<'_>,
    ) -> Decision {
        let (bucket, key) = match &resource {
            Resource::Service | Resource::User(_) => (String::new(), String::new()),
            Resource::Bucket(b) => (b.clone(), String::new()),
            Resource::Object { bucket, key } => (bucket.clone(), key.clone()),
        };
        let req = access_request(rc, principal, action, resource, listing);
        let _span = tracing::info_span!("policy", action = action.cedar_name()).entered();
        let started = std::time::Instant::now();
        let d = self.evaluate(req);
        crate::request_metrics::decision(d.allowed, started.elapsed().as_secs_f64());
        if !d.errors.is_empty() {
            tracing::warn!(request_id = %rc.request_id, errors = ?d.errors, "policy evaluation error; denied");
        }
        rc.record_decision(action, &bucket, &key, &d);
        d
    }

    /// Decides for an explanation (`fsctl policy test`, `who-can`): nothing is recorded.
    pub fn explain(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        resource: Resource,
        listing: ListingContext<'_>,
    ) -> Decision {
        self.evaluate(access_request(rc, principal, action, resource, listing))
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
        self.explain(rc, principal, action, resource, ListingContext::default())
    }

    /// Decides, and turns a deny into `AccessDenied`.
    pub fn require(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        resource: Resource,
        listing: ListingContext<'_>,
    ) -> S3Result<()> {
        if self
            .decide(rc, principal, action, resource, listing)
            .allowed
        {
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
    listing: ListingContext<'_>,
) -> AccessRequest {
    AccessRequest {
        principal: principal.clone(),
        action,
        resource,
        context: RequestContext {
            source_ip: rc.source_ip,
            secure_transport: rc.secure,
            now: now_secs(),
            prefix: listing.prefix.map(str::to_owned),
            delimiter: listing.delimiter.map(str::to_owned),
            max_keys: listing.max_keys.map(i64::from),
        },
        object_tags: Vec::new(),
    }
}

/// The request state and principal that `check` stored for the per-operation hooks.
pub fn request_state<T>(req: &S3Request<T>) -> S3Result<(Arc<RequestCtx>, Principal)> {
    let rc = req.extensions.get::<Arc<RequestCtx>>().cloned();
    let p = req.extensions.get::<Principal>().cloned();
    match (rc, p) {
        (Some(rc), Some(p)) => Ok((rc, p)),
        // Never expected: without the state there is nothing to decide on, so deny.
        _ => Err(denied()),
    }
}

fn resource_of(path: &S3Path) -> Resource {
    match path {
        S3Path::Root => Resource::Service,
        S3Path::Bucket { bucket } => Resource::Bucket(bucket.to_string()),
        S3Path::Object { bucket, key } => Resource::Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
        },
    }
}

fn copy_source(src: &CopySource) -> S3Result<(Resource, bool)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            Resource::Object {
                bucket: bucket.to_string(),
                key: key.to_string(),
            },
            version_id.is_some(),
        )),
        _ => Err(s3_error!(
            NotImplemented,
            "Only bucket/key copy sources are supported"
        )),
    }
}

#[async_trait::async_trait]
impl S3Access for Gate {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let rc = cx
            .extensions_mut()
            .get::<Arc<RequestCtx>>()
            .cloned()
            .ok_or_else(denied)?;
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let principal = self.principal(access_key.as_deref(), cx.headers(), cx.uri())?;
        rc.set_principal(&principal, access_key.as_deref().unwrap_or(""));
        // AWS answers 403 when the bucket (or copy source) belongs to another account.
        for h in [
            "x-amz-expected-bucket-owner",
            "x-amz-source-expected-bucket-owner",
        ] {
            if cx
                .headers()
                .get(h)
                .is_some_and(|v| v.as_bytes() != crate::s3::ACCOUNT_ID.as_bytes())
            {
                return Err(denied());
            }
        }
        let resource = resource_of(cx.s3_path());
        cx.extensions_mut().insert(principal.clone());
        match stage_of(cx.s3_op().name()) {
            Stage::Now(action) => {
                let action = versioned_action(action, query_has_version(cx.uri()));
                let resource = match (action, resource) {
                    (Action::Unsupported, _) => Resource::Service,
                    (_, r) => r,
                };
                self.require(&rc, &principal, action, resource, ListingContext::default())
            }
            Stage::Hook(_) | Stage::PerKey => Ok(()),
        }
    }

    async fn list_objects(&self, req: &mut S3Request<ListObjectsInput>) -> S3Result<()> {
        let i = &req.input;
        let (prefix, delimiter, max) = (i.prefix.as_deref(), i.delimiter.as_deref(), i.max_keys);
        self.require_listing(req, Action::ListObjects, &i.bucket, prefix, delimiter, max)
    }

    async fn list_objects_v2(&self, req: &mut S3Request<ListObjectsV2Input>) -> S3Result<()> {
        let i = &req.input;
        let (prefix, delimiter, max) = (i.prefix.as_deref(), i.delimiter.as_deref(), i.max_keys);
        self.require_listing(
            req,
            Action::ListObjectsV2,
            &i.bucket,
            prefix,
            delimiter,
            max,
        )
    }

    async fn list_multipart_uploads(
        &self,
        req: &mut S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<()> {
        let i = &req.input;
        let (prefix, delimiter, max) = (i.prefix.as_deref(), i.delimiter.as_deref(), i.max_uploads);
        self.require_listing(
            req,
            Action::ListMultipartUploads,
            &i.bucket,
            prefix,
            delimiter,
            max,
        )
    }

    async fn list_object_versions(
        &self,
        req: &mut S3Request<ListObjectVersionsInput>,
    ) -> S3Result<()> {
        let i = &req.input;
        let (prefix, delimiter, max) = (i.prefix.as_deref(), i.delimiter.as_deref(), i.max_keys);
        self.require_listing(
            req,
            Action::ListObjectVersions,
            &i.bucket,
            prefix,
            delimiter,
            max,
        )
    }

    async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
        // s3s 0.14 does not hand the uploaded file's name to the service, so the key cannot
        // be completed; refusing beats storing a key with a literal `${filename}`.
        if req.input.key.contains("${filename}") {
            return Err(s3_error!(
                NotImplemented,
                "${{filename}} in a POST key is not supported by fsgate; put the full key in the form"
            ));
        }
        let (rc, p) = request_state(req)?;
        let resource = Resource::Object {
            bucket: req.input.bucket.clone(),
            key: req.input.key.clone(),
        };
        self.require(
            &rc,
            &p,
            Action::PutObject,
            resource,
            ListingContext::default(),
        )
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let i = &req.input;
        self.require_copy(req, Action::CopyObject, &i.copy_source, &i.bucket, &i.key)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        let i = &req.input;
        self.require_copy(
            req,
            Action::UploadPartCopy,
            &i.copy_source,
            &i.bucket,
            &i.key,
        )
    }
}

impl Gate {
    /// A listing is decided on its bucket, with the prefix (and delimiter, max-keys) in the
    /// context; the bucket is placed in the granted prefixes the listing prefix falls under.
    fn require_listing<T>(
        &self,
        req: &S3Request<T>,
        action: Action,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: Option<i32>,
    ) -> S3Result<()> {
        let (rc, p) = request_state(req)?;
        let listing = ListingContext {
            prefix: Some(prefix.unwrap_or("")),
            delimiter,
            max_keys,
        };
        self.require(
            &rc,
            &p,
            action,
            Resource::Bucket(bucket.to_owned()),
            listing,
        )
    }

    /// A copy is decided at both ends: reading the source, and writing the destination.
    fn require_copy<T>(
        &self,
        req: &S3Request<T>,
        action: Action,
        source: &CopySource,
        bucket: &str,
        key: &str,
    ) -> S3Result<()> {
        let (rc, p) = request_state(req)?;
        let (src, versioned) = copy_source(source)?;
        let dst = Resource::Object {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        let read_action = versioned_action(Action::GetObject, versioned);
        let read = self.decide(&rc, &p, read_action, src, ListingContext::default());
        let write = self.decide(&rc, &p, action, dst, ListingContext::default());
        if read.allowed && write.allowed {
            Ok(())
        } else {
            Err(denied())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implemented_operation_is_decided() {
        for op in [
            "GetObject",
            "HeadObject",
            "PutObject",
            "DeleteObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
            "AbortMultipartUpload",
            "ListParts",
            "HeadBucket",
            "GetBucketLocation",
            "CreateBucket",
            "DeleteBucket",
        ] {
            assert!(
                matches!(stage_of(op), Stage::Now(a) if a != Action::Unsupported),
                "{op}"
            );
        }
        for op in [
            "ListObjects",
            "ListObjectsV2",
            "ListMultipartUploads",
            "ListObjectVersions",
            "PostObject",
            "CopyObject",
            "UploadPartCopy",
        ] {
            assert!(matches!(stage_of(op), Stage::Hook(_)), "{op}");
        }
        assert_eq!(stage_of("DeleteObjects"), Stage::PerKey);
        assert_eq!(stage_of("ListBuckets"), Stage::PerKey);
        assert_eq!(
            stage_of("SelectObjectContent"),
            Stage::Now(Action::Unsupported)
        );
        assert_eq!(
            versioned_action(Action::HeadObject, true),
            Action::GetObjectVersion
        );
        assert_eq!(
            versioned_action(Action::DeleteObject, true),
            Action::DeleteObjectVersion
        );
        assert_eq!(versioned_action(Action::PutObject, true), Action::PutObject);
    }
}
