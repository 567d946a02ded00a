//! Direct writes: a large blob's bytes go from an aligned buffer to the disk with `O_DIRECT`,
//! past the page cache.
//!
//! Why: a buffered write copies every byte into a newly allocated page-cache page, and on a
//! virtual machine whose host takes freed guest pages back each new page costs a host fault
//! too. That copy was ~28 % of a 64 MiB PUT's server CPU here; a direct write is one copy into
//! a warm, reused buffer and a DMA. MinIO does the same for its large files.
//! The cost: the first read of a freshly written blob comes from the disk, not the cache. So it
//! is off by default and turned on with `--direct-writes on`, for write-mostly use (backups).
//!
//! Only whole buffers go direct. A blob smaller than one buffer, and the unaligned tail of a
//! larger one, are written through the page cache; `fdatasync` at the end covers both. Where
//! the file system refuses `O_DIRECT` (tmpfs, some FUSE and network file systems), opening or
//! the first write fails with `EINVAL` and the sink falls back to buffered writes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;

/// Alignment of buffer addresses, file offsets and lengths for `O_DIRECT` (the largest logical
/// block size in common use).
const ALIGN: usize = 4096;

/// Bytes gathered before each direct write.
pub(super) const DIRECT_CHUNK: usize = 1 << 20;

/// Buffers kept for reuse: their pages stay mapped, so filling them costs no page faults.
const POOL_MAX: usize = 16;

static POOL: Mutex<Vec<AlignedBuf>> = Mutex::new(Vec::new());

/// `DIRECT_CHUNK` bytes at an `ALIGN`ed address inside a slightly larger vector that is never
/// resized (so the address never moves).
struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    fn take() -> Self {
        if let Some(b) = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return b;
        }
        let raw = vec![0u8; DIRECT_CHUNK + ALIGN];
        let start = (ALIGN - raw.as_ptr() as usize % ALIGN) % ALIGN;
        Self { raw, start }
    }

    fn bytes(&self) -> &[u8] {
        self.raw
            .get(self.start..self.start + DIRECT_CHUNK)
            .unwrap_or_default()
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.raw
            .get_mut(self.start..self.start + DIRECT_CHUNK)
            .unwrap_or_default()
    }
}

/// A second handle on a staged blob's file, opened with `O_DIRECT`, and the buffer that
/// gathers bytes for it.
pub(super) struct DirectWriter {
    file: File,
    buf: Option<AlignedBuf>,
    filled: usize,
    /// Whether a direct write has succeeded yet (a refusal after that is a real error).
    proven: bool,
}

impl DirectWriter {
    /// Opens `path` (already created) for direct writes; `None` where the file system refuses.
    pub(super) fn open(path: &Path) -> io::Result<Option<Self>> {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(file) => Ok(Some(Self {
                file,
                buf: None,
                filled: 0,
                proven: false,
            })),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Copies as much of `data` as fits into the buffer; returns how many bytes it took.
    /// When the buffer is full, [`Self::is_full`] says so and [`Self::flush_full`] writes it.
    pub(super) fn fill(&mut self, data: &[u8]) -> usize {
        let filled = self.filled;
        let buf = self.buf.get_or_insert_with(AlignedBuf::take);
        let free = buf.bytes_mut().get_mut(filled..).unwrap_or_default();
        let n = data.len().min(free.len());
        let (dst, _) = free.split_at_mut(n);
        let (src, _) = data.split_at(n);
        dst.copy_from_slice(src);
        self.filled += n;
        n
    }

    pub(super) fn is_full(&self) -> bool {
        self.filled == DIRECT_CHUNK
    }

    /// Writes the full buffer at `offset` (a multiple of `DIRECT_CHUNK`). On `Ok(false)` the
    /// file system refused the direct write: nothing was written, and the caller writes the
    /// buffered bytes ([`Self::pending`]) another way and stops using this writer.
    pub(super) fn flush_full(&mut self, offset: u64) -> io::Result<bool> {
        let Some(buf) = &self.buf else {
            return Ok(true);
        };
        match self.file.write_all_at(buf.bytes(), offset) {
            Ok(()) => {
                self.proven = true;
                self.filled = 0;
                Ok(true)
            }
            Err(e) if !self.proven && e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The bytes gathered and not yet written.
    pub(super) fn pending(&self) -> &[u8] {
        match &self.buf {
            Some(b) => b.bytes().get(..self.filled).unwrap_or_default(),
            None => &[],
        }
    }

    /// Writes what is gathered at `offset`: the aligned part directly (only once a direct write
    /// has worked, so a blob smaller than one buffer stays in the page cache), the rest through
    /// `buffered`. The caller syncs.
    pub(super) fn finish(mut self, buffered: &File, offset: u64) -> io::Result<()> {
        let mut direct_len = 0;
        if self.proven {
            direct_len = self.filled / ALIGN * ALIGN;
            if let Some(buf) = &self.buf
                && direct_len > 0
            {
                let aligned = buf.bytes().get(..direct_len).unwrap_or_default();
                self.file.write_all_at(aligned, offset)?;
            }
        }
        let rest = self.pending().get(direct_len..).unwrap_or_default();
        if !rest.is_empty() {
            buffered.write_all_at(rest, offset + direct_len as u64)?;
        }
        self.filled = 0;
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL_MAX {
                pool.push(buf);
            }
        }
    }
}
