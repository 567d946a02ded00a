//! Online backups, and the restore that turns one into a data directory.
//!
//! A backup directory holds what a data directory holds, minus what is in progress: `meta/`
//! (a RocksDB checkpoint: a consistent copy of every piece of metadata, audit log included),
//! `blobs/ab/cd/<sha256>`, and the data directory's top-level files (`FORMAT`, root
//! credentials, SSE master key, audit signing key: private, 0600).
//!
//! Consistency while writes go on: from the moment a backup starts until it ends, a blob whose
//! last reference goes away keeps its file (removal waits for the backup's end), so every blob
//! the checkpoint references is still there when the copy reaches it. Incremental for free:
//! blobs are named by their content, so a later backup into the same directory copies only the
//! blobs it does not hold yet and replaces the metadata. Blobs no longer referenced stay in the
//! backup until a restore's start-up collection drops them from the restored directory.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use crate::blob::BlobId;
use crate::{Store, StoreError, StoreOptions, StoreResult};

/// What a backup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupReport {
    /// Blobs the backup holds for this metadata.
    pub blobs: u64,
    /// Blobs copied by this run (the rest were there from an earlier one).
    pub copied: u64,
    /// Bytes copied by this run.
    pub copied_bytes: u64,
    /// Seconds the run took.
    pub seconds: f64,
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    /// Blobs restored.
    pub blobs: u64,
    /// Bytes of blobs restored.
    pub bytes: u64,
    /// Object versions (delete markers aside) in the restored store.
    pub versions: u64,
    /// Unreferenced blobs the restored store dropped at its first start.
    pub unreferenced_dropped: u64,
    /// Seconds the restore took.
    pub seconds: f64,
}

fn blob_rel(id: &BlobId) -> std::path::PathBuf {
    let hex = id.to_hex();
    Path::new(hex.get(..2).unwrap_or_default())
        .join(hex.get(2..4).unwrap_or_default())
        .join(&hex)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Copies `from` to `to` durably: a temporary file beside `to`, fsynced, renamed, the
/// directory fsynced. Returns the bytes copied.
fn copy_durably(from: &Path, to: &Path) -> io::Result<u64> {
    let dir = to.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".copy-{:016x}", rand::random::<u64>()));
    let copied = (|| -> io::Result<u64> {
        let n = fs::copy(from, &tmp)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, to)?;
        Ok(n)
    })();
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let n = copied?;
    sync_dir(dir)?;
    Ok(n)
}

/// Copies every top-level regular file of `from` into `to` (private files keep their mode).
fn copy_top_files(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            copy_durably(&entry.path(), &to.join(name))?;
        }
    }
    Ok(())
}

/// Copies a directory tree (a RocksDB checkpoint) file by file.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
            File::open(&target)?.sync_all()?;
        }
    }
    sync_dir(to)
}

