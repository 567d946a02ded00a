//! `fsctl import s3`: copies buckets from any S3 endpoint (a production MinIO is the case that
//! matters) into the fsgate fsctl is connected to: each bucket's settings, then every object
//! version of every key, oldest first, with delete markers, metadata, content headers, tags,
//! retention, legal hold and checksums.
//!
//! Resumable and idempotent without a state file: for each key, the destination's versions
//! (oldest first) must be a prefix of the source's, matched by size and ETag (by size alone
//! where the source's ETag is a multipart one); only the rest is copied. A key whose
//! destination has diverged is a mismatch, never overwritten. Each key is verified after its
//! copy by listing the destination again. Keys are copied `--parallel` at a time, each
//! version streamed from source to destination, so memory does not grow with object sizes or
//! bucket sizes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    BucketLocationConstraint, ChecksumMode, CreateBucketConfiguration, ObjectLockLegalHoldStatus,
    VersioningConfiguration,
};
use serde_json::{Value, json};

use crate::aliases::Alias;

/// What `fsctl import s3` was asked.
#[derive(clap::Args)]
pub(crate) struct ImportS3Args {
    /// The source endpoint (`https://minio.example:9000`).
    #[arg(long)]
    from: String,
    /// The source's access key.
    #[arg(long)]
    from_access_key: String,
    /// The source's secret key.
    #[arg(long, hide_env_values = true)]
    from_secret_key: String,
    /// The source's region (for its signatures).
    #[arg(long, default_value = "us-east-1")]
    from_region: String,
    /// Only these buckets (repeatable); every bucket of the source without.
    #[arg(long)]
    bucket: Vec<String>,
    /// Compare and report what would be copied; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keys copied at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Also write the closing report (the `--json` object) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Versions larger than this (MiB) are copied as multipart uploads.
    #[arg(long, default_value_t = 512, hide = true)]
    multipart_threshold_mib: u64,
    /// The part size (MiB) of those uploads (raised to keep within 10,000 parts).
    #[arg(long, default_value_t = 16, hide = true)]
    part_size_mib: u64,
}

/// How versions are written: one PUT, or parts of this many bytes above the threshold.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    multipart_over: u64,
    part: u64,
}

/// One version as listed: a delete marker or an object version.
#[derive(Debug, Clone)]
struct Listed {
    version_id: Option<String>,
    delete_marker: bool,
    size: i64,
    etag: String,
}

impl Listed {
    /// The destination's version `d` holds the source's `self`.
    fn matches(&self, d: &Listed) -> bool {
        if self.delete_marker || d.delete_marker {
            return self.delete_marker == d.delete_marker;
        }
        // A multipart ETag depends on the part sizes, which a copy need not keep; some servers
        // answer no ETag, or one unquoted.
        let (a, b) = (self.etag.trim_matches('"'), d.etag.trim_matches('"'));
        self.size == d.size && (a.is_empty() || a.contains('-') || b.contains('-') || a == b)
    }
}

/// Figures of one bucket (and, summed, of the import).
#[derive(Debug, Default)]
struct Figures {
    copied: AtomicU64,
    skipped: AtomicU64,
    verified: AtomicU64,
    bytes: AtomicU64,
    done: AtomicU64,
    mismatches: std::sync::Mutex<Vec<Value>>,
}

impl Figures {
    fn mismatch(&self, bucket: &str, key: &str, what: String) {
        self.mismatches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(json!({"bucket": bucket, "key": key, "problem": what}));
    }
}

fn http_client(
    url: &str,
    ca_bundle: Option<&PathBuf>,
) -> Result<aws_sdk_s3::config::SharedHttpClient> {
    use aws_smithy_http_client::tls;
    if url.starts_with("http://") {
        return Ok(aws_smithy_http_client::Builder::new().build_http());
    }
    let mut store = tls::TrustStore::default();
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        store = store.with_pem_certificate(pem.as_slice());
    }
    let context = tls::TlsContext::builder().with_trust_store(store).build()?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(context)
        .build_https())
}

