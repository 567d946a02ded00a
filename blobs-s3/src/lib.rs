//! `S3BlobStore`: fsgate's content-addressed blobs in a bucket of any S3-compatible store
//! (Ceph RGW, Garage, SeaweedFS, AWS S3, another fsgate), behind the store's [`BlobStore`]
//! seam: `fsgate serve --blobs 's3://BUCKET/PREFIX?endpoint=URL&region=R'` (issue 25).
//!
//! This crate owns the S3 client side of the seam; the store owns what a blob is and when it
//! may be removed, and knows nothing of HTTP (a dependency rule `.ci/run` checks).
//!
//! - **Layout**: `PREFIX/blobs/ab/abcdef…` (the hex SHA-256 of the content, as on disk) and
//!   `PREFIX/quarantine/abcdef…` for blobs whose bytes were found wrong.
//! - **Writes**: a blob is spooled to a local file under the data directory while its digests
//!   are computed, then published: one `PutObject` with `Content-MD5` up to
//!   [`SINGLE_PUT_MAX`], a multipart upload of [`PART_SIZE`] parts above (aborted if it
//!   fails). Content already there (a `HEAD` finds it, whole) is not sent again. The store
//!   commits metadata naming a blob only after publishing returns, so an acknowledged object's
//!   bytes are in the bucket.
//! - **Reads**: a ranged `GetObject` from the offset asked, streamed through a small bounded
//!   channel; the store checks every chunk's CRC as it reads (bitrot, or a bucket edited
//!   behind fsgate's back, ends the response: never wrong bytes).
//! - **Bounded**: at most [`MAX_IN_FLIGHT`] requests at a time (a stream holds its slot until
//!   it is read or dropped), a connect timeout, a read timeout between bytes, and the SDK's
//!   standard retries. A store that cannot be reached is [`StoreError::Unavailable`]: the
//!   gateway answers 503 and nothing is committed.
//! - **Every call blocks**, from any thread: the client runs on a small runtime of its own.
//! - **Metrics**: `fsgate_blobs_s3_seconds{op}` (each request) and
//!   `fsgate_blobs_s3_errors_total{op}`.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use bytes::Bytes;
use fsgate_store::blob::{BlobId, BlobSink, BlobStore, ChunkSummer, StagedBlob};
use fsgate_store::{StoreError, StoreResult};
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Blobs up to this size go up in one `PutObject`; larger ones as a multipart upload.
pub const SINGLE_PUT_MAX: u64 = 16 << 20;

/// Part size of a multipart upload (S3 allows 10,000 parts: blobs up to 160 GiB).
pub const PART_SIZE: u64 = 16 << 20;

/// Requests in flight at once (and so connections to the store).
pub const MAX_IN_FLIGHT: usize = 64;

/// How long the store may take to accept a connection, and to send the next bytes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Chunks of a read buffered between the client and the reader.
const READ_AHEAD: usize = 4;

/// How old an unfinished multipart upload must be for `collect_staged` to abort it (a
/// crashed gateway's; a live one finishes or aborts its own within this).
const STALE_UPLOAD: Duration = Duration::from_secs(3600);

/// How long a listing's sum of blob sizes serves `physical_bytes` (with this gateway's
/// uploads added meanwhile).
const PHYSICAL_REFRESH: Duration = Duration::from_secs(300);

