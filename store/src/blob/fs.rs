//! `FsBlobStore`: blobs as files under `blobs/ab/cd/<sha256>`, staged in `tmp/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{BlobId, BlobSink, BlobStore, StagedBlob};
use crate::error::{StoreError, StoreResult};

/// Blobs on the local file system.
#[derive(Debug)]
pub struct FsBlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating if needed) the blob directories under `root`.
    pub fn open(root: &Path) -> StoreResult<Self> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&tmp)?;
        Ok(Self { blobs, tmp })
    }

    fn path_of(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        let (a, rest) = hex.split_at(2);
        let (b, _) = rest.split_at(2);
        self.blobs.join(a).join(b).join(&hex)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A blob being written. Callers hand it large chunks (the gateway writes 1 MiB at a time), so
/// it writes straight to the file with no buffer of its own.
struct FsSink {
    file: File,
    path: PathBuf,
    sha: Sha256,
    md5: Md5,
    len: u64,
    done: bool,
}

impl BlobSink for FsSink {
    fn write(&mut self, data: &[u8]) -> StoreResult<()> {
        self.sha.update(data);
        self.md5.update(data);
        self.len += data.len() as u64;
        self.file.write_all(data)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> StoreResult<StagedBlob> {
        // DURABILITY: the temporary file's bytes reach the disk before it is renamed into place.
        let started = std::time::Instant::now();
        self.file.sync_data()?;
        metrics::histogram!("fsgate_blob_fsync_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("fsgate_blob_writes_total").increment(1);
        metrics::counter!("fsgate_blob_written_bytes_total").increment(self.len);
        self.done = true;
        let id = BlobId(self.sha.clone().finalize().into());
        let md5: [u8; 16] = self.md5.clone().finalize().into();
        Ok(StagedBlob {
            id,
            md5,
            len: self.len,
            tmp: Some(self.path.clone()),
        })
    }
}

impl Drop for FsSink {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl BlobStore for FsBlobStore {
    fn stage(&self) -> StoreResult<Box<dyn BlobSink>> {
        let name: [u8; 16] = rand::random();
        let path = self.tmp.join(hex::encode(name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Box::new(FsSink {
            file,
            path,
            sha: Sha256::new(),
            md5: Md5::new(),
            len: 0,
            done: false,
        }))
    }

    fn publish(&self, staged: &mut StagedBlob) -> StoreResult<()> {
        let Some(tmp) = staged.tmp.take() else {
            return Ok(());
        };
        let dest = self.path_of(&staged.id);
        if dest.exists() {
            // Identical content is stored once: keep the copy already in place.
            fs::remove_file(&tmp)?;
            return Ok(());
        }
        let dir = dest.parent().ok_or_else(|| StoreError::Corrupt {
            what: "blob path",
            detail: dest.display().to_string(),
        })?;
        fs::create_dir_all(dir)?;
        // DURABILITY: rename the synced file into place, then sync the directory so the new
        // name survives power loss; only then may metadata refer to it.
        fs::rename(&tmp, &dest)?;
        sync_dir(dir)?;
        Ok(())
    }

    fn open(&self, id: &BlobId, offset: u64) -> StoreResult<Box<dyn Read + Send>> {
        let mut file = self.open_file(id)?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(Box::new(file))
    }

    fn open_file(&self, id: &BlobId) -> StoreResult<File> {
        File::open(self.path_of(id)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::Corrupt {
                    what: "blob",
                    detail: format!("{} is referenced but missing", id.to_hex()),
                }
            } else {
                StoreError::Io(e)
            }
        })
    }

    fn remove(&self, id: &BlobId) -> StoreResult<()> {
        match fs::remove_file(self.path_of(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> StoreResult<Vec<BlobId>> {
        let mut out = Vec::new();
        for a in fs::read_dir(&self.blobs)? {
            let a = a?.path();
            if !a.is_dir() {
                continue;
            }
            for b in fs::read_dir(&a)? {
                let b = b?.path();
                if !b.is_dir() {
                    continue;
                }
                for f in fs::read_dir(&b)? {
                    let f = f?;
                    if let Some(id) = f.file_name().to_str().and_then(BlobId::from_hex) {
                        out.push(id);
                    }
                }
            }
        }
        Ok(out)
    }

    fn collect_staged(&self) -> StoreResult<usize> {
        let mut n = 0;
        for entry in fs::read_dir(&self.tmp)? {
            fs::remove_file(entry?.path())?;
            n += 1;
        }
        Ok(n)
    }

    fn physical_bytes(&self) -> StoreResult<u64> {
        let mut total = 0;
        for id in self.list()? {
            total += fs::metadata(self.path_of(&id))
                .map(|m| m.len())
                .unwrap_or(0);
        }
        Ok(total)
    }
}

/// Reads up to `buf.len()` bytes, looping over short reads; returns bytes read (0 at the end).
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