impl Store {
    /// Writes a consistent backup of this store into `dir` (created if needed) while requests
    /// go on; a directory holding an earlier backup is brought up to date, copying only the
    /// blobs it lacks.
    pub fn backup(&self, dir: &Path) -> StoreResult<BackupReport> {
        let started = Instant::now();
        if self.opts.backend != crate::Backend::Disk {
            return Err(StoreError::InvalidRequest(
                "only a store on disk can be backed up".into(),
            ));
        }
        fs::create_dir_all(dir)?;
        if dir.canonicalize()?.starts_with(self.root().canonicalize()?) {
            return Err(StoreError::InvalidRequest(
                "the backup directory must be outside the data directory".into(),
            ));
        }
        // From here until the end, no blob file is removed (see the module doc).
        self.backups.fetch_add(1, Ordering::SeqCst);
        let result = self.backup_holding(dir);
        self.backups.fetch_sub(1, Ordering::SeqCst);
        self.remove_deferred();
        let mut report = result?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn backup_holding(&self, dir: &Path) -> StoreResult<BackupReport> {
        let fresh = dir.join("meta.new");
        if fresh.exists() {
            fs::remove_dir_all(&fresh)?;
        }
        self.meta().checkpoint(&fresh)?;
        let mut report = BackupReport::default();
        for id in self.blobs().list()? {
            report.blobs += 1;
            let target = dir.join("blobs").join(blob_rel(&id));
            if target.exists() {
                continue;
            }
            let source = self.root().join("blobs").join(blob_rel(&id));
            match copy_durably(&source, &target) {
                Ok(n) => {
                    report.copied += 1;
                    report.copied_bytes += n;
                }
                // Quarantined, or collected before the backup began: not referenced by it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => report.blobs -= 1,
                Err(e) => return Err(e.into()),
            }
        }
        copy_top_files(self.root(), dir)?;
        // The new metadata replaces the old only once every blob it names is in place.
        let meta = dir.join("meta");
        let old = dir.join("meta.old");
        if old.exists() {
            fs::remove_dir_all(&old)?;
        }
        if meta.exists() {
            fs::rename(&meta, &old)?;
        }
        fs::rename(&fresh, &meta)?;
        sync_dir(dir)?;
        if old.exists() {
            fs::remove_dir_all(&old)?;
        }
        Ok(report)
    }
}

/// Makes `data` (which must not exist, or be empty) a data directory holding the backup in
/// `backup`, then opens it once: the format is checked and blobs the metadata does not
/// reference are dropped.
pub fn restore(backup: &Path, data: &Path) -> StoreResult<RestoreReport> {
    let started = Instant::now();
    if !backup.join("meta").join("CURRENT").exists() || !backup.join("FORMAT").exists() {
        return Err(StoreError::InvalidRequest(format!(
            "{} holds no backup (no meta/CURRENT or FORMAT)",
            backup.display()
        )));
    }
    if data.exists() && fs::read_dir(data)?.next().is_some() {
        return Err(StoreError::InvalidRequest(format!(
            "{} is not empty: restore into a new data directory",
            data.display()
        )));
    }
    fs::create_dir_all(data)?;
    let mut report = RestoreReport::default();
    copy_tree(&backup.join("meta"), &data.join("meta"))?;
    let blobs = backup.join("blobs");
    if blobs.is_dir() {
        for a in fs::read_dir(&blobs)? {
            let a = a?;
            if !a.file_type()?.is_dir() {
                continue;
            }
            for b in fs::read_dir(a.path())? {
                let b = b?;
                if !b.file_type()?.is_dir() {
                    continue;
                }
                for f in fs::read_dir(b.path())? {
                    let f = f?;
                    let Some(id) = f.file_name().to_str().and_then(BlobId::from_hex) else {
                        continue;
                    };
                    let n = copy_durably(&f.path(), &data.join("blobs").join(blob_rel(&id)))?;
                    report.blobs += 1;
                    report.bytes += n;
                }
            }
        }
    }
    copy_top_files(backup, data)?;
    sync_dir(data)?;
    let store = Store::open(data, StoreOptions::default())?;
    report.unreferenced_dropped = store.recovery().unreferenced_removed as u64;
    report.blobs = report.blobs.saturating_sub(report.unreferenced_dropped);
    report.versions = store.usage()?.0;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::NewObject;

    fn put(s: &Store, key: &str, data: &[u8]) -> BlobId {
        let mut sink = s.blobs().stage().unwrap();
        sink.write(data).unwrap();
        let staged = sink.finish().unwrap();
        let id = staged.id;
        s.put_object("b", key, staged, NewObject::default())
            .unwrap();
        id
    }

    #[test]
    fn blobs_freed_during_a_backup_stay_until_it_ends_and_restore_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("data"), StoreOptions::default()).unwrap();
        s.create_bucket("b", false).unwrap();
        let kept = put(&s, "kept", &vec![7u8; 100_000]);
        let freed = put(&s, "freed", &vec![9u8; 100_000]);
        let file = |id: &BlobId| s.root().join("blobs").join(blob_rel(id));

        // A backup in progress: the blob whose last reference goes keeps its file.
        s.backups.fetch_add(1, Ordering::SeqCst);
        s.delete_object("b", "freed", None, false).unwrap();
        assert!(file(&freed).exists());
        s.backups.fetch_sub(1, Ordering::SeqCst);
        s.remove_deferred();
        assert!(!file(&freed).exists());

        // Refused: a backup inside the data directory; a restore into a non-empty one.
        assert!(s.backup(&s.root().join("inside")).is_err());
        let backup = dir.path().join("backup");
        let first = s.backup(&backup).unwrap();
        assert_eq!((first.blobs, first.copied), (1, 1));
        let again = s.backup(&backup).unwrap();
        assert_eq!((again.blobs, again.copied), (1, 0), "incremental");
        assert!(restore(&backup, s.root()).is_err());
        drop(s);
        let report = restore(&backup, &dir.path().join("restored")).unwrap();
        assert_eq!((report.blobs, report.versions), (1, 1));
        let r = Store::open(&dir.path().join("restored"), StoreOptions::default()).unwrap();
        assert_eq!(r.head_object("b", "kept").unwrap().extents[0].blob, kept);
        assert!(r.head_object("b", "freed").is_err());
    }
}
