//! Bucket versioning: GetBucketVersioning, PutBucketVersioning, ListObjectVersions.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_store::model::Versioning;
use fsgate_store::versions::{VersionListEntry, VersionQuery};

use super::bucket::owner;
use super::object_get::timestamp;
use super::{FsGate, ctx};

impl FsGate {
    pub(super) async fn do_get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let rec = self.run(&rc, move |s| s.bucket(&b)).await?;
        // A never-versioned bucket answers an empty configuration, as AWS does.
        let status = match rec.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::ENABLED),
            Versioning::Suspended => Some(BucketVersioningStatus::SUSPENDED),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            mfa_delete: None,
            status: status.map(BucketVersioningStatus::from_static),
        }))
    }

    pub(super) async fn do_put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let cfg = i.versioning_configuration;
        if cfg
            .mfa_delete
            .as_ref()
            .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
        {
            return Err(s3_error!(
                NotImplemented,
                "MFA Delete is not supported by fsgate"
            ));
        }
        let v = match cfg.status.as_ref().map(BucketVersioningStatus::as_str) {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        };
        let b = i.bucket;
        self.run(&rc, move |s| s.set_versioning(&b, v)).await?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    pub(super) async fn do_list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let max = super::list::max_keys(i.max_keys)?;
        let url = super::list::wants_url(i.encoding_type.as_ref())?;
        if i.version_id_marker.is_some() && i.key_marker.is_none() {
            return Err(s3_error!(
                InvalidArgument,
                "A version-id marker cannot be specified without a key marker."
            ));
        }
        let (b, prefix, delim, km, vm) = (
            i.bucket.clone(),
            i.prefix.clone().unwrap_or_default(),
            i.delimiter.clone(),
            i.key_marker.clone(),
            i.version_id_marker.clone(),
        );
        let page = self
            .run(&rc, move |s| {
                s.list_object_versions(
                    &b,
                    &VersionQuery {
                        prefix: &prefix,
                        delimiter: delim.as_deref(),
                        key_marker: km.as_deref(),
                        version_id_marker: vm.as_deref(),
                        max,
                    },
                )
            })
            .await?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut prefixes = Vec::new();
        let mut next: Option<(String, Option<String>)> = None;
        for e in page.entries {
            match e {
                VersionListEntry::CommonPrefix(p) => {
                    next = Some((p.clone(), None));
                    prefixes.push(CommonPrefix {
                        prefix: Some(super::list::enc(url, p)),
                    });
                }
                VersionListEntry::Version(v) => {
                    next = Some((v.key.clone(), Some(v.version_id.clone())));
                    let key = super::list::enc(url, v.key);
                    if v.manifest.delete_marker {
                        markers.push(DeleteMarkerEntry {
                            is_latest: Some(v.is_latest),
                            key: Some(key),
                            last_modified: Some(timestamp(v.manifest.modified_ns)),
                            owner: Some(owner()),
                            version_id: Some(v.version_id),
                        });
                    } else {
                        versions.push(ObjectVersion {
                            e_tag: Some(ETag::Strong(v.manifest.etag)),
                            is_latest: Some(v.is_latest),
                            key: Some(key),
                            last_modified: Some(timestamp(v.manifest.modified_ns)),
                            owner: Some(owner()),
                            size: i64::try_from(v.manifest.size).ok(),
                            storage_class: Some(ObjectVersionStorageClass::from_static(
                                ObjectVersionStorageClass::STANDARD,
                            )),
                            version_id: Some(v.version_id),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        let (next_key, next_version) = match next.filter(|_| page.truncated) {
            Some((k, v)) => (Some(super::list::enc(url, k)), v),
            None => (None, None),
        };
        Ok(S3Response::new(ListObjectVersionsOutput {
            common_prefixes: Some(prefixes),
            delete_markers: Some(markers),
            delimiter: i.delimiter,
            encoding_type: i.encoding_type,
            is_truncated: Some(page.truncated),
            key_marker: Some(i.key_marker.unwrap_or_default()),
            max_keys: i32::try_from(max).ok(),
            name: Some(i.bucket),
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            prefix: Some(i.prefix.unwrap_or_default()),
            request_charged: None,
            version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
            versions: Some(versions),
        }))
    }
}
