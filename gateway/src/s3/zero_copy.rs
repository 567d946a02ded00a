//! Zero-copy downloads over plain TCP: an object's bytes go from the page cache to the socket
//! with `sendfile(2)` and never pass through user space.
//!
//! hyper writes every body byte itself and has no hook for file-backed bodies, so a download's
//! body stands in for the file bytes with *placeholder* chunks: slices of one static buffer that
//! nothing ever reads. For each chunk it yields, the body first queues the file region the
//! chunk stands for on the connection's [`ZeroCopy`]. hyper hands body chunks to a vectored
//! writer as separate buffers, untouched; [`SendfileIo`], the connection's writer, recognises a
//! placeholder by its address and sends the same number of bytes from the queued region
//! instead. The sending runs on a blocking thread, so a page cache miss stalls one download,
//! not the runtime.
//!
//! What keeps it correct:
//! - a placeholder with no queued region behind it fails the connection: the client never
//!   receives the placeholder's bytes;
//! - hyper serves one request at a time per HTTP/1 connection, and the queue is emptied when
//!   each request arrives, so a region left by an abandoned body cannot be sent for the next;
//! - a region keeps its object pinned (garbage collection leaves its blobs alone) until sent.
//!
//! TLS connections, encrypted objects and inline objects take the ordinary path
//! (`body::stream_range` reading into buffers).

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use fsgate_store::PinnedObject;
use fsgate_store::blob::BlobId;

/// Longest placeholder chunk (and so the most one `sendfile` job sends).
const PLACEHOLDER_LEN: usize = 4 << 20;
/// The placeholder bytes. Never read (so never faulted in): only their address matters.
static PLACEHOLDER: LazyLock<Box<[u8]>> =
    LazyLock::new(|| vec![0; PLACEHOLDER_LEN].into_boxed_slice());
/// A client that takes no bytes for this long fails its download.
const WRITE_STALL: Duration = Duration::from_secs(120);

fn is_placeholder(buf: &[u8]) -> bool {
    let base = PLACEHOLDER.as_ptr() as usize;
    let at = buf.as_ptr() as usize;
    !buf.is_empty() && at >= base && at + buf.len() <= base + PLACEHOLDER_LEN
}

/// A file region a placeholder chunk stands for.
struct Region {
    /// Keeps the object's blobs pinned until the region is sent.
    object: Arc<PinnedObject>,
    blob: BlobId,
    offset: u64,
    len: u64,
}

struct Shared {
    regions: Mutex<VecDeque<Region>>,
    /// The connection's socket (a duplicate descriptor, for the blocking sender).
    socket: OwnedFd,
    /// Set when the connection's writer is dropped: a sender still running stops.
    closed: AtomicBool,
    /// Where the bytes of a region are read to be checked before they are sent (one sender
    /// runs at a time per connection; 320 KiB once the connection has sent a checked blob).
    scratch: Mutex<Vec<u8>>,
}

/// One plain-TCP connection's zero-copy queue. Requests carry it in their extensions.
#[derive(Clone)]
pub struct ZeroCopy(Arc<Shared>);

impl std::fmt::Debug for ZeroCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroCopy").finish_non_exhaustive()
    }
}

impl ZeroCopy {
    /// A queue for `stream`'s connection (holding a duplicate of its socket).
    pub fn for_socket(stream: &TcpStream) -> io::Result<Self> {
        Ok(Self(Arc::new(Shared {
            regions: Mutex::new(VecDeque::new()),
            socket: stream.as_fd().try_clone_to_owned()?,
            closed: AtomicBool::new(false),
            scratch: Mutex::new(Vec::new()),
        })))
    }

    /// The connection's reader and writer, sending this queue's regions.
    #[must_use]
    pub fn io(&self, stream: TcpStream) -> SendfileIo {
        SendfileIo {
            stream,
            zc: self.clone(),
            sending: None,
        }
    }

    /// Forgets regions queued by an earlier request's body (called as each request arrives).
    pub fn reset(&self) {
        self.regions().clear();
    }

    fn regions(&self) -> std::sync::MutexGuard<'_, VecDeque<Region>> {
        self.0
            .regions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The body of `len` bytes of a plain, blob-backed object from `start`, as placeholder
    /// chunks sent by this connection's writer.
    pub fn body(&self, object: PinnedObject, start: u64, len: u64) -> Placeholders {
        let mut pieces = VecDeque::new();
        let (mut skip, mut left) = (start, len);
        for e in &object.manifest.extents {
            if left == 0 {
                break;
            }
            if skip >= e.len {
                skip -= e.len;
                continue;
            }
            let mut here = (e.len - skip).min(left);
            left -= here;
            while here > 0 {
                let n = here.min(PLACEHOLDER_LEN as u64);
                pieces.push_back((e.blob, skip, n));
                skip += n;
                here -= n;
            }
            skip = 0;
        }
        Placeholders {
            zc: self.clone(),
            object: Arc::new(object),
            pieces,
        }
    }
}

/// A download's body: placeholder chunks, each queued with the region it stands for.
pub struct Placeholders {
    zc: ZeroCopy,
    object: Arc<PinnedObject>,
    pieces: VecDeque<(BlobId, u64, u64)>,
}

