//! Chunk checksums: what lets every read of a blob, whole or a range, prove that the bytes
//! it returns are the bytes that were written.
//!
//! A blob's name is the SHA-256 of its content, but a name only verifies a whole read, and
//! SHA-256 costs a core ~0.5 ms per MiB. So a blob also gets, as it is written, a CRC32C of
//! each `SUM_CHUNK` (64 KiB) of its content: a read covering bytes `a..b` reads and checks the
//! chunks that hold them (at most 64 KiB more on each side). CRC32C detects every burst error
//! up to 32 bits and any other change with probability 1 − 2⁻³², per chunk, at tens of GB/s
//! (hardware CRC). It is a detector of decay, not of an attacker: whoever can rewrite blob
//! files can rewrite the metadata that names them. Scrubbing (`Store::scrub`) re-checks the
//! SHA-256 of every blob as well.
//!
//! The sums live in the `blobsums` column family, keyed by blob id: the blob's length (u64
//! big-endian), then each sum (u32 big-endian).

use std::io;

use crc_fast::{CrcAlgorithm, Digest};

/// Bytes covered by one checksum.
pub const SUM_CHUNK: usize = 64 << 10;

/// A blob's length and the CRC32C of each `SUM_CHUNK` of it, in order (the last may cover
/// fewer bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkSums {
    blob_len: u64,
    sums: Vec<u32>,
}

/// The CRC32C of `data`.
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    u32::try_from(crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, data)).unwrap_or(0)
}

impl ChunkSums {
    /// The sums of a whole blob held in memory.
    #[must_use]
    pub fn of(data: &[u8]) -> Self {
        Self {
            blob_len: data.len() as u64,
            sums: data.chunks(SUM_CHUNK).map(crc32c).collect(),
        }
    }

    /// The stored form: the blob's length, then each sum, big-endian.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * self.sums.len());
        out.extend_from_slice(&self.blob_len.to_be_bytes());
        out.extend(self.sums.iter().flat_map(|s| s.to_be_bytes()));
        out
    }

    /// Reads the stored form; `None` unless it holds exactly one sum per chunk of the length.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (len, rest) = bytes.split_first_chunk::<8>()?;
        let blob_len = u64::from_be_bytes(*len);
        if rest.len() % 4 != 0 || (rest.len() / 4) as u64 != blob_len.div_ceil(SUM_CHUNK as u64) {
            return None;
        }
        let sums = rest
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap_or_default()))
            .collect();
        Some(Self { blob_len, sums })
    }

    /// The length of the blob the sums are of.
    #[must_use]
    pub fn blob_len(&self) -> u64 {
        self.blob_len
    }

    /// How many chunks the sums cover.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sums.len()
    }

    /// True when there are no sums (an empty blob).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    /// Whether `data`, the content of chunk `index` (`SUM_CHUNK` bytes except for the last
    /// chunk), is what was written.
    #[must_use]
    pub fn chunk_ok(&self, index: usize, data: &[u8]) -> bool {
        self.sums.get(index).is_some_and(|s| *s == crc32c(data))
    }

    /// Checks bytes `offset..offset + len` of the blob: `read` fills its buffer with the bytes
    /// from an offset, here those of the whole chunks that hold the range, in one read.
    /// Returns the first chunk that does not match, as an `InvalidData` error. `buf` is the
    /// caller's, reused across calls (it only grows: zeroed once, not at every call).
    pub fn verify_region(
        &self,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        mut read: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let chunk = SUM_CHUNK as u64;
        let first = offset / chunk;
        let at = first * chunk;
        let end = (offset + len)
            .div_ceil(chunk)
            .saturating_mul(chunk)
            .min(self.blob_len);
        let n = usize::try_from(end.saturating_sub(at))
            .map_err(|_| io::Error::other("region too long"))?;
        if buf.len() < n {
            buf.resize(n, 0);
        }
        let region = buf.get_mut(..n).unwrap_or_default();
        read(at, region).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(io::ErrorKind::InvalidData, "blob shorter than written")
            } else {
                e
            }
        })?;
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        for (i, piece) in region.chunks(SUM_CHUNK).enumerate() {
            if !self.chunk_ok(first + i, piece) {
                return Err(mismatch(first + i));
            }
        }
        Ok(())
    }
}