fn s3_client(
    url: &str,
    ak: &str,
    sk: &str,
    region: &str,
    ca_bundle: Option<&PathBuf>,
) -> Result<Client> {
    let creds = aws_credential_types::Credentials::new(ak, sk, None, None, "fsctl-import");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_owned()))
        .endpoint_url(url.trim_end_matches('/'))
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(http_client(url, ca_bundle)?)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(3))
        .build();
    Ok(Client::from_conf(conf))
}

fn sdk_err<E>(what: String) -> impl FnOnce(aws_sdk_s3::error::SdkError<E>) -> anyhow::Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| anyhow!("{what}: {}", short(&e))
}

/// A call's failure in a line: the service's code and message, or what kept it from answering.
fn short<E>(e: &aws_sdk_s3::error::SdkError<E>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("")
        ),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

/// The error code of a failed call, if the service answered one.
fn code_of<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E>,
) -> String {
    e.as_service_error()
        .and_then(|s| s.code())
        .unwrap_or_default()
        .to_owned()
}

/// An S3 endpoint as the import reads it: its own signed GETs, for the listings the SDK cannot
/// keep in order.
#[derive(Clone)]
pub(crate) struct Endpoint {
    alias: Alias,
    region: String,
    http: crate::client::HttpsClient,
}

impl Endpoint {
    fn new(alias: Alias, region: &str) -> Result<Self> {
        let http = crate::client::https_client(alias.ca_bundle.as_deref())?;
        Ok(Self {
            alias,
            region: region.to_owned(),
            http,
        })
    }

