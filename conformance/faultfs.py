#!/usr/bin/env python3
"""A pass-through FUSE file system that fails on demand, for the fault tests
(conformance/tests/faults.rs).

    faultfs.py BACKING MOUNTPOINT CONTROL

mounts BACKING at MOUNTPOINT (in the foreground: the test kills it, then unmounts). CONTROL is
a file holding `off`, or `ERRNO SUBSTRING [full]` (`EIO /meta/`, `ENOSPC /tmp/`): from then on
every write, sync, create, rename, truncate, link and allocation of a path containing
SUBSTRING fails with that error, until CONTROL says `off` again; with `full`, the file system
also reports no free space (as a full disk does). Reads always work.
"""
import errno
import os
import sys

from fuse import FUSE, FuseOSError, Operations


class FaultFS(Operations):
    def __init__(self, root, control):
        self.root = root
        self.control = control
        self.seen = None
        self.fault = None
        self.full = False

    # The control file is read again whenever it changes.
    def _check(self, *paths):
        try:
            st = os.stat(self.control)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self.seen:
                words = open(self.control).read().split()
                self.seen = stamp
                if not words or words[0] == "off":
                    self.fault = None
                else:
                    self.fault = (getattr(errno, words[0]), words[1] if len(words) > 1 else "")
                self.full = self.fault is not None and "full" in words[2:]
        except OSError:
            self.fault = None
            self.full = False
        if self.fault and any(self.fault[1] in p for p in paths):
            raise FuseOSError(self.fault[0])

    def _full(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _io(self, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            raise FuseOSError(e.errno)

    # Metadata.
    def access(self, path, mode):
        if not os.access(self._full(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        st = self._io(os.lstat, self._full(path))
        return {k: getattr(st, k) for k in (
            "st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size",
            "st_uid", "st_blocks")}

    def readdir(self, path, fh):
        return [".", ".."] + self._io(os.listdir, self._full(path))

    def readlink(self, path):
        return self._io(os.readlink, self._full(path))

    def statfs(self, path):
        try:
            self._check()
        except FuseOSError:
            pass
        st = self._io(os.statvfs, self._full(path))
        out = {k: getattr(st, k) for k in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
            "f_flag", "f_frsize", "f_namemax")}
        if self.full:
            out["f_bavail"] = out["f_bfree"] = 0
        return out

    def chmod(self, path, mode):
        self._check(path)
        return self._io(os.chmod, self._full(path), mode)

    def chown(self, path, uid, gid):
        self._check(path)
        return self._io(os.chown, self._full(path), uid, gid)

    def utimens(self, path, times=None):
        return self._io(os.utime, self._full(path), times)

    # Names.
    def mkdir(self, path, mode):
        self._check(path)
        return self._io(os.mkdir, self._full(path), mode)

    def rmdir(self, path):
        self._check(path)
        return self._io(os.rmdir, self._full(path))

    def unlink(self, path):
        self._check(path)
        return self._io(os.unlink, self._full(path))

    def symlink(self, name, target):
        self._check(name)
        return self._io(os.symlink, target, self._full(name))

    def rename(self, old, new):
        self._check(old, new)
        return self._io(os.rename, self._full(old), self._full(new))

    def link(self, new, existing):
        self._check(new, existing)
        return self._io(os.link, self._full(existing), self._full(new))

    # Files.
    def open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            self._check(path)
        return self._io(os.open, self._full(path), flags)

    def create(self, path, mode, fi=None):
        self._check(path)
        return self._io(os.open, self._full(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path, length, offset, fh):
        return self._io(os.pread, fh, length, offset)

    def write(self, path, buf, offset, fh):
        self._check(path)
        return self._io(os.pwrite, fh, buf, offset)

    def truncate(self, path, length, fh=None):
        self._check(path)
        if fh is not None:
            return self._io(os.ftruncate, fh, length)
        with open(self._full(path), "r+") as f:
            f.truncate(length)

    def fallocate(self, path, mode, offset, length, fh):
        self._check(path)
        raise FuseOSError(errno.EOPNOTSUPP)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return self._io(os.close, fh)

    def fsync(self, path, datasync, fh):
        self._check(path)
        return self._io(os.fdatasync if datasync else os.fsync, fh)


if __name__ == "__main__":
    backing, mountpoint, control = sys.argv[1:4]
    FUSE(FaultFS(backing, control), mountpoint, foreground=True, nothreads=False,
         use_ino=False)
