//! Listings: ListObjects (v1), ListObjectsV2 and ListObjectVersions: prefix, delimiter,
//! pagination, `encoding-type=url`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use fsgate_store::list::{ListEntry, ListPage, ListQuery};
use fsgate_store::meta::prefix_successor;
use fsgate_store::versions::{VersionListEntry, VersionQuery};

use super::acl::owner_dto;
use super::object_get::timestamp;
use super::{S3Api, ctx};
use crate::ownership::bucket_owner;

/// What S3 leaves unescaped in `encoding-type=url` output.
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub(super) fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be non-negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

pub(super) fn wants_url(e: Option<&EncodingType>) -> S3Result<bool> {
    match e {
        None => Ok(false),
        Some(e) if e.as_str() == EncodingType::URL => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

pub(super) fn enc(url: bool, s: String) -> String {
    if url {
        utf8_percent_encode(&s, URL_KEEP).to_string()
    } else {
        s
    }
}

fn split(page: ListPage, url: bool, owner: Option<&Owner>) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    for e in page.entries {
        match e {
            ListEntry::Object {
                key,
                size,
                etag,
                modified_ns,
            } => contents.push(Object {
                key: Some(enc(url, key)),
                size: i64::try_from(size).ok(),
                e_tag: Some(ETag::Strong(etag)),
                last_modified: Some(timestamp(modified_ns)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                owner: owner.cloned(),
                ..Default::default()
            }),
            ListEntry::CommonPrefix(p) => prefixes.push(CommonPrefix {
                prefix: Some(enc(url, p)),
            }),
        }
    }
    (contents, prefixes)
}

fn last_name(page: &ListPage) -> Option<String> {
    page.entries.last().map(|e| match e {
        ListEntry::Object { key, .. } => key.clone(),
        ListEntry::CommonPrefix(p) => p.clone(),
    })
}

/// An owned listing request, to move onto the blocking pool.
struct PageRequest {
    bucket: String,
    prefix: String,
    delimiter: Option<String>,
    start_at: Option<Vec<u8>>,
    start_after: Option<String>,
    max: usize,
    /// Read the bucket's owner too (listings that show it).
    with_owner: bool,
}

impl S3Api {
    /// One page of a listing, with the bucket owner as S3 shows it when asked for.
    async fn page(
        &self,
        rc: &crate::context::RequestCtx,
        p: PageRequest,
    ) -> S3Result<(ListPage, Option<Owner>)> {
        self.run(rc, move |s| {
            let page = s.list_objects(
                &p.bucket,
                &ListQuery {
                    prefix: &p.prefix,
                    delimiter: p.delimiter.as_deref(),
                    start_at: p.start_at.as_deref(),
                    start_after: p.start_after.as_deref(),
                    max: p.max,
                },
            )?;
            let owner = if p.with_owner {
                Some(owner_dto(&bucket_owner(s, &p.bucket)?))
            } else {
                None
            };
            Ok((page, owner))
        })
        .await
    }

    pub(super) async fn do_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let max = max_keys(i.max_keys)?;
        let url = wants_url(i.encoding_type.as_ref())?;
        let start_at = match &i.continuation_token {
            Some(t) => Some(URL_SAFE_NO_PAD.decode(t).map_err(|_| {
                s3_error!(
                    InvalidArgument,
                    "The continuation token provided is incorrect"
                )
            })?),
            None => None,
        };
        // AWS: start-after is ignored once a continuation token is given.
        let start_after = if start_at.is_none() {
            i.start_after.clone()
        } else {
            None
        };
        let prefix = i.prefix.clone().unwrap_or_default();
        let (page, owner) = self
            .page(
                &rc,
                PageRequest {
                    bucket: i.bucket.clone(),
                    prefix,
                    delimiter: i.delimiter.clone(),
                    start_at,
                    start_after,
                    max,
                    with_owner: i.fetch_owner.unwrap_or(false),
                },
            )
            .await?;
        let next = page.next.as_ref().map(|n| URL_SAFE_NO_PAD.encode(n));
        let (contents, prefixes) = split(page, url, owner.as_ref());
        let key_count = i32::try_from(contents.len() + prefixes.len()).unwrap_or(i32::MAX);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(url, i.prefix.unwrap_or_default())),
            delimiter: i.delimiter.map(|d| enc(url, d)),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            key_count: Some(key_count),
            continuation_token: i.continuation_token,
            next_continuation_token: next.clone(),
            is_truncated: Some(next.is_some()),
            start_after: i.start_after.map(|s| enc(url, s)),
            encoding_type: i.encoding_type,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            ..Default::default()
        }))
    }

    pub(super) async fn do_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let max = max_keys(i.max_keys)?;
        let url = wants_url(i.encoding_type.as_ref())?;
        let delimiter = i.delimiter.clone().filter(|d| !d.is_empty());
        // A marker that is a common prefix means "after everything under it".
        let (start_at, start_after) = match (&i.marker, &delimiter) {
            (Some(m), Some(d)) if m.ends_with(d.as_str()) => (prefix_successor(m.as_bytes()), None),
            (Some(m), _) => (None, Some(m.clone())),
            (None, _) => (None, None),
        };
        let prefix = i.prefix.clone().unwrap_or_default();
        let (page, owner) = self
            .page(
                &rc,
                PageRequest {
                    bucket: i.bucket.clone(),
                    prefix,
                    delimiter,
                    start_at,
                    start_after,
                    max,
                    with_owner: true,
                },
            )
            .await?;
        let truncated = page.next.is_some();
        let next_marker = if truncated { last_name(&page) } else { None };
        let (contents, prefixes) = split(page, url, owner.as_ref());
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(url, i.prefix.unwrap_or_default())),
            delimiter: i.delimiter.map(|d| enc(url, d)),
            marker: Some(enc(url, i.marker.unwrap_or_default())),
            next_marker: next_marker.map(|m| enc(url, m)),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(truncated),
            encoding_type: i.encoding_type,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            ..Default::default()
        }))
    }
}

impl S3Api {
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
        let (page, owner) = self
            .run(&rc, move |s| {
                let page = s.list_object_versions(
                    &b,
                    &VersionQuery {
                        prefix: &prefix,
                        delimiter: delim.as_deref(),
                        key_marker: km.as_deref(),
                        version_id_marker: vm.as_deref(),
                        max,
                    },
                )?;
                Ok((page, owner_dto(&bucket_owner(s, &b)?)))
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
                            owner: Some(owner.clone()),
                            version_id: Some(v.version_id),
                        });
                    } else {
                        versions.push(ObjectVersion {
                            e_tag: Some(ETag::Strong(v.manifest.etag)),
                            is_latest: Some(v.is_latest),
                            key: Some(key),
                            last_modified: Some(timestamp(v.manifest.modified_ns)),
                            owner: Some(owner.clone()),
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