/// Where the blobs go: `s3://BUCKET[/PREFIX][?endpoint=URL&region=R]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket (it must exist).
    pub bucket: String,
    /// The key prefix, without slashes at either end ("" for the bucket's root).
    pub prefix: String,
    /// The store's endpoint (`http://host:port`); `None`: AWS S3 itself.
    pub endpoint: Option<String>,
    /// The region requests are signed for (`us-east-1` unless given).
    pub region: String,
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=R]` (values percent-encoded).
    pub fn parse(url: &str) -> StoreResult<Self> {
        let bad = |why: &str| StoreError::InvalidRequest(format!("--blobs {url}: {why}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL (s3://BUCKET/PREFIX?endpoint=URL)"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let mut location = Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint: None,
            region: "us-east-1".to_owned(),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| bad("a parameter is not UTF-8"))?
                .into_owned();
            match name {
                "endpoint" => location.endpoint = Some(value.trim_end_matches('/').to_owned()),
                "region" if !value.is_empty() => location.region = value,
                _ => {
                    return Err(bad(&format!(
                        "unknown parameter '{name}' (endpoint, region)"
                    )));
                }
            }
        }
        Ok(location)
    }
}

/// The access key the gateway signs its requests to the store with.
#[derive(Clone)]
pub struct S3Credentials {
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Blobs in a bucket of an S3-compatible store.
pub struct S3BlobStore {
    /// Drives the client; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    bucket: String,
    /// `PREFIX/`, or "" at the bucket's root.
    root: String,
    /// Local spool files of blobs being written.
    staging: PathBuf,
    slots: Arc<Semaphore>,
    /// Bytes of blobs, as of the last listing plus this gateway's uploads since.
    physical: AtomicU64,
    /// When that listing was (`None`: never).
    listed: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        // Without waiting: the store may be dropped on an async worker.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A request's failure as the store sees it: the store could not be reached or refused
/// (`Unavailable`: the request may succeed later; nothing was committed).
fn unavailable<E, R>(op: &str, key: &str, e: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!(
        "blob store: {op} {key}: {}",
        DisplayErrorContext(e)
    ))
}

/// True when the store answered that the object does not exist.
fn not_found<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e {
        SdkError::ServiceError(s) => {
            s.raw().status().as_u16() == 404
                || matches!(s.err().code(), Some("NoSuchKey" | "NotFound"))
        }
        _ => false,
    }
}

/// Records a request's time and failure (`fsgate_blobs_s3_*`).
fn observe<T>(op: &'static str, started: Instant, result: &StoreResult<T>) {
    metrics::histogram!("fsgate_blobs_s3_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!("fsgate_blobs_s3_errors_total", "op" => op).increment(1);
    }
}

impl S3BlobStore {
    /// Connects to the bucket at `location` with `credentials` (checking that it can be
    /// listed), spooling blobs being written under `staging` (created if needed).
    pub fn open(
        location: &S3Location,
        credentials: &S3Credentials,
        staging: &Path,
    ) -> StoreResult<Self> {
        std::fs::create_dir_all(staging)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fsgate-blobs-s3")
            .enable_all()
            .build()?;
        let http = match location.endpoint.as_deref() {
            Some(e) if e.starts_with("http://") => {
                aws_smithy_http_client::Builder::new().build_http()
            }
            _ => {
                use aws_smithy_http_client::tls;
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https()
            }
        };
        let creds = aws_credential_types::Credentials::new(
            &credentials.access_key,
            &credentials.secret_key,
            None,
            None,
            "fsgate-blobs",
        );
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(location.region.clone()))
            .credentials_provider(creds)
            .force_path_style(true)
            .http_client(http)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &location.endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        let store = Self {
            runtime: Some(runtime),
            client: Client::from_conf(conf.build()),
            bucket: location.bucket.clone(),
            root: if location.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", location.prefix)
            },
            staging: staging.to_path_buf(),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            physical: AtomicU64::new(0),
            listed: std::sync::Mutex::new(None),
        };
        // Reachable, the bucket there and readable with these keys: or say so now.
        let (client, bucket, prefix) = store.parts();
        let started = Instant::now();
        let checked = store.run(async move {
            client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(prefix)
                .max_keys(1)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| unavailable("ListObjectsV2", &bucket, &e))
        });
        let checked = checked.and_then(|r| r);
        observe("list", started, &checked);
        checked?;
        Ok(store)
    }

    fn parts(&self) -> (Client, String, String) {
        (self.client.clone(), self.bucket.clone(), self.root.clone())
    }

    /// Runs `fut` on the client's runtime and waits for it (from any thread).
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> StoreResult<T> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("blob store: closing".into()))?;
        futures::executor::block_on(rt.spawn(fut))
            .map_err(|e| StoreError::Unavailable(format!("blob store: {e}")))
    }

    fn blob_key(&self, id: &BlobId) -> String {
        let hex = id.to_hex();
        format!(
            "{}blobs/{}/{hex}",
            self.root,
            hex.get(..2).unwrap_or_default()
        )
    }

    fn quarantine_key(&self, id: &BlobId) -> String {
        format!("{}quarantine/{}", self.root, id.to_hex())
    }

    /// Every key under `prefix` with its size, page by page.
    fn list_prefix(&self, prefix: String, op: &'static str) -> StoreResult<Vec<(String, u64)>> {
        let (client, bucket, _) = self.parts();
        let started = Instant::now();
        let listed = self
            .run(async move {
                let mut out = Vec::new();
                let mut pages = client
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| unavailable("ListObjectsV2", &prefix, &e))?;
                    for o in page.contents() {
                        if let Some(k) = o.key() {
                            let size = o.size().and_then(|s| u64::try_from(s).ok());
                            out.push((k.to_owned(), size.unwrap_or(0)));
                        }
                    }
                }
                Ok(out)
            })
            .and_then(|r| r);
        observe(op, started, &listed);
        listed
    }

    /// The blob ids named by the keys under `prefix` (others are not fsgate's: left alone).
    fn ids_under(&self, prefix: String, op: &'static str) -> StoreResult<Vec<BlobId>> {
        Ok(self
            .list_prefix(prefix, op)?
            .into_iter()
            .filter_map(|(k, _)| BlobId::from_hex(k.rsplit('/').next()?))
            .collect())
    }
}

/// A spooled blob's local file, removed when dropped (published or not).
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What this backend keeps of a staged blob: its spool file.
struct Spooled(Spool);

struct S3Sink {
    file: BufWriter<std::fs::File>,
    spool: Spool,
    sha: Sha256,
    md5: Md5,
    sums: ChunkSummer,
    len: u64,
}

impl BlobSink for S3Sink {
    fn write(&mut self, data: &[u8]) -> StoreResult<()> {
        self.sha.update(data);
        self.md5.update(data);
        self.sums.update(data);
        self.file.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// The spool is not synced: the bytes become durable in the store they are uploaded to,
    /// and a crash before that loses only an upload nobody was told had succeeded.
    fn finish(self: Box<Self>) -> StoreResult<StagedBlob> {
        let Self {
            file,
            spool,
            sha,
            md5,
            sums,
            len,
        } = *self;
        file.into_inner().map_err(|e| e.into_error())?;
        Ok(StagedBlob::new(
            BlobId(sha.finalize().into()),
            md5.finalize().into(),
            len,
            sums.finish(),
            Box::new(Spooled(spool)),
        ))
    }
}

/// Uploads the file at `path` (`len` bytes) as `key`: one PUT or a multipart upload.
async fn upload(
    client: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    len: u64,
    md5: &[u8; 16],
) -> StoreResult<()> {
    let io = |e: aws_sdk_s3::primitives::ByteStreamError| {
        StoreError::Io(std::io::Error::other(format!("spooled blob: {e}")))
    };
    if len <= SINGLE_PUT_MAX {
        let body = ByteStream::read_from()
            .path(path)
            .build()
            .await
            .map_err(io)?;
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
            .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable("PutObject", key, &e))?;
        return Ok(());
    }
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| unavailable("CreateMultipartUpload", key, &e))?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| StoreError::Unavailable(format!("blob store: no upload id for {key}")))?
        .to_owned();
    let parts = async {
        let mut parts = Vec::new();
        let (mut offset, mut number) = (0u64, 1i32);
        while offset < len {
            let n = (len - offset).min(PART_SIZE);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(n))
                .build()
                .await
                .map_err(io)?;
            let part = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(number)
                .content_length(i64::try_from(n).unwrap_or(i64::MAX))
                .body(body)
                .send()
                .await
                .map_err(|e| unavailable("UploadPart", key, &e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .build(),
            );
            offset += n;
            number += 1;
        }
        client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| unavailable("CompleteMultipartUpload", key, &e))?;
        Ok::<_, StoreError>(())
    }
    .await;
    if parts.is_err() {
        // Best effort: `collect_staged` aborts what is left at the next start.
        let _ = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    parts
}

/// A blob's bytes as they arrive from the store.
struct BodyReader {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match futures::executor::block_on(self.chunks.recv()) {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        match buf.get_mut(..n) {
            Some(dst) => dst.copy_from_slice(&chunk),
            None => return Err(std::io::Error::other("read buffer shorter than its length")),
        }
        Ok(n)
    }
}

/// Streams `body` into `chunks` until it ends, fails, or the reader goes away; holds `slot`
/// meanwhile.
async fn pump(
    mut body: ByteStream,
    chunks: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    slot: OwnedSemaphorePermit,
) {
    loop {
        let next = match body.try_next().await {
            Ok(Some(b)) => Ok(b),
            Ok(None) => break,
            Err(e) => Err(std::io::Error::other(format!("blob store: reading: {e}"))),
        };
        let failed = next.is_err();
        if chunks.send(next).await.is_err() || failed {
            break;
        }
    }
    drop(slot);
}

impl BlobStore for S3BlobStore {
    fn stage(&self) -> StoreResult<Box<dyn BlobSink>> {
        let path = self
            .staging
            .join(format!("{:016x}.spool", rand::random::<u64>()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Box::new(S3Sink {
            file: BufWriter::with_capacity(256 << 10, file),
            spool: Spool(path),
            sha: Sha256::new(),
            md5: Md5::new(),
            sums: ChunkSummer::default(),
            len: 0,
        }))
    }

    fn publish(&self, staged: &mut StagedBlob) -> StoreResult<()> {
        let Some(spooled) = staged.take_data::<Spooled>()? else {
            return Ok(());
        };
        let key = self.blob_key(&staged.id);
        let (client, bucket, _) = self.parts();
        let slots = Arc::clone(&self.slots);
        let (len, md5, path) = (staged.len, staged.md5, spooled.0.0.clone());
        let started = Instant::now();
        let uploaded = self
            .run(async move {
                let _slot = slots
                    .acquire_owned()
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("blob store: {e}")))?;
                match client.head_object().bucket(&bucket).key(&key).send().await {
                    // Content-addressed: the same name, whole, is the same bytes.
                    Ok(h)
                        if h.content_length().and_then(|l| u64::try_from(l).ok()) == Some(len) =>
                    {
                        return Ok(false);
                    }
                    Ok(_) => {}
                    Err(e) if not_found(&e) => {}
                    Err(e) => return Err(unavailable("HeadObject", &key, &e)),
                }
                upload(&client, &bucket, &key, &path, len, &md5).await?;
                Ok(true)
            })
            .and_then(|r| r);
        observe("publish", started, &uploaded);
        drop(spooled);
        if uploaded? {
            self.physical.fetch_add(len, Ordering::Relaxed);
        }
        Ok(())
    }

    fn open(&self, id: &BlobId, offset: u64) -> StoreResult<Box<dyn Read + Send>> {
        let key = self.blob_key(id);
        let (client, bucket, _) = self.parts();
        let slots = Arc::clone(&self.slots);
        let missing = StoreError::Corrupt {
            what: "blob",
            detail: format!(
                "{} is referenced but missing from the blob store",
                id.to_hex()
            ),
        };
        let started = Instant::now();
        let response = self
            .run(async move {
                let slot = slots
                    .acquire_owned()
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("blob store: {e}")))?;
                let mut get = client.get_object().bucket(&bucket).key(&key);
                if offset > 0 {
                    get = get.range(format!("bytes={offset}-"));
                }
                match get.send().await {
                    Ok(out) => Ok(Some((out.body, slot))),
                    Err(e) if not_found(&e) => Ok(None),
                    // Reading from the end: nothing left to read.
                    Err(SdkError::ServiceError(s)) if s.raw().status().as_u16() == 416 => {
                        Ok(Some((ByteStream::from(Bytes::new()), slot)))
                    }
                    Err(e) => Err(unavailable("GetObject", &key, &e)),
                }
            })
            .and_then(|r| r);
        observe("get", started, &response);
        let (body, slot) = response?.ok_or(missing)?;
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("blob store: closing".into()))?;
        rt.spawn(pump(body, tx, slot));
        Ok(Box::new(BodyReader {
            chunks: rx,
            current: Bytes::new(),
        }))
    }

    fn remove(&self, id: &BlobId) -> StoreResult<()> {
        let key = self.blob_key(id);
        let (client, bucket, _) = self.parts();
        let started = Instant::now();
        let removed = self
            .run(async move {
                match client
                    .delete_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if not_found(&e) => Ok(()),
                    Err(e) => Err(unavailable("DeleteObject", &key, &e)),
                }
            })
            .and_then(|r| r);
        observe("remove", started, &removed);
        removed
    }

    fn quarantine(&self, id: &BlobId) -> StoreResult<()> {
        let (key, to) = (self.blob_key(id), self.quarantine_key(id));
        let (client, bucket, _) = self.parts();
        let started = Instant::now();
        let moved = self
            .run(async move {
                let source = format!(
                    "{bucket}/{}",
                    percent_encoding::utf8_percent_encode(&key, COPY_SOURCE)
                );
                match client
                    .copy_object()
                    .bucket(&bucket)
                    .key(&to)
                    .copy_source(source)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) if not_found(&e) => return Ok(()),
                    Err(e) => return Err(unavailable("CopyObject", &key, &e)),
                }
                client
                    .delete_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable("DeleteObject", &key, &e))
            })
            .and_then(|r| r);
        observe("quarantine", started, &moved);
        moved
    }

    fn quarantined(&self) -> StoreResult<Vec<BlobId>> {
        self.ids_under(format!("{}quarantine/", self.root), "list")
    }

    fn list(&self) -> StoreResult<Vec<BlobId>> {
        self.ids_under(format!("{}blobs/", self.root), "list")
    }

    /// Removes local spool files a crash left, and aborts multipart uploads under the prefix
    /// older than an hour (a crashed gateway's).
    fn collect_staged(&self) -> StoreResult<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.staging)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "spool") {
                std::fs::remove_file(&path)?;
                removed += 1;
            }
        }
        let (client, bucket, prefix) = self.parts();
        let started = Instant::now();
        let aborted = self
            .run(async move {
                let listed = client
                    .list_multipart_uploads()
                    .bucket(&bucket)
                    .prefix(&prefix)
                    .send()
                    .await
                    .map_err(|e| unavailable("ListMultipartUploads", &bucket, &e))?;
                let mut aborted = 0;
                let now = SystemTime::now();
                for u in listed.uploads() {
                    let stale = u
                        .initiated()
                        .and_then(|t| SystemTime::try_from(*t).ok())
                        .and_then(|t| now.duration_since(t).ok())
                        .is_some_and(|age| age > STALE_UPLOAD);
                    if let (true, Some(key), Some(id)) = (stale, u.key(), u.upload_id())
                        && client
                            .abort_multipart_upload()
                            .bucket(&bucket)
                            .key(key)
                            .upload_id(id)
                            .send()
                            .await
                            .is_ok()
                    {
                        aborted += 1;
                    }
                }
                Ok::<usize, StoreError>(aborted)
            })
            .and_then(|r| r);
        observe("collect", started, &aborted);
        Ok(removed + aborted?)
    }

    /// Approximate: a listing's sum, at most every five minutes, plus what this gateway
    /// uploaded since (what it removed since is not subtracted).
    fn physical_bytes(&self) -> StoreResult<u64> {
        let mut listed = self
            .listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listed.is_none_or(|t| t.elapsed() > PHYSICAL_REFRESH) {
            let sizes = self.list_prefix(format!("{}blobs/", self.root), "list")?;
            self.physical
                .store(sizes.iter().map(|(_, s)| s).sum(), Ordering::Relaxed);
            *listed = Some(Instant::now());
        }
        Ok(self.physical.load(Ordering::Relaxed))
    }
}

/// What `CopyObject`'s source keeps unencoded: the key's separators and unreserved bytes.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_their_defaults() {
        let l = S3Location::parse("s3://b/some/prefix/?endpoint=http%3A%2F%2F127.0.0.1%3A9000/")
            .unwrap();
        assert_eq!(l.bucket, "b");
        assert_eq!(l.prefix, "some/prefix");
        assert_eq!(l.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(l.region, "us-east-1");
        let l = S3Location::parse("s3://b?region=eu-west-1&endpoint=https://s3.example").unwrap();
        assert_eq!((l.prefix.as_str(), l.region.as_str()), ("", "eu-west-1"));
        assert_eq!(l.endpoint.as_deref(), Some("https://s3.example"));
        for bad in ["http://b/p", "s3://", "s3:///p", "s3://b?bucket=x"] {
            assert!(
                matches!(S3Location::parse(bad), Err(StoreError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }
}
