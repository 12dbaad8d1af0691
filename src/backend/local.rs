//! The local directory as a backend: the file log ([`Log`]) and the blobs as files
//! ([`DirBlobs`]) in the store directory (log-format.md, "Directory layout").

use std::io::Write;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{
    BlobRead, BlobSpace, BlobStore, BlobWrite, BoxFuture, Build, Commit, LogBackend, RecordRead, Records,
    WriterLock,
};
use crate::error::{Error, Result};
use crate::fs::TempFile;
use crate::log::{Appended, AuditReader, Built, KeyedCompaction, Log, LogReader, Record};
use crate::types::Lsn;

impl RecordRead for LogReader {
    fn next(&mut self) -> Result<Option<Record<'_>>> {
        LogReader::next(self)
    }

    fn position(&self) -> Lsn {
        LogReader::position(self)
    }

    fn last_location(&self) -> (PathBuf, u64) {
        LogReader::last_location(self)
    }

    fn byte_position(&self) -> Option<(Lsn, u64)> {
        LogReader::byte_position(self)
    }
}

impl RecordRead for AuditReader {
    fn next(&mut self) -> Result<Option<Record<'_>>> {
        AuditReader::next(self)
    }

    fn position(&self) -> Lsn {
        AuditReader::position(self)
    }

    fn last_location(&self) -> (PathBuf, u64) {
        AuditReader::last_location(self)
    }
}

impl LogBackend for Log {
    fn next_lsn(&self) -> Lsn {
        Log::next_lsn(self)
    }

    fn first_lsn(&self) -> Result<Lsn> {
        Log::first_lsn(self)
    }

    fn durable_lsn(&self) -> Lsn {
        Log::durable_lsn(self)
    }

    fn max_record_size(&self) -> u32 {
        self.opts().max_record_size
    }

    fn note_position(&self, lsn: Lsn, (segment, offset): (Lsn, u64)) -> Result<()> {
        Log::note_position(self, lsn, segment, offset).map(drop)
    }

    fn reader_from(&self, lsn: Lsn) -> Result<Box<dyn RecordRead>> {
        Ok(Box::new(Log::reader_from(self, lsn)?))
    }

    fn audit_reader(&self) -> Result<Box<dyn RecordRead>> {
        Ok(Box::new(Log::audit_reader(self)?))
    }

    fn audit_log_start(&self) -> Result<Lsn> {
        Log::audit_log_start(self)
    }

    fn wait_for(&self, lsn: Lsn, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(Log::wait_for(self, lsn, timeout))
    }

    fn compare_and_append(&self, mut build: Build) -> BoxFuture<'_, Result<Appended>> {
        // The append lock makes the first call the last: nobody appends while `build` runs.
        Box::pin(async move {
            let (appended, ()) =
                self.append_with_async(move |tail| Ok(Built { records: build(tail)?, value: () })).await?;
            Ok(appended)
        })
    }

    fn append_records(&self, records: Records) -> Result<Appended> {
        Log::append_records(self, records.iter().map(|(kind, payload)| (*kind, payload.as_slice())))
    }

    fn discard_before(&self, limit: Lsn, archive: Option<&Path>) -> Result<Vec<PathBuf>> {
        self.remove_segments_before(limit, archive)
    }

    fn compact_keyed(
        &self,
        limit: Lsn,
        archive: Option<&Path>,
        keep: &mut dyn FnMut(&Record<'_>) -> Result<bool>,
    ) -> Result<KeyedCompaction> {
        Log::compact_keyed(self, limit, archive, keep)
    }

    fn reserving(&self, kinds: RangeInclusive<u16>) -> Arc<dyn LogBackend> {
        Arc::new(self.with_reserved(kinds))
    }

    fn close(self: Arc<Self>) -> Result<()> {
        match Arc::try_unwrap(self) {
            Ok(log) => Log::close(log),
            Err(_) => Ok(()), // another holder of this handle closes it
        }
    }

    fn as_local(&self) -> Option<&Log> {
        Some(self)
    }
}