impl Stream for Placeholders {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some((blob, offset, len)) = self.pieces.pop_front() else {
            return Poll::Ready(None);
        };
        let n = usize::try_from(len).unwrap_or(PLACEHOLDER_LEN);
        let placeholder: &'static [u8] = &PLACEHOLDER;
        let Some(chunk) = placeholder.get(..n) else {
            return Poll::Ready(Some(Err(io::Error::other(
                "placeholder longer than its buffer",
            ))));
        };
        let object = self.object.clone();
        self.zc.regions().push_back(Region {
            object,
            blob,
            offset,
            len,
        });
        Poll::Ready(Some(Ok(Bytes::from_static(chunk))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.pieces.len(), Some(self.pieces.len()))
    }
}

/// A plain TCP connection's reader and writer: everything passes through to the socket except
/// placeholder chunks, whose regions are sent with `sendfile`.
pub struct SendfileIo {
    stream: TcpStream,
    zc: ZeroCopy,
    /// The `sendfile` job under way: how many placeholder bytes it will have stood for.
    sending: Option<JoinHandle<io::Result<usize>>>,
}

impl Drop for SendfileIo {
    fn drop(&mut self) {
        self.zc.0.closed.store(true, Ordering::Relaxed);
    }
}

impl SendfileIo {
    /// Starts sending up to `want` bytes of the first queued region.
    fn start_sending(&mut self, want: usize) -> io::Result<()> {
        let mut regions = self.zc.regions();
        let Some(front) = regions.front_mut() else {
            return Err(io::Error::other(
                "zero-copy: a placeholder chunk with no file region behind it",
            ));
        };
        let n = u64::try_from(want).unwrap_or(u64::MAX).min(front.len);
        let (object, blob, offset) = (front.object.clone(), front.blob, front.offset);
        front.offset += n;
        front.len -= n;
        if front.len == 0 {
            regions.pop_front();
        }
        drop(regions);
        let shared = self.zc.0.clone();
        self.sending = Some(tokio::task::spawn_blocking(move || {
            let file = object
                .store()
                .blobs()
                .local_file(&blob)
                .map_err(|e| io::Error::other(e.to_string()))?
                .ok_or_else(|| {
                    io::Error::other("zero-copy: the blob backend keeps no local files")
                })?;
            // The bytes are checked just before they leave, a window at a time (so that the
            // check's read leaves them in the cache sendfile reads them from): a window that
            // fails is never sent, and the response ends short (`integrity.rs`).
            // The connection's buffer for the check: zeroed once, not for every region.
            let mut scratch = shared
                .scratch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let verify =
                |at: u64, len: u64| object.verify_file_region(&blob, &file, at, len, &mut scratch);
            let sent = send_region(&shared, &file, offset, n, verify)?;
            drop(object);
            Ok(sent)
        }));
        Ok(())
    }
}

/// Bytes checked at a time before they are sent: small enough to stay in a core's cache
/// between the check and the send; a multiple of the checked chunk (64 KiB).
const VERIFY_WINDOW: u64 = 256 << 10;

/// Sends `len` bytes of `file` from `offset` to the connection's socket, waiting for room,
/// each window of bytes only once `verify` has passed it. It gives up when the connection's
/// writer is dropped (checked at least every second) or the client takes nothing for
/// `WRITE_STALL`.
fn send_region(
    shared: &Shared,
    file: &File,
    mut offset: u64,
    len: u64,
    mut verify: impl FnMut(u64, u64) -> io::Result<()>,
) -> io::Result<usize> {
    let end = offset + len;
    let mut verified = offset;
    let mut stalled = Duration::ZERO;
    while offset < end {
        if offset == verified {
            // Windows end on multiples of the window (so of the checked chunks): a chunk is
            // checked once however the region starts.
            let next = ((verified / VERIFY_WINDOW) + 1) * VERIFY_WINDOW;
            let window = next.min(end) - verified;
            verify(verified, window)?;
            verified += window;
        }
        if shared.closed.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection closed",
            ));
        }
        let count = usize::try_from(verified - offset).unwrap_or(usize::MAX);
        match rustix::fs::sendfile(&shared.socket, file, Some(&mut offset), count) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob shorter than its manifest",
                ));
            }
            Ok(_) => stalled = Duration::ZERO,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                if stalled >= WRITE_STALL {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client took no bytes",
                    ));
                }
                let mut fds = [rustix::event::PollFd::new(
                    &shared.socket,
                    rustix::event::PollFlags::OUT,
                )];
                let second = rustix::event::Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                };
                match rustix::event::poll(&mut fds, Some(&second)) {
                    Ok(0) => stalled += Duration::from_secs(1),
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    usize::try_from(len).map_err(|_| io::Error::other("region too long"))
}

impl AsyncRead for SendfileIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(job) = &mut self.sending {
            let done = ready!(Pin::new(job).poll(cx));
            self.sending = None;
            return Poll::Ready(done.unwrap_or_else(|e| Err(io::Error::other(e))));
        }
        let bufs: Vec<&IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).collect();
        match bufs.iter().position(|b| is_placeholder(b)) {
            Some(0) => {
                let want = bufs.first().map_or(0, |b| b.len());
                self.start_sending(want)?;
                // Poll the new job once, so its completion wakes this task.
                self.poll_write_vectored(cx, &[])
            }
            first => {
                let plain: Vec<IoSlice<'_>> = bufs
                    .iter()
                    .take(first.unwrap_or(bufs.len()))
                    .map(|b| IoSlice::new(b))
                    .collect();
                Pin::new(&mut self.stream).poll_write_vectored(cx, &plain)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
