//! Temporary files of the store's writers, and the sweep that removes those a killed writer left
//! behind (log-format.md, "Temporary files").
//!
//! A writer holds an exclusive advisory lock (`flock`) on its temporary file from before the
//! file has a name until the file is renamed into place or removed: the file is created unnamed
//! (`O_TMPFILE`), locked, then linked under its temporary name. The kernel drops the lock when
//! the writer's process dies, however it dies. So a temporary file that nobody holds a lock on is
//! stale, and a sweep that can take the lock removes it: no process ids are guessed, and a live
//! writer's file is never touched. (On a filesystem without `O_TMPFILE` the file is created
//! under its name and then locked; a sweep in between may remove it, and the writer then fails
//! with an error naming the file, never with a wrong file in place.)

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{FlockOperation, Mode, OFlags, CWD};

use super::file::sync_dir;

use crate::error::{Error, Result};

/// A temporary file being written, locked by this process until it is put in place or dropped
/// (then it is removed).
#[derive(Debug)]
pub(crate) struct TempFile {
    file: File,
    path: PathBuf,
    placed: bool,
}

impl TempFile {
    /// Creates `dir/<stem>.<pid>.<n>.tmp` (n counts this process's temporary files), locked,
    /// with the mode of the files of `dir` ([`super::file_mode_in`]).
    pub(crate) fn create(dir: &Path, stem: &str) -> Result<TempFile> {
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{stem}.{}.{n}.tmp", std::process::id()));
        let file = if let Ok(Ok(file)) = unnamed(dir).map(|file| link_locked(file, &path)) {
            file
        } else {
            // No O_TMPFILE here, or no /proc to link it through: created under its name.
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error::io("create", &path, e))?;
            lock(&file, &path)?;
            file
        };
        let temp = TempFile { file, path, placed: false };
        let mode = super::file_mode_in(dir)?;
        if mode != 0o600 {
            use std::os::unix::fs::PermissionsExt;
            temp.file
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io("chmod", &temp.path, e))?;
        }
        Ok(temp)
    }

    /// The open file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Its temporary name.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file, renames it to `to` (replacing what was there) and syncs the directory:
    /// after a crash, either the old file or the whole new one is there.
    pub(crate) fn persist(mut self, to: &Path) -> Result<()> {
        super::file::sync_all(&self.file, &self.path)?;
        super::file::rename(&self.path, to)?;
        self.placed = true;
        sync_dir(to.parent().unwrap_or(Path::new(".")))
    }

    /// As [`TempFile::persist`], unless `to` exists: then nothing is put in place (the temporary
    /// file is removed) and the answer is `false`.
    pub(crate) fn persist_new(mut self, to: &Path) -> Result<bool> {
        super::file::sync_all(&self.file, &self.path)?;
        if !super::file::rename_new(&self.path, to)? {
            return Ok(false);
        }
        self.placed = true;
        sync_dir(to.parent().unwrap_or(Path::new(".")))?;
        Ok(true)
    }

    /// Writes all of `bytes` from the start of the file.
    pub(crate) fn write_all(&self, bytes: &[u8]) -> Result<()> {
        super::file::write_at(&self.file, &self.path, bytes, 0)
    }

    /// A writer of the file from its start, for encoders.
    pub(crate) fn writer(&self) -> Result<super::file::FileWriter> {
        super::file::FileWriter::new(&self.file, &self.path, 0)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            // Best effort: if this fails, the next sweep removes it once the lock is gone.
            let _ = super::file::remove(&self.path);
        }
    }
}

/// Removes the temporary files in `dir` whose names `is_temp` accepts and that no live writer
/// holds; returns them. Only regular files whose names end in `.tmp` are considered; files it
/// cannot lock (a writer is at work) or that vanish meanwhile are left alone. `is_temp` should
/// accept exact names only (see [`temp_target`]): anything it accepts may be removed.
pub(crate) fn sweep(dir: &Path, is_temp: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for (path, _held) in stale_files(dir, is_temp)? {
        if super::file::remove(&path)? {
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        tracing::info!(dir = %dir.display(), files = removed.len(), "removed temporary files of writers that died");
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// The temporary files in `dir` that [`sweep`] would remove now; changes nothing.
pub(crate) fn stale(dir: &Path, is_temp: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    Ok(stale_files(dir, is_temp)?.into_iter().map(|(path, _)| path).collect())
}

/// Stale temporary files, each with its open file holding the lock (dropped: released).
fn stale_files(dir: &Path, is_temp: impl Fn(&str) -> bool) -> Result<Vec<(PathBuf, File)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.ends_with(".tmp") && is_temp(n)) else { continue };
        let path = dir.join(name);
        // Regular files only (a FIFO would block the open); never follows a symbolic link.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let open = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&path);
        let Ok(file) = open else { continue };
        if rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a live writer holds it
        }
        stale.push((path, file));
    }
    stale.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(stale)
}

