//! Small files only fsgate's user may read (root credentials, the SSE master key), written
//! once and durably.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Writes `bytes` to `path` (which must not exist yet) with mode 0600, durably: the bytes go
/// to a temporary file beside it that is fsynced, then renamed into place without replacing
/// anything, then the directory is fsynced. A crash leaves either no file or the whole file,
/// never a torn one that a restart would read.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        // DURABILITY: the bytes are on disk before the name points at them.
        f.sync_all()?;
        // DURABILITY: the name appears whole, and never replaces a file written before.
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            path,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(()),
            // File systems without renameat2's flags (FUSE file systems, some network ones):
            // a hard link refuses an existing name just the same; the temporary name goes.
            Err(e)
                if e == rustix::io::Errno::INVAL
                    || e == rustix::io::Errno::NOSYS
                    || e == rustix::io::Errno::OPNOTSUPP =>
            {
                std::fs::hard_link(&tmp, path)?;
                std::fs::remove_file(&tmp)
            }
            Err(e) => Err(io::Error::from(e)),
        }
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // DURABILITY: the rename itself survives a power loss.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn written_once_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("secret");
        write_private(&p, b"k1").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"k1");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Never replaced.
        assert!(write_private(&p, b"k2").is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"k1");
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "a temporary file was left behind");
    }
}
