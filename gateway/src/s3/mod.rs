//! The S3 front-end: `impl s3s::S3` for fsgate, one file per operation family.
//!
//! Handlers run after the access gate has decided the request (see `access.rs`); they turn
//! typed s3s inputs into store calls (off the async reactor, except point lookups that need no
//! wait), and store outcomes into S3 errors through `error.rs` only.

mod acl;
mod body;
mod bucket;
mod checksum;
mod copy;
pub mod cors;
mod delete;
pub mod lifecycle;
mod list;
mod lock;
pub mod logging;
pub(crate) mod multipart;
mod object_get;
mod object_put;
mod policy;
mod public_access;
pub mod quota;
pub mod sse;
pub(crate) mod tagging;
mod unconfigured;
mod versioning;
pub mod zero_copy;

use std::sync::Arc;

use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use fsgate_store::{Store, StoreError};

use crate::access::Gate;
use crate::context::RequestCtx;
use crate::error;

pub use self::cors::DOC as CORS_DOC;
pub use self::object_get::unquote_attributes_etag;
pub use self::public_access::account_block_changes;
pub use self::sse::kms::{KeyInfo, KmsError};
pub use self::sse::{KeyRing, MasterKey};

/// The checksum algorithms fsgate verifies.
#[must_use]
pub fn checksum_algorithms() -> [&'static str; 5] {
    checksum::ALGORITHMS
}

/// Turns on one algorithm in a hasher.
pub fn enable_checksum(h: &mut s3s::checksum::ChecksumHasher, algo: &str) -> S3Result<()> {
    checksum::enable(h, algo)
}

/// Longest object key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Smallest part (but the last) of a multipart upload.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Largest single upload (a PUT or a part) and copy source, as AWS: 5 GiB.
pub const MAX_SINGLE_UPLOAD: u64 = 5 << 30;

/// Refuses, before its body is read, an upload (PUT or part) declared larger than AWS takes.
fn check_upload_size(len: Option<u64>) -> S3Result<()> {
    match len {
        Some(n) if n > MAX_SINGLE_UPLOAD => Err(S3Error::with_message(
            S3ErrorCode::EntityTooLarge,
            format!(
                "Your proposed upload of {n} bytes exceeds the maximum allowed size of \
                 {MAX_SINGLE_UPLOAD} bytes; use a multipart upload."
            ),
        )),
        _ => Ok(()),
    }
}

/// The S3 API: every S3 operation fsgate implements (s3s's `S3` trait), over the store, each
/// decided through `Gate`.
#[derive(Debug, Clone)]
pub struct S3Api {
    store: Arc<Store>,
    gate: Gate,
    /// The SSE master key and the KMS key ring.
    keys: Arc<crate::s3::sse::KeyRing>,
    /// The region the buckets are in (`--region`).
    region: String,
    /// Bucket quotas (MinIO's admin API sets them).
    quotas: Arc<quota::BucketQuotas>,
    /// Free bytes the data directory keeps (`--min-free-space`): writes under it are refused.
    min_free: u64,
}

/// The region unless configured: AWS's answers for us-east-1 (an empty LocationConstraint).
pub const DEFAULT_REGION: &str = "us-east-1";

impl S3Api {
    /// A service over `store`, deciding per-key accesses with `gate`, answering for `region`.
    #[must_use]
    pub fn new(
        store: Arc<Store>,
        gate: Gate,
        keys: Arc<crate::s3::sse::KeyRing>,
        region: String,
        quotas: Arc<quota::BucketQuotas>,
        min_free: u64,
    ) -> Self {
        Self {
            store,
            gate,
            keys,
            region,
            quotas,
            min_free,
        }
    }

