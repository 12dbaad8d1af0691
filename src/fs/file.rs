//! The store's file operations as the rest of the crate calls them: each goes through the
//! [`Storage`](super::Storage) that holds the file ([`super::storage`]) and fails with an
//! [`Error::Io`] that names the operation and the file.

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::{Mmap, MmapMut};

use super::storage::{with, OpenMode};
use crate::error::{Error, Result};

/// Opens an existing file for reading only.
pub(crate) fn open_read(path: &Path) -> Result<File> {
    with(path, |s| s.open(path, OpenMode::Read)).map_err(|e| Error::io("open", path, e))
}

/// Opens an existing file for reading and writing.
pub(crate) fn open_rw(path: &Path) -> Result<File> {
    with(path, |s| s.open(path, OpenMode::ReadWrite)).map_err(|e| Error::io("open", path, e))
}

/// Writes `bufs` one after another from `offset`.
pub(crate) fn write_vectored_at(file: &File, path: &Path, bufs: &[&[u8]], offset: u64) -> Result<()> {
    with(path, |s| s.write_at(file, path, bufs, offset)).map_err(|e| Error::io("pwritev", path, e))
}

/// Writes `buf` at `offset`.
pub(crate) fn write_at(file: &File, path: &Path, buf: &[u8], offset: u64) -> Result<()> {
    with(path, |s| s.write_at(file, path, &[buf], offset)).map_err(|e| Error::io("write", path, e))
}

/// Gives `[0, len)` real blocks, extending the file if it is shorter.
pub(crate) fn preallocate(file: &File, path: &Path, len: u64) -> Result<()> {
    with(path, |s| s.allocate(file, path, 0, len, false)).map_err(|e| Error::io("fallocate", path, e))
}

/// Sets `[offset, end)` to zero without changing the file's length or leaving holes.
pub(crate) fn zero_range(file: &File, path: &Path, offset: u64, end: u64) -> Result<()> {
    if end <= offset {
        return Ok(());
    }
    with(path, |s| s.allocate(file, path, offset, end - offset, true))
        .map_err(|e| Error::io("fallocate(zero range)", path, e))
}

/// `fdatasync`: the file's data (and the metadata needed to read it) reach stable storage.
pub(crate) fn sync_data(file: &File, path: &Path) -> Result<()> {
    with(path, |s| s.sync(file, path, true)).map_err(|e| Error::io("fdatasync", path, e))
}

/// `fsync`: the file's data and all its metadata reach stable storage.
pub(crate) fn sync_all(file: &File, path: &Path) -> Result<()> {
    with(path, |s| s.sync(file, path, false)).map_err(|e| Error::io("fsync", path, e))
}

/// Syncs a directory (its entries: created, renamed, removed files).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    with(dir, |s| s.sync_dir(dir)).map_err(|e| Error::io("fsync directory", dir, e))
}

/// Renames `from` to `to`, replacing `to`.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    with(to, |s| s.rename(from, to, true)).map_err(|e| Error::io("rename", from, e))
}

/// Renames `from` to `to` unless `to` exists (`RENAME_NOREPLACE`); `false` if it does.
pub(crate) fn rename_new(from: &Path, to: &Path) -> Result<bool> {
    match with(to, |s| s.rename(from, to, false)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("rename", from, e)),
    }
}

/// Gives `from` the further name `to` unless `to` exists; `false` if it does.
pub(crate) fn link_new(from: &Path, to: &Path) -> Result<bool> {
    match with(to, |s| s.link(from, to)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("link", to, e)),
    }
}

/// Removes a file; `false` if it was not there.
pub(crate) fn remove(path: &Path) -> Result<bool> {
    match with(path, |s| s.remove(path)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Maps `len` bytes of `file` read-only.
pub(crate) fn map_read(file: &File, path: &Path, len: u64) -> Result<Mmap> {
    let len = map_len(path, len)?;
    with(path, |s| s.map_read(file, len)).map_err(|e| Error::io("mmap", path, e))
}

/// Maps `len` bytes of `file` for writing.
pub(crate) fn map_write(file: &File, path: &Path, len: u64) -> Result<MmapMut> {
    let len = map_len(path, len)?;
    with(path, |s| s.map_write(file, len)).map_err(|e| Error::io("mmap", path, e))
}

fn map_len(path: &Path, len: u64) -> Result<usize> {
    usize::try_from(len).map_err(|_| Error::InvalidArgument {
        name: "map length",
        reason: format!("{len} bytes of {} do not fit the address space", path.display()),
    })
}

/// The identity of the current boot as the storage holding `dir` sees it.
pub(crate) fn boot_id(dir: &Path) -> [u8; 16] {
    with(dir, |s| s.boot_id())
}

/// Writes a file from its start, in order, through the storage that holds it: an
/// `std::io::Write` for encoders (snapshots, cursors, the index, the recovery journal).
#[derive(Debug)]
pub(crate) struct FileWriter {
    file: File,
    path: std::path::PathBuf,
    at: u64,
}

impl FileWriter {
    /// Writes `file` (named `path`; a duplicate of its descriptor is kept) from byte `at`.
    pub(crate) fn new(file: &File, path: &Path, at: u64) -> Result<FileWriter> {
        let file = file.try_clone().map_err(|e| Error::io("dup", path, e))?;
        Ok(FileWriter { file, path: path.to_owned(), at })
    }

    /// The file written.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl io::Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        with(&self.path, |s| s.write_at(&self.file, &self.path, &[buf], self.at))?;
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
