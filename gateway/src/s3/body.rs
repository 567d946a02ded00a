//! Moving object bytes: request bodies into staged blobs (hashing as they pass), and blob
//! ranges into response bodies. Neither holds more than a few MiB of an object in memory.

use std::io::Read as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, StreamingBlob};
use s3s::{S3Result, s3_error};

use fsgate_store::blob::{StagedBlob, read_full};
use fsgate_store::model::Extent;
use fsgate_store::{PinnedObject, Store};

use crate::context::RequestCtx;
use crate::error;
use crate::s3::sse::{DataKey, Encryptor, decrypt_range};
use crate::s3::zero_copy::ZeroCopy;

/// Bytes handed to the blob writer at a time. Small enough that the receive buffers holding
/// them are freed, and reused while still mapped, before the allocator hands their pages back
/// to the kernel (with 1 MiB batches, receiving into fresh pages cost 7–14 % of a large upload).
const WRITE_CHUNK: usize = 256 << 10;
/// Bytes read from a blob at a time.
const READ_CHUNK: usize = 1 << 20;

/// Read buffers kept for reuse (at most this many, `READ_CHUNK` each).
const KEPT_READ_BUFFERS: usize = 24;
static READ_BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// A chunk of blob bytes on its way to the client. When the response body is done with it,
/// its memory goes back to `READ_BUFFERS` rather than to the allocator: a download reuses warm,
/// mapped buffers instead of faulting in fresh pages for every MiB it sends.
struct ReadBuffer(Vec<u8>);

impl ReadBuffer {
    fn take() -> Self {
        let kept = READ_BUFFERS.lock().ok().and_then(|mut kept| kept.pop());
        Self(kept.unwrap_or_else(|| Vec::with_capacity(READ_CHUNK)))
    }
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        if buf.capacity() == READ_CHUNK
            && let Ok(mut kept) = READ_BUFFERS.lock()
            && kept.len() < KEPT_READ_BUFFERS
        {
            buf.clear();
            kept.push(buf);
        }
    }
}

/// What a staged upload was, before encryption: its length and MD5 (only when encrypted; a
/// plain upload's are the staged blob's own).
pub type Plaintext = Option<(u64, [u8; 16])>;

/// Reads a request body into a staged (synced, unpublished) blob, computing the requested
/// checksums on the way (over the plaintext; with `enc` the blob holds ciphertext). A body
/// shorter than `expected_len`, or one whose stream fails (bad chunk signature, SHA-256
/// mismatch), stages nothing.
pub async fn stage(
    store: &Arc<Store>,
    rc: &RequestCtx,
    body: Option<StreamingBlob>,
    mut hasher: ChecksumHasher,
    expected_len: Option<u64>,
    mut enc: Option<Encryptor>,
) -> S3Result<(StagedBlob, Checksum, Plaintext)> {
    use md5::Digest as _;
    let s = store.clone();
    let mut sink = blocking(rc, move || s.blobs().stage()).await?;
    // The body's pieces go to the writer thread as they came, `WRITE_CHUNK` at a time, and
    // the list comes back for the next batch: no byte is copied into a buffer of ours.
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut pending = 0usize;
    let mut total: u64 = 0;
    let mut plain_md5 = enc.as_ref().map(|_| md5::Md5::new());
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| error::body_error(&e))?;
            hasher.update(&chunk);
            total += chunk.len() as u64;
            let piece = match (&mut enc, &mut plain_md5) {
                (Some(e), Some(m)) => {
                    m.update(&chunk);
                    Bytes::from(e.push(&chunk))
                }
                _ => chunk,
            };
            pending += piece.len();
            pieces.push(piece);
            if pending >= WRITE_CHUNK {
                let batch = std::mem::take(&mut pieces);
                let (back, mut batch) = blocking(rc, move || {
                    sink.write_pieces(&batch).map(|()| (sink, batch))
                })
                .await?;
                sink = back;
                batch.clear();
                pieces = batch;
                pending = 0;
            }
        }
    }
    if let Some(exp) = expected_len
        && exp != total
    {
        return Err(s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        ));
    }
    if let Some(e) = enc {
        pieces.push(Bytes::from(e.finish()));
    }
    let staged = blocking(rc, move || {
        sink.write_pieces(&pieces)?;
        sink.finish()
    })
    .await?;
    rc.fields().object_bytes_in = Some(total);
    let plaintext = plain_md5.map(|m| (total, m.finalize().into()));
    Ok((staged, hasher.finalize(), plaintext))
}

async fn blocking<T, F>(rc: &RequestCtx, f: F) -> S3Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> fsgate_store::StoreResult<T> + Send + 'static,
{
    let span = tracing::info_span!("store");
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error::store_error(e, &rc.request_id)),
        Err(e) => Err(error::internal(&e, &rc.request_id)),
    }
}

struct ChannelStream(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Stream for ChannelStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Reads a small request body (at most `len` bytes, the declared length) into memory,
/// computing its MD5 and the requested checksums: the inline-object path.
pub async fn collect_small(
    body: Option<StreamingBlob>,
    mut hasher: ChecksumHasher,
    len: u64,
) -> S3Result<(Vec<u8>, [u8; 16], Checksum)> {
    use md5::Digest as _;
    let cap = usize::try_from(len).unwrap_or(0);
    let mut data = Vec::with_capacity(cap);
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| error::body_error(&e))?;
            if data.len() + chunk.len() > cap {
                return Err(s3_error!(
                    IncompleteBody,
                    "The body is longer than the Content-Length HTTP header says."
                ));
            }
            hasher.update(&chunk);
            data.extend_from_slice(&chunk);
        }
    }
    if data.len() != cap {
        return Err(s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        ));
    }
    let md5: [u8; 16] = md5::Md5::digest(&data).into();
    Ok((data, md5, hasher.finalize()))
}