/// Blobs as files of the store directory: each [`BlobSpace`] a directory (`snapshots/`,
/// `cursors/`), each blob a file, written to a temporary file beside it (locked while its
/// writer lives, [`crate::fs`]), synced, renamed into place (or hard-linked, for
/// [`Commit::New`]) and the directory synced.
#[derive(Debug)]
pub struct DirBlobs {
    store: PathBuf,
    /// Whether each space ([`BlobSpace::ordinal`]) was swept of dead writers' temporary files by
    /// this handle.
    swept: [AtomicBool; BlobSpace::ALL.len()],
    /// Whether this handle synced the store directory, which names each space's directory,
    /// since it first put a blob of that space in place.
    named: [AtomicBool; BlobSpace::ALL.len()],
}

impl DirBlobs {
    /// The blobs of the store directory `store` (`<root>/.maos/coordination`). Creates nothing:
    /// a space's directory is made with its first blob. Temporary files that writers killed
    /// mid-write left behind are removed when this handle first writes or reads their space, and
    /// whenever it lists it.
    #[must_use]
    pub fn new(store: &Path) -> DirBlobs {
        DirBlobs { store: store.to_owned(), swept: Default::default(), named: Default::default() }
    }

    /// Syncs the store directory once per handle and space, before the first blob of the space
    /// goes in: the space's directory may have been made by a writer whose sync of the store
    /// directory failed, or that died before it, and a blob is only durable once the name of its
    /// directory is.
    fn sync_names_once(&self, space: BlobSpace) -> Result<()> {
        let Some(named) = self.named.get(space.ordinal()) else { return Ok(()) };
        if !named.load(Ordering::Acquire) {
            crate::fs::sync_dir(&self.store)?;
            named.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Sweeps `space` unless this handle did already.
    fn sweep_once(&self, space: BlobSpace) -> Result<()> {
        let Some(swept) = self.swept.get(space.ordinal()) else { return Ok(()) };
        if !swept.load(Ordering::Acquire) {
            self.sweep_dead_writers(space)?;
            swept.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn dir(&self, space: BlobSpace) -> PathBuf {
        self.store.join(space.name())
    }

    /// The file of blob `name`: a name must be one file name (no `/`, not `.` or `..`).
    fn file(&self, space: BlobSpace, name: &str) -> Result<PathBuf> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(Error::InvalidArgument {
                name: "blob name",
                reason: format!("{name:?} is not one file name in {}", self.dir(space).display()),
            });
        }
        Ok(self.dir(space).join(name))
    }

    /// Removes the temporary files of writers of `space` that died mid-write (never those of a
    /// live writer); returns them.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read or a dead writer's file cannot be removed.
    pub fn sweep_dead_writers(&self, space: BlobSpace) -> Result<Vec<PathBuf>> {
        let dir = self.dir(space);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        crate::fs::sweep(&dir, |name| is_blob_temp(space, name))
    }
}

/// Whether `name` is a temporary file of a writer of a blob of `space`.
fn is_blob_temp(space: BlobSpace, name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    match space {
        BlobSpace::Snapshots => {
            let snapshot =
                |t: &str| t.strip_suffix(".snap").is_some_and(|lsn| lsn.len() == 20 && digits(lsn));
            // An earlier version named them `<snapshot>.<pid>.tmp`.
            let old = || {
                name.strip_suffix(".tmp")
                    .and_then(|n| n.rsplit_once('.'))
                    .is_some_and(|(target, pid)| snapshot(target) && digits(pid))
            };
            crate::fs::temp_target(name).is_some_and(snapshot) || old()
        }
        BlobSpace::Cursors => crate::fs::temp_target(name)
            .and_then(|t| t.strip_suffix(".cursor"))
            .and_then(|t| t.split_once('.'))
            .is_some_and(|(agent, name)| hex(agent) && hex(name)),
        BlobSpace::Index => crate::fs::temp_target(name)
            .is_some_and(|t| t.strip_suffix(".ent").is_some_and(|lsn| lsn.len() == 20 && digits(lsn))),
    }
}

/// A blob being written: its temporary file and how far it was written.
struct FileBlob {
    temp: TempFile,
    target: PathBuf,
    len: u64,
}

impl Write for FileBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::fs::file::write_at(self.temp.file(), self.temp.path(), buf, self.len).map_err(
            |e| match e {
                // The OS error itself: its kind (a full disk, ...) stays what it was.
                Error::Io { source, .. } => Arc::try_unwrap(source)
                    .unwrap_or_else(|shared| std::io::Error::new(shared.kind(), shared.to_string())),
                other => std::io::Error::other(other),
            },
        )?;
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BlobWrite for FileBlob {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        if offset + bytes.len() as u64 > self.len {
            return Err(Error::InvalidArgument {
                name: "offset",
                reason: format!(
                    "{} bytes at offset {offset} of {} run past the {} bytes written",
                    bytes.len(),
                    self.temp.path().display(),
                    self.len
                ),
            });
        }
        crate::fs::file::write_at(self.temp.file(), self.temp.path(), bytes, offset)
    }

    fn commit(self: Box<Self>, mode: Commit) -> Result<bool> {
        let FileBlob { temp, target, .. } = *self;
        match mode {
            Commit::Replace => temp.persist(&target).map(|()| true),
            Commit::New => temp.persist_new(&target),
        }
    }
}

impl BlobStore for DirBlobs {
    fn create(&self, space: BlobSpace, name: &str) -> Result<Box<dyn BlobWrite>> {
        let target = self.file(space, name)?;
        let dir = self.dir(space);
        crate::fs::create_subdir(&dir)?;
        self.sync_names_once(space)?;
        self.sweep_once(space)?;
        let temp = TempFile::create(&dir, name)?;
        Ok(Box::new(FileBlob { temp, target, len: 0 }))
    }