/// The error of a chunk whose bytes are not those written.
#[must_use]
pub fn mismatch(index: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "bytes {}..{} of the blob differ from what was written",
            index * SUM_CHUNK,
            (index + 1) * SUM_CHUNK
        ),
    )
}

/// Computes a blob's chunk sums from its bytes as they arrive, in pieces of any size.
pub struct ChunkSummer {
    blob_len: u64,
    sums: Vec<u32>,
    digest: Digest,
    in_chunk: usize,
}

impl Default for ChunkSummer {
    fn default() -> Self {
        Self {
            blob_len: 0,
            sums: Vec::new(),
            digest: Digest::new(CrcAlgorithm::Crc32Iscsi),
            in_chunk: 0,
        }
    }
}

impl std::fmt::Debug for ChunkSummer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSummer")
            .field("chunks", &self.sums.len())
            .finish_non_exhaustive()
    }
}

impl ChunkSummer {
    /// Adds the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.blob_len += data.len() as u64;
        while !data.is_empty() {
            if self.in_chunk == 0 && data.len() >= SUM_CHUNK {
                // Whole chunks in one call: no streaming state.
                let (chunk, rest) = data.split_at(SUM_CHUNK);
                self.sums.push(crc32c(chunk));
                data = rest;
                continue;
            }
            let take = (SUM_CHUNK - self.in_chunk).min(data.len());
            let (piece, rest) = data.split_at(take);
            self.digest.update(piece);
            self.in_chunk += take;
            data = rest;
            if self.in_chunk == SUM_CHUNK {
                self.push_partial();
            }
        }
    }

    fn push_partial(&mut self) {
        self.sums
            .push(u32::try_from(self.digest.finalize_reset()).unwrap_or(0));
        self.in_chunk = 0;
    }

    /// The sums of everything added.
    #[must_use]
    pub fn finish(mut self) -> ChunkSums {
        if self.in_chunk > 0 {
            self.push_partial();
        }
        ChunkSums {
            blob_len: self.blob_len,
            sums: self.sums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_sums_match_sums_of_the_whole_for_any_split() {
        let data: Vec<u8> = (0..(3 * SUM_CHUNK + 1234))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let whole = ChunkSums::of(&data);
        assert_eq!(whole.len(), 4);
        for piece in [1, 1000, SUM_CHUNK - 1, SUM_CHUNK, SUM_CHUNK + 3, 1 << 20] {
            let mut s = ChunkSummer::default();
            data.chunks(piece).for_each(|p| s.update(p));
            assert_eq!(s.finish(), whole, "pieces of {piece}");
        }
        assert_eq!(
            ChunkSums::from_bytes(&whole.to_bytes()),
            Some(whole.clone())
        );
        assert_eq!(ChunkSums::from_bytes(&whole.to_bytes()[..20]), None);
        assert!(ChunkSummer::default().finish().is_empty());
    }

    #[test]
    fn a_flipped_byte_fails_the_region_that_holds_it_only() {
        let mut data: Vec<u8> = (0..(2 * SUM_CHUNK + 10)).map(|i| (i % 13) as u8).collect();
        let sums = ChunkSums::of(&data);
        data[SUM_CHUNK + 5] ^= 0x20;
        let len = data.len() as u64;
        let read = |at: u64, buf: &mut [u8]| {
            let at = usize::try_from(at).unwrap();
            buf.copy_from_slice(&data[at..at + buf.len()]);
            Ok(())
        };
        let mut buf = Vec::new();
        assert!(sums.verify_region(0, 100, &mut buf, read).is_ok());
        assert!(
            sums.verify_region(2 * SUM_CHUNK as u64, 10, &mut buf, read)
                .is_ok()
        );
        let err = sums
            .verify_region(10, SUM_CHUNK as u64, &mut buf, read)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(sums.verify_region(0, len, &mut buf, read).is_err());
    }
}