    /// A signed GET: the status and the body (at most 64 MiB).
    async fn get(&self, path_and_query: &str) -> Result<(u16, String)> {
        use http_body_util::BodyExt as _;
        let url = format!("{}{path_and_query}", self.alias.url.trim_end_matches('/'));
        let mut req = http::Request::get(&url)
            .header("x-amz-content-sha256", crate::client::sha256_hex(b""))
            .body(http_body_util::Full::new(bytes::Bytes::new()))?;
        crate::client::sign_request_in(
            &self.alias,
            &self.region,
            &mut req,
            aws_sigv4::http_request::SignableBody::Bytes(b""),
        )?;
        let resp = self
            .http
            .request(req)
            .await
            .with_context(|| format!("connecting to {}", self.alias.url))?;
        let status = resp.status().as_u16();
        let body = http_body_util::Limited::new(resp.into_body(), 64 << 20)
            .collect()
            .await
            .map_err(|e| anyhow!("reading from {}: {e}", self.alias.url))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The children of `ListVersionsResult`, in the order listed: versions and delete markers
/// interleaved, as the server ordered them (the SDK separates the two kinds).
#[derive(serde::Deserialize)]
struct VersionsPage {
    #[serde(rename = "$value", default)]
    children: Vec<PageChild>,
}

#[derive(serde::Deserialize)]
enum PageChild {
    Version(PageEntry),
    DeleteMarker(PageEntry),
    IsTruncated(String),
    NextKeyMarker(String),
    NextVersionIdMarker(String),
    #[serde(other)]
    Other,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageEntry {
    key: String,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(rename = "ETag", default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    is_latest: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorDoc {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn query_enc(s: &str) -> String {
    crate::client::enc(s)
}

/// Every version of every key of a bucket, oldest first per key, from a listing that pages
/// through `ListObjectVersions` (or `ListObjectsV2` on a source without versions), handing each
/// key's versions to `each` as soon as the key is complete.
async fn each_key<F, Fut>(
    src: &Client,
    from: &Endpoint,
    bucket: &str,
    prefix: Option<&str>,
    mut each: F,
) -> Result<()>
where
    F: FnMut(String, Vec<Listed>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut markers: Option<(String, String)> = None;
    let mut pending: Option<(String, Vec<Listed>)> = None;
    loop {
        let mut q = format!("/{}?versions=", query_enc(bucket));
        if let Some(p) = prefix {
            q.push_str(&format!("&prefix={}", query_enc(p)));
        }
        if let Some((k, v)) = &markers {
            q.push_str(&format!("&key-marker={}", query_enc(k)));
            if !v.is_empty() {
                q.push_str(&format!("&version-id-marker={}", query_enc(v)));
            }
        }
        let (status, text) = from.get(&q).await?;
        if status >= 300 {
            let e: ErrorDoc = quick_xml::de::from_str(&text).unwrap_or(ErrorDoc {
                code: format!("HTTP {status}"),
                message: text.chars().take(200).collect(),
            });
            if prefix.is_none() && matches!(e.code.as_str(), "NotImplemented" | "MethodNotAllowed")
            {
                return each_key_unversioned(src, bucket, each).await;
            }
            return Err(anyhow!(
                "listing versions of {bucket} at {}: {}: {}",
                from.alias.url,
                e.code,
                e.message
            ));
        }
        let page: VersionsPage = quick_xml::de::from_str(&text).with_context(|| {
            format!("the version listing of {bucket} is not ListVersionsResult")
        })?;
        let (mut truncated, mut next_key, mut next_version) = (false, None, None);
        // (key, newest-first rank, entry): the server's order is kept within a key, except
        // that what it lists later but happened later moves up (a server whose listing
        // puts delete markers after all versions, as s3s's does, gets them back in place).
        let mut entries: Vec<(String, (i128, bool), Listed)> = Vec::new();
        for child in page.children {
            let (e, delete_marker) = match child {
                PageChild::Version(e) => (e, false),
                PageChild::DeleteMarker(e) => (e, true),
                PageChild::IsTruncated(t) => {
                    truncated = t == "true";
                    continue;
                }
                PageChild::NextKeyMarker(k) => {
                    next_key = Some(k);
                    continue;
                }
                PageChild::NextVersionIdMarker(v) => {
                    next_version = Some(v);
                    continue;
                }
                PageChild::Other => continue,
            };
            let when = e
                .last_modified
                .as_deref()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map_or(0, time::OffsetDateTime::unix_timestamp_nanos);
            let latest = e.is_latest.as_deref() == Some("true");
            let v = Listed {
                version_id: e.version_id.filter(|v| v != "null"),
                delete_marker,
                size: e.size.unwrap_or(0),
                etag: e.etag.unwrap_or_default(),
            };
            entries.push((e.key, (when, latest), v));
        }
        // By key, then newest first: later time, then the latest one; the listed order
        // otherwise (a stable sort).
        entries.sort_by(|(ka, (ta, la), _), (kb, (tb, lb), _)| {
            ka.cmp(kb).then_with(|| tb.cmp(ta)).then_with(|| lb.cmp(la))
        });
        for (key, _, v) in entries {
            match &mut pending {
                Some((k, list)) if *k == key => list.push(v),
                _ => {
                    if let Some((k, mut list)) = pending.take() {
                        list.reverse();
                        each(k, list).await?;
                    }
                    pending = Some((key, vec![v]));
                }
            }
        }
        match (truncated, next_key) {
            (true, Some(k)) => markers = Some((k, next_version.unwrap_or_default())),
            _ => break,
        }
    }
    if let Some((k, mut list)) = pending.take() {
        list.reverse();
        each(k, list).await?;
    }
    Ok(())
}

async fn each_key_unversioned<F, Fut>(src: &Client, bucket: &str, mut each: F) -> Result<()>
where
    F: FnMut(String, Vec<Listed>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut token: Option<String> = None;
    loop {
        let out = src
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(sdk_err(format!("listing {bucket}")))?;
        for o in out.contents() {
            let v = Listed {
                version_id: None,
                delete_marker: false,
                size: o.size().unwrap_or(0),
                etag: o.e_tag().unwrap_or_default().to_owned(),
            };
            each(o.key().unwrap_or_default().to_owned(), vec![v]).await?;
        }
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(());
        }
    }
}

/// The destination's versions of exactly `key`, oldest first.
async fn destination_versions(
    dst: &Client,
    to: &Endpoint,
    bucket: &str,
    key: &str,
) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    each_key(dst, to, bucket, Some(key), |k, list| {
        if k == key {
            out = list;
        }
        async { Ok(()) }
    })
    .await?;
    Ok(out)
}

/// Copies a bucket's settings, creating the bucket when it is missing. Returns what could not
/// be copied, by setting.
async fn copy_settings(
    src: &Client,
    dst: &Client,
    bucket: &str,
    dry_run: bool,
) -> Result<(bool, Vec<Value>)> {
    let mut refused = Vec::new();
    let versioning = src
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .ok()
        .and_then(|v| v.status().cloned());
    let lock = src
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
        .ok()
        .and_then(|o| o.object_lock_configuration().cloned());
    let versioned = versioning.is_some();
    if dry_run {
        return Ok((versioned, refused));
    }
    let exists = dst.head_bucket().bucket(bucket).send().await.is_ok();
    if !exists {
        let mut create = dst.create_bucket().bucket(bucket);
        if let Some(region) = src
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .ok()
            .and_then(|l| l.location_constraint().cloned())
            .filter(|c| !c.as_str().is_empty() && c.as_str() != "us-east-1")
        {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        if lock
            .as_ref()
            .is_some_and(|l| l.object_lock_enabled().is_some())
        {
            create = create.object_lock_enabled_for_bucket(true);
        }
        if let Err(e) = create.send().await {
            // A region the destination does not answer for: the bucket is made in its own.
            if code_of(&e) == "InvalidLocationConstraint"
                || code_of(&e) == "IllegalLocationConstraintException"
            {
                dst.create_bucket()
                    .bucket(bucket)
                    .set_object_lock_enabled_for_bucket(
                        lock.as_ref().map(|l| l.object_lock_enabled().is_some()),
                    )
                    .send()
                    .await
                    .map_err(sdk_err(format!("creating {bucket}")))?;
            } else {
                return Err(sdk_err(format!("creating {bucket}"))(e));
            }
        }
    }
    if let Some(status) = &versioning {
        dst.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(status.clone())
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err(format!("setting versioning of {bucket}")))?;
    }
    if let Some(l) = lock.filter(|l| l.rule().is_some())
        && let Err(e) = dst
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(l)
            .send()
            .await
    {
        refused.push(json!({"setting": "object-lock", "error": short(&e)}));
    }
    macro_rules! setting {
        ($name:literal, $get:ident, $put:ident, $arg:ident, $build:expr) => {
            if let Ok(out) = src.$get().bucket(bucket).send().await {
                let v = $build(out);
                if let Some(v) = v {
                    if let Err(e) = dst.$put().bucket(bucket).$arg(v).send().await {
                        refused.push(json!({"setting": $name, "error": short(&e)}));
                    }
                }
            }
        };
    }
    setting!("lifecycle", get_bucket_lifecycle_configuration, put_bucket_lifecycle_configuration, lifecycle_configuration,
        |o: aws_sdk_s3::operation::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput| {
            aws_sdk_s3::types::BucketLifecycleConfiguration::builder().set_rules(Some(o.rules().to_vec())).build().ok()
        });
    setting!(
        "cors",
        get_bucket_cors,
        put_bucket_cors,
        cors_configuration,
        |o: aws_sdk_s3::operation::get_bucket_cors::GetBucketCorsOutput| {
            aws_sdk_s3::types::CorsConfiguration::builder()
                .set_cors_rules(Some(o.cors_rules().to_vec()))
                .build()
                .ok()
        }
    );
    setting!(
        "tagging",
        get_bucket_tagging,
        put_bucket_tagging,
        tagging,
        |o: aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingOutput| {
            aws_sdk_s3::types::Tagging::builder()
                .set_tag_set(Some(o.tag_set().to_vec()))
                .build()
                .ok()
        }
    );
    setting!(
        "encryption",
        get_bucket_encryption,
        put_bucket_encryption,
        server_side_encryption_configuration,
        |o: aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput| {
            o.server_side_encryption_configuration().cloned()
        }
    );
    setting!(
        "policy",
        get_bucket_policy,
        put_bucket_policy,
        policy,
        |o: aws_sdk_s3::operation::get_bucket_policy::GetBucketPolicyOutput| {
            o.policy()
                .filter(|p| !p.trim().is_empty())
                .map(str::to_owned)
        }
    );
    Ok((versioned, refused))
}

/// Copies one version (or makes the delete marker) on the destination.
async fn copy_version(
    src: &Client,
    dst: &Client,
    bucket: &str,
    key: &str,
    v: &Listed,
    sizes: Sizes,
) -> Result<u64> {
    if v.delete_marker {
        dst.delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(sdk_err(format!(
                "making the delete marker of {bucket}/{key}"
            )))?;
        return Ok(0);
    }
    let got = src
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(v.version_id.clone())
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(sdk_err(format!(
            "reading {bucket}/{key} version {:?}",
            v.version_id
        )))?;
    let tags = if got.tag_count().unwrap_or(0) > 0 {
        src.get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(v.version_id.clone())
            .send()
            .await
            .map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| format!("{}={}", enc(t.key()), enc(t.value())))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .ok()
    } else {
        None
    };
    let now = DateTime::from(std::time::SystemTime::now());
    // A retention that has run out cannot be set again (AWS refuses a date in the past).
    let (lock_mode, retain_until) = match (
        got.object_lock_mode().cloned(),
        got.object_lock_retain_until_date().copied(),
    ) {
        (Some(m), Some(u)) if u.as_nanos() > now.as_nanos() => (Some(m), Some(u)),
        _ => (None, None),
    };
    let legal_hold = got
        .object_lock_legal_hold_status()
        .filter(|h| **h == ObjectLockLegalHoldStatus::On)
        .cloned();
    let size = u64::try_from(got.content_length().unwrap_or(v.size)).unwrap_or(0);
    if size > sizes.multipart_over {
        let create = dst
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_content_type(got.content_type().map(str::to_owned))
            .set_content_encoding(got.content_encoding().map(str::to_owned))
            .set_content_disposition(got.content_disposition().map(str::to_owned))
            .set_content_language(got.content_language().map(str::to_owned))
            .set_cache_control(got.cache_control().map(str::to_owned))
            .set_metadata(got.metadata().cloned())
            .set_tagging(tags)
            .set_object_lock_mode(lock_mode)
            .set_object_lock_retain_until_date(retain_until)
            .set_object_lock_legal_hold_status(legal_hold);
        return copy_in_parts(dst, bucket, key, create, got.body, size, sizes.part).await;
    }
    let mut put = dst
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_length(got.content_length().unwrap_or(v.size))
        .set_content_type(got.content_type().map(str::to_owned))
        .set_content_encoding(got.content_encoding().map(str::to_owned))
        .set_content_disposition(got.content_disposition().map(str::to_owned))
        .set_content_language(got.content_language().map(str::to_owned))
        .set_cache_control(got.cache_control().map(str::to_owned))
        .set_metadata(got.metadata().cloned())
        .set_tagging(tags)
        .set_object_lock_mode(lock_mode)
        .set_object_lock_retain_until_date(retain_until)
        .set_object_lock_legal_hold_status(legal_hold)
        .set_storage_class(None);
    #[expect(
        deprecated,
        reason = "Expires is what the source answered; the SDK keeps the raw string too"
    )]
    if let Some(e) = got.expires() {
        put = put.expires(*e);
    }
    // The source's full-object checksum travels with the bytes: the destination checks it and
    // keeps it. (A composite one, `...-N`, belongs to the source's parts.)
    let whole = |c: Option<&str>| c.filter(|c| !c.contains('-')).map(str::to_owned);
    put = put
        .set_checksum_crc32(whole(got.checksum_crc32()))
        .set_checksum_crc32_c(whole(got.checksum_crc32_c()))
        .set_checksum_crc64_nvme(whole(got.checksum_crc64_nvme()))
        .set_checksum_sha1(whole(got.checksum_sha1()))
        .set_checksum_sha256(whole(got.checksum_sha256()));
    put.body(got.body)
        .send()
        .await
        .map_err(sdk_err(format!("writing {bucket}/{key}")))?;
    Ok(size)
}

/// Streams a large version into a multipart upload, one part in memory at a time; an upload
/// that fails is aborted.
async fn copy_in_parts(
    dst: &Client,
    bucket: &str,
    key: &str,
    create: aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder,
    mut body: aws_sdk_s3::primitives::ByteStream,
    size: u64,
    part_size: u64,
) -> Result<u64> {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let part_size = part_size.max(size.div_ceil(9_000)).max(5 << 20);
    let upload = create
        .send()
        .await
        .map_err(sdk_err(format!("starting the upload of {bucket}/{key}")))?;
    let id = upload.upload_id().unwrap_or_default().to_owned();
    let result = async {
        let mut parts = Vec::new();
        let mut buf = Vec::with_capacity(usize::try_from(part_size).unwrap_or(16 << 20));
        let mut number = 1;
        loop {
            let chunk = body
                .try_next()
                .await
                .with_context(|| format!("reading {bucket}/{key} from the source"))?;
            let end = chunk.is_none();
            if let Some(c) = chunk {
                buf.extend_from_slice(&c);
            }
            while buf.len() as u64 >= part_size || (end && !buf.is_empty()) {
                let take = buf
                    .len()
                    .min(usize::try_from(part_size).unwrap_or(usize::MAX));
                let rest = buf.split_off(take);
                let part = std::mem::replace(&mut buf, rest);
                let len = part.len() as i64;
                let out = dst
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&id)
                    .part_number(number)
                    .content_length(len)
                    .body(aws_sdk_s3::primitives::ByteStream::from(part))
                    .send()
                    .await
                    .map_err(sdk_err(format!("writing part {number} of {bucket}/{key}")))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .build(),
                );
                number += 1;
            }
            if end {
                break;
            }
        }
        dst.complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err(format!("completing {bucket}/{key}")))?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        let _ = dst
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .send()
            .await;
        return Err(e);
    }
    Ok(size)
}