    /// Refuses, before its body is read, a write that would leave the data directory under its
    /// free-space reserve (`XMinioStorageFull`, 507: the reserve keeps room for metadata, deletes
    /// and the audit log; writing resumes by itself once space is freed) or take the bucket over
    /// its quota.
    async fn admit_write(&self, rc: &RequestCtx, bucket: &str, len: Option<u64>) -> S3Result<()> {
        if self.min_free > 0 {
            let free = self
                .store
                .free_space()
                .map_err(|e| error::store_error(e, &rc.request_id))?;
            let full = free < self.min_free.saturating_add(len.unwrap_or(0));
            metrics::gauge!("fsgate_storage_full").set(if full { 1.0 } else { 0.0 });
            if full {
                metrics::counter!("fsgate_storage_full_refusals_total").increment(1);
                return Err(error::storage_full());
            }
        }
        match self.quotas.admit(&self.store, bucket, len).await {
            Ok(()) => Ok(()),
            Err(e @ quota::QuotaError::Exceeded { .. }) => {
                Err(crate::error::quota_exceeded(&e.to_string()))
            }
            Err(quota::QuotaError::Store(e)) => Err(crate::error::store_error(e, &rc.request_id)),
        }
    }

    /// Runs a blocking store call off the reactor, mapping its error for the client.
    async fn run<T, F>(&self, rc: &RequestCtx, f: F) -> S3Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        let span = tracing::info_span!("store");
        match tokio::task::spawn_blocking(move || span.in_scope(|| f(&store))).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(error::store_error(e, &rc.request_id)),
            Err(e) => Err(error::internal(&e, &rc.request_id)),
        }
    }
}

impl S3Api {
    /// The data key to read a stored version with, opened with what the request supplies
    /// (`customer_*`: the SSE-C headers naming the key); `None` for a plain version.
    fn read_key(
        &self,
        info: Option<&fsgate_store::model::SseInfo>,
        customer_algorithm: Option<&str>,
        customer_key: Option<&str>,
        customer_key_md5: Option<&str>,
    ) -> S3Result<Option<crate::s3::sse::DataKey>> {
        let Some(info) = info else { return Ok(None) };
        let req = crate::s3::sse::customer_key(customer_algorithm, customer_key, customer_key_md5)?;
        crate::s3::sse::open_key(&self.keys, info, &req).map(Some)
    }
}

/// The request state, once the request's access hook decided it (see `access.rs`).
fn ctx<T>(req: &S3Request<T>) -> S3Result<Arc<RequestCtx>> {
    crate::access::decided_state(req)
}

fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(s3s::s3_error!(KeyTooLongError, "Your key is too long"));
    }
    if key.is_empty() {
        return Err(s3s::s3_error!(
            InvalidArgument,
            "Object key must not be empty"
        ));
    }
    if key.contains('\0') {
        return Err(s3s::s3_error!(
            InvalidArgument,
            "Object key must not contain the NUL character"
        ));
    }
    Ok(())
}

/// The conditional-write headers of PutObject and CompleteMultipartUpload. S3 supports only
/// `If-None-Match: *` on writes.
fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<fsgate_store::objects::WriteCondition> {
    let if_none_match = match if_none_match {
        None => false,
        Some(ETagCondition::Any) => true,
        Some(ETagCondition::ETag(_)) => {
            return Err(s3s::s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented: If-None-Match accepts only '*' on writes"
            ));
        }
    };
    let if_match = if_match.map(|c| match c {
        ETagCondition::Any => "*".to_owned(),
        ETagCondition::ETag(e) => e.value().to_owned(),
    });
    Ok(fsgate_store::objects::WriteCondition {
        if_none_match,
        if_match,
    })
}

/// The `x-amz-version-id` to show for a version: none for objects of never-versioned buckets.
fn shown_version(m: &fsgate_store::model::ObjectManifest) -> Option<String> {
    m.version_id.clone()
}

