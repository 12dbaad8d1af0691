//! The one seam through which the log touches the filesystem: open, map, allocate, zero, sync,
//! rename, directory sync, filesystem checks. All `unsafe` (the memory maps, `sync_file_range`)
//! lives here.
//!
//! # Mapping safety (SIGBUS)
//!
//! Touching a mapped page that lies beyond the end of its file, or whose blocks cannot be
//! allocated, raises SIGBUS. The log avoids both:
//! - every segment is preallocated with `fallocate` (real blocks, not a sparse `set_len`), so
//!   writing through a map never needs the filesystem to find space;
//! - a map never extends past the file length observed when it was made, and the log never
//!   shrinks a segment file: a torn tail is cut by zeroing it in place (`FALLOC_FL_ZERO_RANGE`),
//!   and whole segments are only ever deleted, which leaves existing maps valid.
//!
//! What remains outside the log's control is another program truncating a segment file while it is
//! mapped; log-format.md ("Mapping safety") forbids it.

use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, MmapMut};

use crate::error::{Error, Result};
// The log's file operations are the I/O seam's (`crate::fs::file`): the map safety argument
// above is what makes its maps sound for the log.
pub(crate) use crate::fs::file::{
    map_read, map_write, open_read, open_rw, preallocate, sync_data, sync_dir, write_vectored_at, zero_range,
};

/// Length of a file in bytes.
pub fn file_len(file: &File, path: &Path) -> Result<u64> {
    Ok(file.metadata().map_err(|e| Error::io("stat", path, e))?.len())
}

/// Little-endian 64-bit words that processes share through atomics: a writable map of the lock
/// file, a read-only map of it (for readers without write access), or words of this process
/// alone (a read-only open of a store whose lock file is missing, unreadable or stale).
pub struct SharedWords {
    backing: Backing,
}

enum Backing {
    Write(MmapMut),
    Read(Mmap),
    Local(Box<[std::sync::atomic::AtomicU64]>),
}

impl SharedWords {
    /// Maps the first `words * 8` bytes of `file`, which must be at least that long.
    pub fn map(file: &File, path: &Path, words: usize) -> Result<SharedWords> {
        Ok(SharedWords { backing: Backing::Write(map_write(file, path, (words * 8) as u64)?) })
    }

    /// Maps the first `words * 8` bytes of `file` read-only: only [`SharedWords::load`] may be
    /// used, and [`SharedWords::store`] and [`SharedWords::fetch_max`] do nothing.
    pub fn map_read_only(file: &File, path: &Path, words: usize) -> Result<SharedWords> {
        Ok(SharedWords { backing: Backing::Read(map_read(file, path, (words * 8) as u64)?) })
    }

    /// `words` zero words private to this process.
    #[must_use]
    pub fn local(words: usize) -> SharedWords {
        SharedWords {
            backing: Backing::Local((0..words).map(|_| std::sync::atomic::AtomicU64::default()).collect()),
        }
    }

    /// Whether stores reach the words (false for a read-only map).
    #[must_use]
    pub fn writable(&self) -> bool {
        !matches!(self.backing, Backing::Read(_))
    }

    /// The word at index `i` (byte offset `8 * i`), with acquire ordering. It is loaded
    /// relaxed and followed by an acquire fence, the one kind of atomic access allowed on
    /// read-only memory.
    #[must_use]
    pub fn load(&self, i: usize) -> u64 {
        let v = self.word(i).load(std::sync::atomic::Ordering::Relaxed);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        v
    }

    /// Stores `v` at index `i` with release ordering (nothing on a read-only map).
    pub fn store(&self, i: usize, v: u64) {
        if self.writable() {
            self.word(i).store(v, std::sync::atomic::Ordering::Release);
        }
    }