fn enc(s: &str) -> String {
    crate::client::enc(s)
}

/// One key: compare, copy what the destination lacks, verify.
#[expect(clippy::too_many_arguments, reason = "one key's whole context")]
async fn import_key(
    src: Client,
    dst: Client,
    to: Endpoint,
    bucket: String,
    key: String,
    source: Vec<Listed>,
    versioned: bool,
    dry_run: bool,
    sizes: Sizes,
    figures: Arc<Figures>,
) -> Result<()> {
    let have = if dry_run && dst.head_bucket().bucket(&bucket).send().await.is_err() {
        Vec::new()
    } else {
        destination_versions(&dst, &to, &bucket, &key).await?
    };
    // A bucket without versions keeps only the latest: it is what must match.
    let source: Vec<Listed> = if versioned {
        source
    } else {
        source
            .into_iter()
            .last()
            .into_iter()
            .filter(|v| !v.delete_marker)
            .collect()
    };
    let total = source.len() as u64;
    let prefix_ok =
        have.len() <= source.len() && have.iter().zip(&source).all(|(d, s)| s.matches(d));
    if !prefix_ok {
        figures.mismatch(&bucket, &key, format!("the destination holds {} version(s) that are not the source's oldest {}: left as they are", have.len(), have.len()));
        figures.done.fetch_add(total, Ordering::Relaxed);
        return Ok(());
    }
    figures
        .skipped
        .fetch_add(have.len() as u64, Ordering::Relaxed);
    figures.done.fetch_add(have.len() as u64, Ordering::Relaxed);
    if dry_run {
        figures
            .done
            .fetch_add((source.len() - have.len()) as u64, Ordering::Relaxed);
        return Ok(());
    }
    for (i, v) in source.iter().skip(have.len()).enumerate() {
        // Versions of one key land at least a millisecond apart, the resolution of S3's
        // listed times, so the destination's order can be read back without ties.
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let bytes = copy_version(&src, &dst, &bucket, &key, v, sizes).await?;
        figures.copied.fetch_add(1, Ordering::Relaxed);
        figures.bytes.fetch_add(bytes, Ordering::Relaxed);
        figures.done.fetch_add(1, Ordering::Relaxed);
    }
    let after = destination_versions(&dst, &to, &bucket, &key).await?;
    if after.len() == source.len() && after.iter().zip(&source).all(|(d, s)| s.matches(d)) {
        figures
            .verified
            .fetch_add(source.len() as u64, Ordering::Relaxed);
    } else {
        figures.mismatch(
            &bucket,
            &key,
            format!(
                "after the copy the destination holds {} version(s), the source {}, or they differ",
                after.len(),
                source.len()
            ),
        );
    }
    Ok(())
}