/// The error for a request that found a delete marker: 404 NoSuchKey for the current version,
/// 405 MethodNotAllowed when the marker was named by version id; both say it is a marker.
fn delete_marker_error(m: &fsgate_store::model::ObjectManifest, named: bool) -> s3s::S3Error {
    let mut e = if named {
        s3s::S3Error::with_message(
            s3s::S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    } else {
        s3s::S3Error::with_message(
            s3s::S3ErrorCode::NoSuchKey,
            "The specified key does not exist.",
        )
    };
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Some(v) = m
        .version_id
        .as_deref()
        .and_then(|v| http::HeaderValue::from_str(v).ok())
    {
        h.insert("x-amz-version-id", v);
    }
    e.set_headers(h);
    e
}

/// Every S3 operation fsgate implements, and the handler that runs it: `FAMILY::HANDLER` names
/// the file of its family (`s3/FAMILY.rs`, or the folder `s3/FAMILY/` for a bucket
/// configuration with more than its operations: CORS, lifecycle, encryption). Each operation is decided first in its access hook
/// (`access.rs`); an operation missing here answers s3s's NotImplemented.
macro_rules! s3_operations {
    ($($op:ident($input:ident) -> $output:ident: $family:ident::$handler:ident;)*) => {
        #[async_trait::async_trait]
        impl S3 for S3Api {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.$handler(req).await
                }
            )*
        }
    };
}