/// Streams `len` plaintext bytes of an encrypted object starting at `start`, decrypting the
/// chunks that cover them.
fn stream_decrypted(object: PinnedObject, start: u64, len: u64, key: DataKey) -> StreamingBlob {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let send = |r: std::io::Result<Vec<u8>>| tx.blocking_send(r.map(Bytes::from)).is_ok();
        let multipart = object.manifest.parts_count > 0;
        let result = (|| -> std::io::Result<()> {
            if let Some(data) = &object.inline {
                let size = object.manifest.size;
                return decrypt_range(
                    &key,
                    0,
                    size,
                    start,
                    len,
                    &mut |off, n| {
                        let from = usize::try_from(off).unwrap_or(usize::MAX).min(data.len());
                        let to = from.saturating_add(n).min(data.len());
                        Ok(data.get(from..to).unwrap_or_default().to_vec())
                    },
                    &mut |b| send(Ok(b)),
                );
            }
            let (mut skip, mut left) = (start, len);
            for (i, e) in object.manifest.extents.iter().enumerate() {
                if left == 0 {
                    break;
                }
                if skip >= e.len {
                    skip -= e.len;
                    continue;
                }
                let part = if multipart {
                    u32::try_from(i + 1).unwrap_or(u32::MAX)
                } else {
                    0
                };
                let here = (e.len - skip).min(left);
                let mut read = |off: u64, n: usize| -> std::io::Result<Vec<u8>> {
                    let mut r = object.blob_reader(&e.blob, off)?;
                    let mut buf = vec![0u8; n];
                    let got = read_full(&mut r, &mut buf)?;
                    buf.truncate(got);
                    Ok(buf)
                };
                let mut gone = false;
                decrypt_range(&key, part, e.len, skip, here, &mut read, &mut |b| {
                    gone = !send(Ok(b));
                    !gone
                })?;
                if gone {
                    return Ok(());
                }
                skip = 0;
                left -= here;
            }
            Ok(())
        })();
        if let Err(err) = result {
            tracing::error!(error = %err, "encrypted read failed");
            let _ = send(Err(err));
        }
    });
    StreamingBlob::wrap(ChannelStream(rx))
}

/// Streams `len` bytes of an object's content starting at `start` (decrypted with `key` when
/// the object is encrypted). A plain blob-backed object on a connection with `zero_copy` goes
/// out with `sendfile`; otherwise a blocking reader fills a small bounded channel, and stops
/// as soon as the client goes away.
#[must_use]
pub fn stream_range(
    object: PinnedObject,
    start: u64,
    len: u64,
    key: Option<DataKey>,
    zero_copy: Option<&ZeroCopy>,
) -> StreamingBlob {
    if let Some(key) = key {
        return stream_decrypted(object, start, len, key);
    }
    if object.inline.is_none()
        && let Some(zc) = zero_copy
    {
        return StreamingBlob::wrap(zc.body(object, start, len));
    }
    if let Some(data) = &object.inline {
        let from = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
        let to = usize::try_from(start + len)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let chunk = Bytes::copy_from_slice(data.get(from..to).unwrap_or_default());
        return StreamingBlob::wrap(futures::stream::once(async move {
            Ok::<_, std::io::Error>(chunk)
        }));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let span = tracing::info_span!("store_read");
    tokio::task::spawn_blocking(move || {
        let _read = span.entered();
        // `object` keeps the blobs pinned until the last byte is read or the client leaves.
        let extents: Vec<Extent> = object.manifest.extents.clone();
        let mut skip = start;
        let mut left = len;
        for e in extents {
            if left == 0 {
                break;
            }
            if skip >= e.len {
                skip -= e.len;
                continue;
            }
            // Every chunk it returns is checked against the blob's sums (`integrity.rs`).
            let mut reader = match object.blob_reader(&e.blob, skip) {
                Ok(r) => r,
                Err(err) => {
                    tracing::error!(error = %err, "blob read failed");
                    let _ = tx.blocking_send(Err(err));
                    return;
                }
            };
            let mut in_extent = (e.len - skip).min(left);
            skip = 0;
            while in_extent > 0 {
                let n = usize::try_from(in_extent.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
                // Read into spare capacity: the chunk is not zeroed first only to be overwritten.
                let mut buf = ReadBuffer::take();
                match (&mut reader).take(n as u64).read_to_end(&mut buf.0) {
                    Ok(got) if got == n => {}
                    Ok(_) => {
                        let _ = tx.blocking_send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "blob shorter than its manifest",
                        )));
                        return;
                    }
                    Err(err) => {
                        let _ = tx.blocking_send(Err(err));
                        return;
                    }
                }
                if tx.blocking_send(Ok(Bytes::from_owner(buf))).is_err() {
                    return; // the client went away
                }
                in_extent -= n as u64;
                left -= n as u64;
            }
        }
    });
    StreamingBlob::wrap(ChannelStream(rx))
}