fn progress(figures: &Figures, total: u64, started: Instant) -> String {
    let done = figures.done.load(Ordering::Relaxed).min(total);
    let width = 30u64;
    let filled = (done * width).checked_div(total).unwrap_or(width);
    let elapsed = started.elapsed().as_secs_f64();
    let eta = if done == 0 || done >= total {
        0.0
    } else {
        elapsed * (total - done) as f64 / done as f64
    };
    format!(
        "[{}{}] {done}/{total} versions, {} MiB copied, ETA {}s",
        "#".repeat(usize::try_from(filled).unwrap_or(0)),
        ".".repeat(usize::try_from(width - filled).unwrap_or(0)),
        figures.bytes.load(Ordering::Relaxed) >> 20,
        eta.round()
    )
}

/// Runs `fsctl import s3`.
pub(crate) async fn import_s3(c: &Alias, a: ImportS3Args, json_out: bool) -> Result<()> {
    let src = s3_client(
        &a.from,
        &a.from_access_key,
        &a.from_secret_key,
        &a.from_region,
        None,
    )?;
    let dst = s3_client(
        &c.url,
        &c.access_key,
        &c.secret_key,
        "us-east-1",
        c.ca_bundle.as_ref(),
    )?;
    let from = Endpoint::new(
        Alias {
            url: a.from.clone(),
            access_key: a.from_access_key.clone(),
            secret_key: a.from_secret_key.clone(),
            ca_bundle: None,
        },
        &a.from_region,
    )?;
    let to = Endpoint::new(c.clone(), "us-east-1")?;
    let buckets: Vec<String> = if a.bucket.is_empty() {
        src.list_buckets()
            .send()
            .await
            .map_err(sdk_err(format!("listing the buckets of {}", a.from)))?
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect()
    } else {
        a.bucket.clone()
    };
    // A first pass counts the versions, for the progress bar's ETA.
    let mut total = 0u64;
    for b in &buckets {
        each_key(&src, &from, b, None, |_, list| {
            total += list.len() as u64;
            async { Ok(()) }
        })
        .await
        .with_context(|| format!("reading the source {}", a.from))?;
    }
    let figures = Arc::new(Figures::default());
    let started = Instant::now();
    let ticker = {
        let f = figures.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!("{}", progress(&f, total, started));
            }
        })
    };
    let parallel = Arc::new(tokio::sync::Semaphore::new(a.parallel.max(1)));
    let sizes = Sizes {
        multipart_over: a.multipart_threshold_mib << 20,
        part: a.part_size_mib << 20,
    };
    let mut per_bucket = Vec::new();
    let mut failure: Option<anyhow::Error> = None;
    for b in &buckets {
        let before = (
            figures.copied.load(Ordering::Relaxed),
            figures.verified.load(Ordering::Relaxed),
        );
        let (versioned, refused) = match copy_settings(&src, &dst, b, a.dry_run).await {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        // The listing hands keys over a short queue; at most `--parallel` are copied at once.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Vec<Listed>)>(a.parallel.max(1));
        let listing = {
            let tx = tx;
            let (src, from) = (&src, &from);
            async move {
                each_key(src, from, b, None, |key, list| {
                    let tx = tx.clone();
                    async move {
                        tx.send((key, list))
                            .await
                            .map_err(|_| anyhow!("the copy stopped"))
                    }
                })
                .await
                // `tx` is dropped here: the copying loop ends when the queue is drained.
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        let copying = async {
            while let Some((key, list)) = rx.recv().await {
                let permit = parallel.clone().acquire_owned().await?;
                let (src, dst, f, bucket) = (src.clone(), dst.clone(), figures.clone(), b.clone());
                let to = to.clone();
                let dry = a.dry_run;
                tasks.spawn(async move {
                    let r =
                        import_key(src, dst, to, bucket, key, list, versioned, dry, sizes, f).await;
                    drop(permit);
                    r
                });
            }
            Ok::<(), anyhow::Error>(())
        };
        let (listing, copying) = tokio::join!(listing, copying);
        let listing = listing.and(copying);
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r.map_err(anyhow::Error::from).and_then(|r| r) {
                failure.get_or_insert(e);
            }
        }
        if let Err(e) = listing {
            failure.get_or_insert(e);
        }
        per_bucket.push(json!({
            "bucket": b,
            "versions_copied": figures.copied.load(Ordering::Relaxed) - before.0,
            "versions_verified": figures.verified.load(Ordering::Relaxed) - before.1,
            "settings_not_copied": refused,
        }));
        if failure.is_some() {
            break;
        }
    }
    ticker.abort();
    let mismatches = figures
        .mismatches
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let report = json!({
        "from": a.from,
        "dry_run": a.dry_run,
        "buckets": buckets.len(),
        "versions_total": total,
        "versions_copied": figures.copied.load(Ordering::Relaxed),
        "versions_skipped": figures.skipped.load(Ordering::Relaxed),
        "versions_verified": figures.verified.load(Ordering::Relaxed),
        "bytes_copied": figures.bytes.load(Ordering::Relaxed),
        "mismatches": mismatches.len(),
        "mismatched": mismatches,
        "per_bucket": per_bucket,
        "seconds": started.elapsed().as_secs_f64(),
        "error": failure.as_ref().map(|e| format!("{e:#}")),
    });
    if let Some(path) = &a.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("{}", progress(&figures, total, started));
    if json_out {
        println!("{report}");
    } else {
        println!(
            "{} bucket(s): {} version(s) copied, {} already there, {} verified, {} mismatch(es)",
            buckets.len(),
            figures.copied.load(Ordering::Relaxed),
            figures.skipped.load(Ordering::Relaxed),
            figures.verified.load(Ordering::Relaxed),
            mismatches.len()
        );
        for m in &mismatches {
            let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            println!(
                "mismatch: {}/{}: {}",
                field("bucket"),
                field("key"),
                field("problem")
            );
        }
    }
    if let Some(e) = failure {
        return Err(e.context(format!(
            "the import from {} into {} stopped; run it again to resume",
            a.from, c.url
        )));
    }
    if !mismatches.is_empty() {
        return Err(anyhow!(
            "{} mismatch(es) between source and destination",
            mismatches.len()
        ));
    }
    Ok(())
}