/// Locks an unnamed file, then gives it the name `path` (through `/proc/self/fd`).
fn link_locked(file: File, path: &Path) -> Result<File> {
    lock(&file, path)?;
    let fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    if !super::file::link_new(Path::new(&fd), path)? {
        return Err(Error::io("link", path, std::io::ErrorKind::AlreadyExists.into()));
    }
    Ok(file)
}

/// The final name a temporary file of [`TempFile::create`], `<final name>.<pid>.<n>.tmp`,
/// stands for; `None` for any other name.
#[must_use]
pub(crate) fn temp_target(name: &str) -> Option<&str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (rest, n) = name.strip_suffix(".tmp")?.rsplit_once('.')?;
    let (target, pid) = rest.rsplit_once('.')?;
    (digits(n) && digits(pid) && !target.is_empty()).then_some(target)
}

/// An unnamed file in `dir`, readable and writable by its owner only.
fn unnamed(dir: &Path) -> rustix::io::Result<File> {
    let fd = rustix::fs::openat(
        CWD,
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::RUSR | Mode::WUSR,
    )?;
    Ok(File::from(fd))
}

fn lock(file: &File, path: &Path) -> Result<()> {
    rustix::fs::flock(file.as_fd(), FlockOperation::LockExclusive)
        .map_err(|e| Error::io("lock", path, e.into()))
}

#[doc(hidden)]
/// Crash-test hooks: a temporary file held by this process, as a writer killed mid-write
/// leaves one.
pub mod fault {
    use std::path::Path;

    use crate::error::Result;

    /// Creates and keeps (leaks) a locked temporary file `dir/<stem>.<pid>.<n>.tmp` holding
    /// `bytes`, as a snapshot or cursor writer has one while it writes; returns its path. For
    /// crash tests only: the lock goes when the process dies.
    pub fn hold_temp_file(dir: &Path, stem: &str, bytes: &[u8]) -> Result<std::path::PathBuf> {
        let temp = super::TempFile::create(dir, stem)?;
        let path = temp.path().to_owned();
        temp.write_all(bytes)?;
        std::mem::forget(temp);
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_removes_only_temporary_files_nobody_holds() {
        let dir = tempfile::tempdir().unwrap();
        let live = TempFile::create(dir.path(), "live.snap").unwrap();
        std::fs::write(dir.path().join("dead.snap.1.0.tmp"), b"left by a killed writer").unwrap();
        std::fs::write(dir.path().join("other.tmp"), b"not ours").unwrap();
        std::fs::write(dir.path().join("my.snap.notes.tmp"), b"a user's file").unwrap();
        let removed = sweep(dir.path(), |n| temp_target(n).is_some_and(|t| t.ends_with(".snap"))).unwrap();
        assert_eq!(removed, [dir.path().join("dead.snap.1.0.tmp")]);
        assert!(live.path().exists(), "a live writer's file stays");
        assert!(dir.path().join("other.tmp").exists(), "names the caller does not claim stay");
        assert!(dir.path().join("my.snap.notes.tmp").exists(), "only exact temporary names are claimed");
        let target = dir.path().join("live.snap");
        let path = live.path().to_owned();
        live.persist(&target).unwrap();
        assert!(target.exists() && !path.exists());
    }

    #[test]
    fn a_sweep_passes_over_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("00000000000000000009.seg.1.2.tmp");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string. (Opening a FIFO for reading would block: the sweep must not.)
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("00000000000000000010.seg.1.3.tmp"))
            .unwrap();
        assert!(sweep(dir.path(), |_| true).unwrap().is_empty());
        assert!(fifo.exists());
    }

    #[test]
    fn temporary_names_are_parsed_exactly() {
        assert_eq!(temp_target("00000000000000000001.seg.12.0.tmp"), Some("00000000000000000001.seg"));
        assert_eq!(temp_target("compacted.log.7.3.tmp"), Some("compacted.log"));
        for other in ["notes.seg.txt.tmp", "x.seg.tmp", "a.1.b.tmp", ".1.2.tmp", "a.1.2.tmpx", "a..2.tmp"] {
            assert_eq!(temp_target(other), None, "{other}");
        }
    }

    #[test]
    fn a_dropped_temporary_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let temp = TempFile::create(dir.path(), "x").unwrap();
        let path = temp.path().to_owned();
        assert!(path.exists());
        drop(temp);
        assert!(!path.exists());
    }
}