    fn open(&self, space: BlobSpace, name: &str) -> Result<Option<Box<dyn BlobRead>>> {
        self.sweep_once(space)?;
        let path = self.file(space, name)?;
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Some(Box::new(std::io::BufReader::with_capacity(1 << 16, file)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("open", &path, e)),
        }
    }

    fn map(&self, space: BlobSpace, name: &str) -> Result<Option<super::BlobBytes>> {
        self.sweep_once(space)?;
        let path = self.file(space, name)?;
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let meta = file.metadata().map_err(|e| Error::io("stat", &path, e))?;
        if !meta.is_file() {
            let kind = if meta.is_dir() {
                std::io::ErrorKind::IsADirectory
            } else {
                std::io::ErrorKind::InvalidInput
            };
            return Err(Error::io("map", &path, std::io::Error::new(kind, "not a regular file")));
        }
        let len = meta.len();
        if len == 0 {
            return Ok(Some(Arc::new(Vec::new())));
        }
        // Blobs are replaced by renaming a new file over the name, never written in place, so
        // the mapped file does not change under the map.
        Ok(Some(Arc::new(crate::fs::file::map_read(&file, &path, len)?)))
    }

    fn list(&self, space: BlobSpace) -> Result<Vec<String>> {
        // Every listing sweeps: snapshots are listed to prune them after each one is written.
        self.sweep_dead_writers(space)?;
        let dir = self.dir(space);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", &dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", &dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if crate::fs::temp_target(name).is_none() && !is_blob_temp(space, name) {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(names)
    }

    fn delete(&self, space: BlobSpace, name: &str) -> Result<bool> {
        let path = self.file(space, name)?;
        // Not there: someone else removed it.
        let removed = crate::fs::file::remove(&path)?;
        if removed {
            crate::fs::sync_dir(&self.dir(space))?;
        }
        Ok(removed)
    }

    fn sweep(&self, space: BlobSpace) -> Result<()> {
        self.sweep_dead_writers(space).map(drop)
    }

    fn try_lock_writer(&self, space: BlobSpace) -> Result<Option<WriterLock>> {
        let dir = self.dir(space);
        crate::fs::create_subdir(&dir)?;
        self.sync_names_once(space)?;
        let path = dir.join(crate::fs::names::SNAPSHOT_WRITER_LOCK);
        let file = crate::fs::open_or_create(&path, false)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(WriterLock { _file: Some(file) })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
    }

    fn sync_space(&self, space: BlobSpace) -> Result<()> {
        let dir = self.dir(space);
        if dir.is_dir() {
            crate::fs::sync_dir(&dir)?;
            crate::fs::sync_dir(&self.store)?;
        }
        Ok(())
    }

    fn location(&self, space: BlobSpace, name: &str) -> PathBuf {
        self.dir(space).join(name)
    }

    fn space_location(&self, space: BlobSpace) -> PathBuf {
        self.dir(space)
    }
}
