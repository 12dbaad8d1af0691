//! The I/O seam: every change the store makes to its files, every sync and every memory map
//! goes through one narrow trait, [`Storage`]. [`Os`] is the real one (the system calls); a
//! test can mount another over a directory ([`mount`]) and every store file below it then goes
//! through that one instead: the fault-injecting disk of [`FaultDisk`](crate::fs::FaultDisk) fails the N-th
//! write or sync, runs out of space, or keeps only what was synced when the power is cut.
//!
//! The implementation is chosen by path, the way a kernel resolves a path to its mounted
//! filesystem: the longest mounted directory that is a prefix of the file's path (compared
//! component by component, as given), [`Os`] if none is. Resolving by path rather than by a
//! handle passed down means that no caller can forget to pass it: the log, snapshots, cursors,
//! the access file and temporary files all reach the files through the functions of this
//! module. With nothing mounted (every real program) resolving costs one atomic load.
//!
//! Reads go straight to the files (a `pread` or a memory map of what the seam wrote), as on a
//! real disk: the page cache shows what was written, synced or not. What a crash keeps is
//! decided by the syncs, which is what [`FaultDisk`](crate::fs::FaultDisk) models.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use memmap2::{Mmap, MmapMut, MmapOptions};
use rustix::fs::{FallocateFlags, RenameFlags, CWD};

/// How a file is opened through [`Storage::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
}

/// Every operation of the store on its files that is not a plain read: open, write, allocate,
/// sync, rename, link, remove, map. Implementations answer with the `std::io::Error` the
/// system would give (`EIO`, `ENOSPC`, `EEXIST` ...); the crate's functions around it name the
/// operation and the file in the [`crate::Error`] they return.
///
/// Offsets and lengths are in bytes. Paths are the paths of the files as the store names them.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Opens an existing file.
    ///
    /// # Errors
    /// As `open(2)`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<File> {
        std::fs::OpenOptions::new().read(true).write(mode == OpenMode::ReadWrite).open(path)
    }

    /// Writes all of `bufs`, one after another, from `offset` (`pwritev`, retried until all is
    /// written).
    ///
    /// # Errors
    /// As `pwritev(2)`; a write of zero bytes is `WriteZero`.
    fn write_at(&self, file: &File, path: &Path, bufs: &[&[u8]], offset: u64) -> io::Result<()>;

    /// Gives `[offset, offset + len)` real blocks (`fallocate`), extending the file if it is
    /// shorter; with `zero`, sets the range to zero without changing the file's length
    /// (`FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE`). Falls back to writing zeros where the
    /// filesystem cannot.
    ///
    /// # Errors
    /// As `fallocate(2)` or `pwrite(2)`.
    fn allocate(&self, file: &File, path: &Path, offset: u64, len: u64, zero: bool) -> io::Result<()>;

    /// `fdatasync` (`data_only`) or `fsync` of a file: what was written reaches stable storage.
    ///
    /// # Errors
    /// As `fsync(2)`. After a failed sync, what was written since the last good one may be
    /// lost even if a later sync succeeds (the `fsyncgate` of the Postgres project, 2018).
    fn sync(&self, file: &File, path: &Path, data_only: bool) -> io::Result<()>;

    /// Syncs a directory: the names created, renamed and removed in it reach stable storage.
    ///
    /// # Errors
    /// As `open(2)` and `fsync(2)`.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to` (or, without `replace`, failing with
    /// `AlreadyExists` if it exists: `RENAME_NOREPLACE`).
    ///
    /// # Errors
    /// As `renameat2(2)`.
    fn rename(&self, from: &Path, to: &Path, replace: bool) -> io::Result<()>;

    /// Gives the file `from` the further name `to` (which must not exist); `from` may be a
    /// `/proc/self/fd/N` link to an unnamed file (`linkat` with `AT_SYMLINK_FOLLOW`).
    ///
    /// # Errors
    /// As `linkat(2)`.
    fn link(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file's name.
    ///
    /// # Errors
    /// As `unlink(2)`.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Maps `len` bytes of `file` read-only.
    ///
    /// # Errors
    /// As `mmap(2)`.
    fn map_read(&self, file: &File, len: usize) -> io::Result<Mmap> {
        // SAFETY: the log maps at most the file length it observed and never shrinks a mapped
        // file (`crate::log::io`, "Mapping safety"); see the callers.
        unsafe { MmapOptions::new().len(len).map(file) }
    }

    /// Maps `len` bytes of `file` for reading and writing (the lock file's shared page).
    ///
    /// # Errors
    /// As `mmap(2)`.
    fn map_write(&self, file: &File, len: usize) -> io::Result<MmapMut> {
        // SAFETY: as for `map_read`; the file is at least `len` bytes long (the callers check).
        unsafe { MmapOptions::new().len(len).map_mut(file) }
    }

    /// The identity of the current boot (`/proc/sys/kernel/random/boot_id`), all zero if
    /// unknown. A store whose lock file names another boot was last written before a power
    /// cut or reboot and is recovered from its segments.
    fn boot_id(&self) -> [u8; 16] {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
            .map_or([0; 16], |u| *u.as_bytes())
    }
}