s3_operations! {
    get_bucket_website(GetBucketWebsiteInput) -> GetBucketWebsiteOutput: unconfigured::do_get_bucket_website;
    get_bucket_accelerate_configuration(GetBucketAccelerateConfigurationInput) -> GetBucketAccelerateConfigurationOutput: unconfigured::do_get_bucket_accelerate_configuration;
    get_bucket_request_payment(GetBucketRequestPaymentInput) -> GetBucketRequestPaymentOutput: unconfigured::do_get_bucket_request_payment;
    get_bucket_replication(GetBucketReplicationInput) -> GetBucketReplicationOutput: unconfigured::do_get_bucket_replication;
    get_bucket_logging(GetBucketLoggingInput) -> GetBucketLoggingOutput: logging::do_get_bucket_logging;
    put_bucket_logging(PutBucketLoggingInput) -> PutBucketLoggingOutput: logging::do_put_bucket_logging;
    get_bucket_notification_configuration(GetBucketNotificationConfigurationInput) -> GetBucketNotificationConfigurationOutput: unconfigured::do_get_bucket_notification_configuration;
    get_public_access_block(GetPublicAccessBlockInput) -> GetPublicAccessBlockOutput: public_access::do_get_public_access_block;
    put_public_access_block(PutPublicAccessBlockInput) -> PutPublicAccessBlockOutput: public_access::do_put_public_access_block;
    get_bucket_analytics_configuration(GetBucketAnalyticsConfigurationInput) -> GetBucketAnalyticsConfigurationOutput: unconfigured::do_get_bucket_analytics_configuration;
    list_bucket_analytics_configurations(ListBucketAnalyticsConfigurationsInput) -> ListBucketAnalyticsConfigurationsOutput: unconfigured::do_list_bucket_analytics_configurations;
    get_bucket_intelligent_tiering_configuration(GetBucketIntelligentTieringConfigurationInput) -> GetBucketIntelligentTieringConfigurationOutput: unconfigured::do_get_bucket_intelligent_tiering_configuration;
    list_bucket_intelligent_tiering_configurations(ListBucketIntelligentTieringConfigurationsInput) -> ListBucketIntelligentTieringConfigurationsOutput: unconfigured::do_list_bucket_intelligent_tiering_configurations;
    get_bucket_inventory_configuration(GetBucketInventoryConfigurationInput) -> GetBucketInventoryConfigurationOutput: unconfigured::do_get_bucket_inventory_configuration;
    list_bucket_inventory_configurations(ListBucketInventoryConfigurationsInput) -> ListBucketInventoryConfigurationsOutput: unconfigured::do_list_bucket_inventory_configurations;
    get_bucket_metrics_configuration(GetBucketMetricsConfigurationInput) -> GetBucketMetricsConfigurationOutput: unconfigured::do_get_bucket_metrics_configuration;
    list_bucket_metrics_configurations(ListBucketMetricsConfigurationsInput) -> ListBucketMetricsConfigurationsOutput: unconfigured::do_list_bucket_metrics_configurations;
    delete_bucket_website(DeleteBucketWebsiteInput) -> DeleteBucketWebsiteOutput: unconfigured::do_delete_bucket_website;
    delete_bucket_replication(DeleteBucketReplicationInput) -> DeleteBucketReplicationOutput: unconfigured::do_delete_bucket_replication;
    delete_public_access_block(DeletePublicAccessBlockInput) -> DeletePublicAccessBlockOutput: public_access::do_delete_public_access_block;
    delete_bucket_analytics_configuration(DeleteBucketAnalyticsConfigurationInput) -> DeleteBucketAnalyticsConfigurationOutput: unconfigured::do_delete_bucket_analytics_configuration;
    delete_bucket_intelligent_tiering_configuration(DeleteBucketIntelligentTieringConfigurationInput) -> DeleteBucketIntelligentTieringConfigurationOutput: unconfigured::do_delete_bucket_intelligent_tiering_configuration;
    delete_bucket_inventory_configuration(DeleteBucketInventoryConfigurationInput) -> DeleteBucketInventoryConfigurationOutput: unconfigured::do_delete_bucket_inventory_configuration;
    delete_bucket_metrics_configuration(DeleteBucketMetricsConfigurationInput) -> DeleteBucketMetricsConfigurationOutput: unconfigured::do_delete_bucket_metrics_configuration;
    list_buckets(ListBucketsInput) -> ListBucketsOutput: bucket::do_list_buckets;
    create_bucket(CreateBucketInput) -> CreateBucketOutput: bucket::do_create_bucket;
    head_bucket(HeadBucketInput) -> HeadBucketOutput: bucket::do_head_bucket;
    delete_bucket(DeleteBucketInput) -> DeleteBucketOutput: bucket::do_delete_bucket;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput: bucket::do_get_bucket_location;
    get_object_attributes(GetObjectAttributesInput) -> GetObjectAttributesOutput: object_get::do_get_object_attributes;
    get_bucket_acl(GetBucketAclInput) -> GetBucketAclOutput: acl::do_get_bucket_acl;
    put_bucket_acl(PutBucketAclInput) -> PutBucketAclOutput: acl::do_put_bucket_acl;
    get_object_acl(GetObjectAclInput) -> GetObjectAclOutput: acl::do_get_object_acl;
    put_object_acl(PutObjectAclInput) -> PutObjectAclOutput: acl::do_put_object_acl;
    get_bucket_ownership_controls(GetBucketOwnershipControlsInput) -> GetBucketOwnershipControlsOutput: acl::do_get_bucket_ownership_controls;
    put_bucket_ownership_controls(PutBucketOwnershipControlsInput) -> PutBucketOwnershipControlsOutput: acl::do_put_bucket_ownership_controls;
    delete_bucket_ownership_controls(DeleteBucketOwnershipControlsInput) -> DeleteBucketOwnershipControlsOutput: acl::do_delete_bucket_ownership_controls;
    copy_object(CopyObjectInput) -> CopyObjectOutput: copy::do_copy_object;
    put_bucket_cors(PutBucketCorsInput) -> PutBucketCorsOutput: cors::do_put_bucket_cors;
    get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput: cors::do_get_bucket_cors;
    delete_bucket_cors(DeleteBucketCorsInput) -> DeleteBucketCorsOutput: cors::do_delete_bucket_cors;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput: delete::do_delete_object;
    delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput: delete::do_delete_objects;
    put_bucket_encryption(PutBucketEncryptionInput) -> PutBucketEncryptionOutput: sse::do_put_bucket_encryption;
    get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput: sse::do_get_bucket_encryption;
    delete_bucket_encryption(DeleteBucketEncryptionInput) -> DeleteBucketEncryptionOutput: sse::do_delete_bucket_encryption;
    put_bucket_lifecycle_configuration(PutBucketLifecycleConfigurationInput) -> PutBucketLifecycleConfigurationOutput: lifecycle::do_put_bucket_lifecycle_configuration;
    get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput) -> GetBucketLifecycleConfigurationOutput: lifecycle::do_get_bucket_lifecycle_configuration;
    delete_bucket_lifecycle(DeleteBucketLifecycleInput) -> DeleteBucketLifecycleOutput: lifecycle::do_delete_bucket_lifecycle;
    list_objects(ListObjectsInput) -> ListObjectsOutput: list::do_list_objects;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output: list::do_list_objects_v2;
    put_object_lock_configuration(PutObjectLockConfigurationInput) -> PutObjectLockConfigurationOutput: lock::do_put_object_lock_configuration;
    get_object_lock_configuration(GetObjectLockConfigurationInput) -> GetObjectLockConfigurationOutput: lock::do_get_object_lock_configuration;
    put_object_retention(PutObjectRetentionInput) -> PutObjectRetentionOutput: lock::do_put_object_retention;
    get_object_retention(GetObjectRetentionInput) -> GetObjectRetentionOutput: lock::do_get_object_retention;
    put_object_legal_hold(PutObjectLegalHoldInput) -> PutObjectLegalHoldOutput: lock::do_put_object_legal_hold;
    get_object_legal_hold(GetObjectLegalHoldInput) -> GetObjectLegalHoldOutput: lock::do_get_object_legal_hold;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput: multipart::do_create_multipart_upload;
    upload_part(UploadPartInput) -> UploadPartOutput: multipart::do_upload_part;
    upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput: multipart::do_upload_part_copy;
    complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput: multipart::do_complete_multipart_upload;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput: multipart::do_abort_multipart_upload;
    list_parts(ListPartsInput) -> ListPartsOutput: multipart::do_list_parts;
    list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput: multipart::do_list_multipart_uploads;
    get_object(GetObjectInput) -> GetObjectOutput: object_get::do_get_object;
    head_object(HeadObjectInput) -> HeadObjectOutput: object_get::do_head_object;
    put_object(PutObjectInput) -> PutObjectOutput: object_put::do_put_object;
    put_bucket_policy(PutBucketPolicyInput) -> PutBucketPolicyOutput: policy::do_put_bucket_policy;
    get_bucket_policy(GetBucketPolicyInput) -> GetBucketPolicyOutput: policy::do_get_bucket_policy;
    delete_bucket_policy(DeleteBucketPolicyInput) -> DeleteBucketPolicyOutput: policy::do_delete_bucket_policy;
    get_bucket_policy_status(GetBucketPolicyStatusInput) -> GetBucketPolicyStatusOutput: policy::do_get_bucket_policy_status;
    put_object_tagging(PutObjectTaggingInput) -> PutObjectTaggingOutput: tagging::do_put_object_tagging;
    get_object_tagging(GetObjectTaggingInput) -> GetObjectTaggingOutput: tagging::do_get_object_tagging;
    delete_object_tagging(DeleteObjectTaggingInput) -> DeleteObjectTaggingOutput: tagging::do_delete_object_tagging;
    put_bucket_tagging(PutBucketTaggingInput) -> PutBucketTaggingOutput: tagging::do_put_bucket_tagging;
    get_bucket_tagging(GetBucketTaggingInput) -> GetBucketTaggingOutput: tagging::do_get_bucket_tagging;
    delete_bucket_tagging(DeleteBucketTaggingInput) -> DeleteBucketTaggingOutput: tagging::do_delete_bucket_tagging;
    get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput: versioning::do_get_bucket_versioning;
    put_bucket_versioning(PutBucketVersioningInput) -> PutBucketVersioningOutput: versioning::do_put_bucket_versioning;
    list_object_versions(ListObjectVersionsInput) -> ListObjectVersionsOutput: list::do_list_object_versions;
}