    /// Raises the word at index `i` to at least `v` (nothing on a read-only map).
    pub fn fetch_max(&self, i: usize, v: u64) {
        if self.writable() {
            self.word(i).fetch_max(v, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Adds `v` to the word at index `i` (nothing on a read-only map).
    pub fn fetch_add(&self, i: usize, v: u64) {
        if self.writable() {
            self.word(i).fetch_add(v, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// # Panics
    /// If `i` lies outside the words: indices are compile-time constants of the lock file layout.
    #[allow(clippy::cast_ptr_alignment)] // the map is page-aligned: see SAFETY below
    fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        let bytes: &[u8] = match &self.backing {
            Backing::Write(map) => map,
            Backing::Read(map) => map,
            Backing::Local(words) => {
                return words.get(i).unwrap_or_else(|| panic!("word {i} outside the shared words"))
            }
        };
        assert!((i + 1) * 8 <= bytes.len(), "word {i} outside the shared map");
        // SAFETY: the map is page-aligned, so `8 * i` is 8-byte aligned; the word lies inside
        // the map (checked above) and lives as long as `self`. The bytes are only ever accessed
        // through atomics, by this and other processes (x86-64 and aarch64 atomics are coherent
        // across processes sharing a page), so no non-atomic access races with them. A
        // read-only map is only ever loaded from, relaxed (`load`), which is allowed on
        // read-only memory; `store` and `fetch_max` never touch it.
        unsafe { &*(bytes.as_ptr().add(i * 8).cast::<std::sync::atomic::AtomicU64>()) }
    }
}

/// Starts writeback of `len` bytes of `file` from `offset` (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`): returns once the kernel has queued them, without waiting for the
/// disk, and makes nothing durable by itself.
pub fn start_writeback(file: &File, path: &Path, offset: u64, len: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(Error::internal(format!(
            "writeback range {offset}+{len} of {} is past i64",
            path.display()
        )));
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the call reads no memory.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    if rc != 0 {
        return Err(Error::io("sync_file_range", path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes a file and syncs its directory.
pub fn remove_synced(path: &Path, dir: &Path) -> Result<()> {
    if !crate::fs::file::remove(path)? {
        return Err(Error::io("remove", path, std::io::ErrorKind::NotFound.into()));
    }
    sync_dir(dir)
}

/// Lists the names of the entries of a directory.
pub fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Refuses filesystems on which memory maps and file locks are unreliable.
pub fn check_local_filesystem(dir: &Path) -> Result<()> {
    let stat = rustix::fs::statfs(dir).map_err(|e| Error::io("statfs", dir, e.into()))?;
    #[allow(clippy::cast_sign_loss)] // a magic number: its bits matter, not its sign
    let magic = stat.f_type as u64;
    match network_filesystem_name(magic) {
        Some(fs) => Err(Error::NetworkFilesystem { path: dir.to_owned(), fs }),
        None => Ok(()),
    }
}

/// Names the network filesystem with this `statfs` magic number, if it is one.
#[must_use]
pub fn network_filesystem_name(magic: u64) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "NFS",
        0x517B => "SMB",
        0xFF53_4D42 => "CIFS",
        0xFE53_4D42 => "SMB2",
        0x5346_414F => "AFS",
        0x00C3_6400 => "Ceph",
        0x0102_1997 => "9P",
        0x0BD0_0BD0 => "Lustre",
        0x4741_5346 => "GlusterFS",
        _ => return None,
    })
}

/// The current boot's identity (`/proc/sys/kernel/random/boot_id`) as the storage holding
/// `dir` sees it ([`crate::fs::Storage::boot_id`]), used to tell a store whose last writer died
/// with the machine from one whose writers merely exited. All zero if unknown, which makes every
/// open recover from the segments.
#[must_use]
pub fn boot_id(dir: &Path) -> [u8; 16] {
    crate::fs::file::boot_id(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writeback_is_started_for_written_bytes_and_failures_name_the_file() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.write_all_at(&vec![1u8; 1 << 20], 0).unwrap();
        start_writeback(&file, &path, 0, 1 << 20).unwrap();
        let (_, writer) = std::io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(writer));
        let err = start_writeback(&pipe, Path::new("a-pipe"), 0, 1).unwrap_err().to_string();
        assert!(err.contains("sync_file_range") && err.contains("a-pipe"), "{err}");
        let err = start_writeback(&file, &path, u64::MAX, 1).unwrap_err().to_string();
        assert!(err.contains("writeback range"), "{err}");
    }

    #[test]
    fn network_filesystems_are_recognised() {
        assert_eq!(network_filesystem_name(0x6969), Some("NFS"));
        assert_eq!(network_filesystem_name(0xFF53_4D42), Some("CIFS"));
        assert_eq!(network_filesystem_name(0xFE53_4D42), Some("SMB2"));
        assert_eq!(network_filesystem_name(0xEF53), None, "ext4 is local");
        assert_eq!(network_filesystem_name(0x5846_5342), None, "xfs is local");
    }

    #[test]
    fn local_directory_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        check_local_filesystem(dir.path()).unwrap();
    }

    #[test]
    fn zero_range_keeps_length_and_zeroes() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = crate::fs::open_or_create(&path, false).unwrap();
        preallocate(&f, &path, 8192).unwrap();
        f.write_all_at(&[7u8; 8192], 0).unwrap();
        zero_range(&f, &path, 100, 5000).unwrap();
        let mut buf = vec![0u8; 8192];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(file_len(&f, &path).unwrap(), 8192);
        assert!(buf[..100].iter().all(|&b| b == 7));
        assert!(buf[100..5000].iter().all(|&b| b == 0));
        assert!(buf[5000..].iter().all(|&b| b == 7));
    }
}