/// The real files: system calls, nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct Os;

impl Storage for Os {
    fn write_at(&self, file: &File, _path: &Path, bufs: &[&[u8]], offset: u64) -> io::Result<()> {
        let mut slices: Vec<io::IoSlice<'_>> = bufs.iter().map(|b| io::IoSlice::new(b)).collect();
        let mut rest = slices.as_mut_slice();
        let mut at = offset;
        // Linux takes at most 1024 slices (IOV_MAX) per call.
        while !rest.is_empty() {
            let take = rest.len().min(1024);
            let chunk = rest.get(..take).unwrap_or_default();
            let n = match rustix::io::pwritev(file, chunk, at) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            at += n as u64;
            io::IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    }

    fn allocate(&self, file: &File, path: &Path, offset: u64, len: u64, zero: bool) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let flags = if zero {
            FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE
        } else {
            FallocateFlags::empty()
        };
        match rustix::fs::fallocate(file, flags, offset, len) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
                // Zeros written by hand; when extending, only past the current end.
                let from = if zero { offset } else { offset.max(file.metadata()?.len()) };
                write_zeros(self, file, path, from, offset + len)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn sync(&self, file: &File, _path: &Path, data_only: bool) -> io::Result<()> {
        if data_only {
            file.sync_data()
        } else {
            file.sync_all()
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path, replace: bool) -> io::Result<()> {
        let flags = if replace { RenameFlags::empty() } else { RenameFlags::NOREPLACE };
        rustix::fs::renameat_with(CWD, from, CWD, to, flags).map_err(io::Error::from)
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        rustix::fs::linkat(CWD, from, CWD, to, rustix::fs::AtFlags::SYMLINK_FOLLOW).map_err(io::Error::from)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// Writes zeros over `[from, to)` through `storage`, 64 KiB at a time.
pub(crate) fn write_zeros(
    storage: &dyn Storage,
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
) -> io::Result<()> {
    let zeros = vec![0u8; 1 << 16];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).unwrap_or(usize::MAX).min(zeros.len());
        storage.write_at(file, path, &[zeros.get(..n).unwrap_or_default()], at)?;
        at += n as u64;
    }
    Ok(())
}

/// The mounted storages, longest directory first.
static MOUNTS: RwLock<Vec<(PathBuf, Arc<dyn Storage>)>> = RwLock::new(Vec::new());
/// Whether anything is mounted: the one load every resolution pays when nothing is.
static ANY_MOUNTED: AtomicBool = AtomicBool::new(false);

/// A storage mounted over a directory; unmounted when dropped.
#[derive(Debug)]
#[must_use = "the storage is unmounted when this is dropped"]
pub struct Mounted {
    dir: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let mut mounts = MOUNTS.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = mounts.iter().position(|(d, _)| *d == self.dir) {
            mounts.remove(at);
        }
        ANY_MOUNTED.store(!mounts.is_empty(), Ordering::Release);
    }
}

/// Mounts `storage` over `dir`: every file operation of the store on a path below `dir` goes
/// through it until the answer is dropped. For tests: a real program mounts nothing.
///
/// Paths are compared as given, component by component, never canonicalised: open the store
/// through a path that starts with `dir` as written (not through a relative path, a symbolic
/// link or `..`), or its files bypass the mounted storage.
///
/// # Errors
/// [`crate::Error::InvalidArgument`] if something is mounted over `dir` already.
pub fn mount(dir: &Path, storage: Arc<dyn Storage>) -> crate::Result<Mounted> {
    let mut mounts = MOUNTS.write().unwrap_or_else(PoisonError::into_inner);
    if mounts.iter().any(|(d, _)| d == dir) {
        return Err(crate::Error::InvalidArgument {
            name: "mount",
            reason: format!("a storage is mounted over {} already", dir.display()),
        });
    }
    mounts.push((dir.to_owned(), storage));
    mounts.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
    ANY_MOUNTED.store(true, Ordering::Release);
    Ok(Mounted { dir: dir.to_owned() })
}

/// Runs `f` with the storage that holds `path`.
pub(crate) fn with<R>(path: &Path, f: impl FnOnce(&dyn Storage) -> R) -> R {
    if !ANY_MOUNTED.load(Ordering::Acquire) {
        return f(&Os);
    }
    let found = {
        let mounts = MOUNTS.read().unwrap_or_else(PoisonError::into_inner);
        mounts.iter().find(|(d, _)| path.starts_with(d)).map(|(_, s)| Arc::clone(s))
    };
    match found {
        Some(storage) => f(&*storage),
        None => f(&Os),
    }
}
