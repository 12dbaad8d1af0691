//! The store behind two traits (ARCHITECTURE.md, "Backends"): [`LogBackend`], the log of
//! records, and [`BlobStore`], where snapshots and durable cursors live. The coordinator, the
//! projections it folds, snapshots, subscriptions and compaction reach the store only through
//! them, so the same code runs on every implementation:
//!
//! | implementation | log | blobs |
//! |---|---|---|
//! | a local directory (the default) | [`Log`]: segment files, group commit, file lock | [`DirBlobs`]: files in `snapshots/` and `cursors/`, replaced by write-temp, sync, rename, sync the directory |
//! | in memory ([`memory`]) | a vector under a mutex | a map |
//!
//! The contract, which a distributed log such as a NATS `JetStream` stream also meets
//! (publishing with an expected last sequence is its compare-and-append):
//! - **LSNs are dense**: one per record, from [`Lsn::FIRST`], never reused.
//! - **Compare-and-append** ([`LogBackend::compare_and_append`]): a batch is appended only if the
//!   tail is still the one its builder saw, all of it or none of it.
//! - **Read from an LSN** ([`LogBackend::reader_from`]), **wait for an LSN**
//!   ([`LogBackend::wait_for`], woken by appends, not by polling), and a **durable watermark**
//!   ([`LogBackend::durable_lsn`]).
//! - **Blobs are replaced whole**: a reader sees the old contents or the new, never a mix.
//!   Every format kept in a blob carries its own length and CRC-32 checksum
//!   (log-format.md, "Snapshots", "Cursor files"), checked by its reader: a backend adds none.

mod local;
pub mod memory;

use std::future::Future;
use std::io::{Read, Seek, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::log::{Appended, KeyedCompaction, Log, Record};
use crate::types::{Lsn, RecordKind};

pub use local::DirBlobs;

/// A boxed future, as the traits' async methods return (the traits are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Records to append: each a kind and an encoded payload.
pub type Records = Vec<(RecordKind, Vec<u8>)>;

/// The builder of a compare-and-append: given the tail LSN (every record below it is readable),
/// it reads what it needs, decides, and returns the records to append (maybe none), or an error,
/// in which case nothing is appended. A backend may call it more than once, each time with a
/// newer tail, when another writer appended first; only the records of the last call are
/// appended.
pub type Build = Box<dyn FnMut(Lsn) -> Result<Records> + Send>;

/// Reads records in LSN order, lending each one (its payload borrows the reader).
pub trait RecordRead: Send {
    /// The next record, or `None` once the reader has caught up with the tail.
    ///
    /// # Errors
    /// [`Error::Compacted`](crate::Error::Compacted) if the records it was about to read were
    /// removed; [`Error::Corruption`](crate::Error::Corruption) (or another kind of the
    /// backend's) for damaged records, naming where they are.
    fn next(&mut self) -> Result<Option<Record<'_>>>;

    /// The LSN of the record [`RecordRead::next`] returns next.
    fn position(&self) -> Lsn;

    /// Where the record last returned is kept, for messages: a file and the byte offset of its
    /// frame there, on the local backend.
    fn last_location(&self) -> (PathBuf, u64);

    /// Where the record [`RecordRead::position`] names is, in the backend's terms, for
    /// [`LogBackend::note_position`] (locally: its segment's base LSN and a byte offset there);
    /// `None` if the backend has no use for it.
    fn byte_position(&self) -> Option<(Lsn, u64)> {
        None
    }
}

/// The log of a store. Handles are shared between threads; every method may be called from any
/// of them.
pub trait LogBackend: Send + Sync + 'static {
    /// The LSN the next appended record will get (one past the tail), as this handle last saw
    /// it: records below it are readable.
    fn next_lsn(&self) -> Lsn;

    /// The LSN of the first record the log still holds (compaction removes a prefix).
    ///
    /// # Errors
    /// As the backend's reads fail ([`Error::Io`](crate::Error::Io) locally).
    fn first_lsn(&self) -> Result<Lsn>;

    /// The durable watermark: every record below it survives a crash of the machine (a power
    /// cut locally, the loss of a minority of servers for a replicated stream).
    fn durable_lsn(&self) -> Lsn;

    /// The largest payload of one record, in bytes.
    fn max_record_size(&self) -> u32;

    /// Takes note that record `lsn` is at `position` (what a reader's
    /// [`RecordRead::byte_position`] said, kept in a snapshot): a later reader from `lsn` on may
    /// start there. A position that does not check out is ignored. The default ignores it.
    ///
    /// # Errors
    /// The backend's read errors.
    fn note_position(&self, lsn: Lsn, position: (Lsn, u64)) -> Result<()> {
        let _ = (lsn, position);
        Ok(())
    }

    /// A reader from `lsn` (at most [`LogBackend::next_lsn`]).
    ///
    /// # Errors
    /// [`Error::Compacted`](crate::Error::Compacted) if `lsn` lies before the log's first record;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if it lies past the tail; as the
    /// backend's reads fail.
    fn reader_from(&self, lsn: Lsn) -> Result<Box<dyn RecordRead>>;

    /// A reader from the log's first record.
    ///
    /// # Errors
    /// As [`LogBackend::first_lsn`] and [`LogBackend::reader_from`].
    fn reader(&self) -> Result<Box<dyn RecordRead>> {
        self.reader_from(self.first_lsn()?)
    }

    /// A reader over everything the store still holds, for audits: the records a keyed
    /// compaction kept, then the log (with gaps where compaction dropped records).
    ///
    /// # Errors
    /// As the backend's reads fail.
    fn audit_reader(&self) -> Result<Box<dyn RecordRead>>;

    /// The LSN from which [`LogBackend::audit_reader`] reads the log itself: the records it
    /// returns below it are those a keyed compaction kept (with gaps), those from it on are
    /// every record of the log, as [`LogBackend::reader_from`] reads them. By default the log's
    /// first LSN (a backend whose compaction keeps only records below it).
    ///
    /// # Errors
    /// As the backend's reads fail.
    fn audit_log_start(&self) -> Result<Lsn> {
        self.first_lsn()
    }

    /// Waits until the log holds the record `lsn` (appended by any writer) for at most
    /// `timeout`; true if it does. Appends wake waiters; nothing polls faster than a backend's
    /// fallback. Needs a Tokio runtime with its timer.
    fn wait_for(&self, lsn: Lsn, timeout: Duration) -> BoxFuture<'_, bool>;

    /// Compare-and-append: runs `build` against the tail and appends the records it returns as
    /// one atomic batch, only if no other writer appended in between (the backend retries with
    /// the newer tail otherwise). Acknowledged with this handle's durability.
    ///
    /// # Errors
    /// Whatever `build` returns (nothing is appended then); [`Error::ReservedKind`](crate::Error::ReservedKind)
    /// for a record of a kind this handle refuses ([`LogBackend::reserving`]);
    /// [`Error::RecordTooLarge`](crate::Error::RecordTooLarge) or
    /// [`Error::BatchTooLarge`](crate::Error::BatchTooLarge) for records past the limits; the
    /// backend's write errors.
    fn compare_and_append(&self, build: Build) -> BoxFuture<'_, Result<Appended>>;

    /// Appends `records` as one atomic batch, whatever the tail, blocking the calling thread
    /// until it is acknowledged (from async code, through `spawn_blocking`).
    ///
    /// # Errors
    /// As [`LogBackend::compare_and_append`].
    fn append_records(&self, records: Records) -> Result<Appended>;

    /// Appends one record, as [`LogBackend::append_records`]; returns its LSN.
    ///
    /// # Errors
    /// As [`LogBackend::append_records`].
    fn append(&self, kind: RecordKind, payload: &[u8]) -> Result<Lsn> {
        Ok(self.append_records(vec![(kind, payload.to_vec())])?.first)
    }

    /// Removes (or, with `archive`, moves there, where the backend has files) the oldest records,
    /// all below `limit`, so that the log only ever loses a prefix; returns what was removed, as
    /// the backend names it (segment files locally).
    ///
    /// # Errors
    /// As the backend's writes fail; [`Error::ReadOnly`](crate::Error::ReadOnly) on a read-only handle.
    fn discard_before(&self, limit: Lsn, archive: Option<&Path>) -> Result<Vec<PathBuf>>;

    /// Keyed compaction: as [`LogBackend::discard_before`], but keeps, readable by
    /// [`LogBackend::audit_reader`], every removed record for which `keep` says yes.
    ///
    /// # Errors
    /// As [`LogBackend::discard_before`]; any error `keep` returns (nothing is removed then).
    fn compact_keyed(
        &self,
        limit: Lsn,
        archive: Option<&Path>,
        keep: &mut dyn FnMut(&Record<'_>) -> Result<bool>,
    ) -> Result<KeyedCompaction>;

    /// A handle to the same log that refuses to append records of the `kinds` (with
    /// [`Error::ReservedKind`](crate::Error::ReservedKind)), besides those this handle refuses:
    /// a handle never accepts a kind the handle it was made from refuses. The layer that owns
    /// those kinds keeps this handle and hands out the reserving one, so nothing but that layer
    /// writes records it must be able to decode.
    fn reserving(&self, kinds: RangeInclusive<u16>) -> Arc<dyn LogBackend>;

    /// Releases this handle; if it was the last one, closes the log (stops its background work
    /// and records what must be recorded at close). Other handles keep working.
    ///
    /// # Errors
    /// The backend's, from what it records at close.
    fn close(self: Arc<Self>) -> Result<()>;

    /// The file log, when this is one: for tools that verify segment files or read the recovery
    /// report.
    fn as_local(&self) -> Option<&Log> {
        None
    }
}

/// What kind of blob a name lives among: each is a namespace of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlobSpace {
    /// Snapshots (log-format.md, "Snapshots"), named `<20-digit LSN>.snap`.
    Snapshots,
    /// Cursor files of durable subscriptions (log-format.md, "Cursor files").
    Cursors,
    /// Chunks of the audit index (log-format.md, "Audit index"), named `<20-digit LSN>.ent`:
    /// derived data, rebuilt from the log when missing or damaged.
    Index,
}

impl BlobSpace {
    /// The namespace's name: its directory in a local store.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            BlobSpace::Snapshots => crate::fs::names::SNAPSHOT_DIR,
            BlobSpace::Cursors => crate::fs::names::CURSOR_DIR,
            BlobSpace::Index => crate::fs::names::INDEX_DIR,
        }
    }

    /// Every space, in the order of their directories' creation.
    pub const ALL: [BlobSpace; 3] = [BlobSpace::Snapshots, BlobSpace::Cursors, BlobSpace::Index];

    /// Its position in [`BlobSpace::ALL`].
    #[must_use]
    pub fn ordinal(self) -> usize {
        self as usize
    }
}

/// How a written blob is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Replace whatever blob has the name.
    Replace,
    /// Put it in place only if no blob has the name (creation and filling are one step).
    New,
}

/// A blob being written: bytes written in order, then patched where needed (a header that
/// counts the body goes in last), then committed. Dropped without a commit, it leaves nothing.
pub trait BlobWrite: Write + Send {
    /// Overwrites bytes already written, from `offset`.
    ///
    /// # Errors
    /// The backend's write errors; [`Error::InvalidArgument`](crate::Error::InvalidArgument) if
    /// the range was not written yet.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;

    /// Makes the blob durable and puts it in place; returns false for [`Commit::New`] when a
    /// blob of the name exists (which stays as it was).
    ///
    /// # Errors
    /// The backend's write errors; nothing of this blob is in place then.
    fn commit(self: Box<Self>, mode: Commit) -> Result<bool>;
}

/// A blob being read.
pub trait BlobRead: Read + Seek + Send {}

impl<T: Read + Seek + Send> BlobRead for T {}

/// The whole of a blob, for reading at any offset: on the local directory a read-only map of
/// its file (pages are read from disk as reads touch them), elsewhere the bytes themselves.
pub type BlobBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Where snapshots, cursor positions and the other small files of a store live: named blobs in
/// namespaces, each replaced whole.
pub trait BlobStore: Send + Sync + 'static {
    /// Starts writing blob `name` of `space`.
    ///
    /// # Errors
    /// The backend's errors (locally [`Error::Io`](crate::Error::Io) naming the file).
    fn create(&self, space: BlobSpace, name: &str) -> Result<Box<dyn BlobWrite>>;

    /// Opens blob `name` of `space`; `None` if there is none.
    ///
    /// # Errors
    /// The backend's read errors.
    fn open(&self, space: BlobSpace, name: &str) -> Result<Option<Box<dyn BlobRead>>>;

    /// Blob `name` of `space`, whole, for reading at any offset; `None` if there is none. A
    /// blob is replaced whole, never changed in place, so the bytes stay what they were while
    /// they are held. The default reads the blob into memory.
    ///
    /// # Errors
    /// The backend's read errors.
    fn map(&self, space: BlobSpace, name: &str) -> Result<Option<BlobBytes>> {
        let Some(mut blob) = self.open(space, name)? else { return Ok(None) };
        let mut bytes = Vec::new();
        blob.read_to_end(&mut bytes).map_err(|e| Error::io("read", self.location(space, name), e))?;
        Ok(Some(Arc::new(bytes)))
    }

    /// The names of the blobs of `space`, in no order.
    ///
    /// # Errors
    /// The backend's read errors.
    fn list(&self, space: BlobSpace) -> Result<Vec<String>>;

    /// Removes blob `name` of `space`, durably; false if there was none.
    ///
    /// # Errors
    /// The backend's write errors.
    fn delete(&self, space: BlobSpace, name: &str) -> Result<bool>;

    /// Removes what writers of `space` that died mid-write left behind (temporary files, on
    /// the local directory; nothing where writers leave nothing).
    ///
    /// # Errors
    /// The backend's errors (locally [`Error::Io`](crate::Error::Io) if the directory cannot be
    /// read or a dead writer's file cannot be removed).
    fn sweep(&self, space: BlobSpace) -> Result<()>;

    /// Makes durable every blob of `space` a reader can see, and every removal: a writer
    /// whose commit failed after its blob became visible left it where a crash may take it
    /// back. Compaction calls this before it relies on what it read.
    ///
    /// # Errors
    /// The backend's write errors.
    fn sync_space(&self, space: BlobSpace) -> Result<()>;

    /// Takes the writer's lock of `space` if no other holder has it, without waiting: `None`
    /// if another process (or another handle of this one) holds it. The lock is advisory: it
    /// admits one *automatic* snapshot writer per store at a time (log-format.md, "Snapshots"),
    /// so that processes crossing the snapshot threshold together do not each decode the whole
    /// state and write the same snapshot. It is released when the guard is dropped, or when its
    /// holder dies. The default, for backends whose blobs live in one process, always grants it
    /// (each coordinator already writes one snapshot at a time).
    ///
    /// # Errors
    /// The backend's errors (locally [`Error::Io`](crate::Error::Io) naming the lock file if it
    /// cannot be created or locked for a reason other than another holder).
    fn try_lock_writer(&self, space: BlobSpace) -> Result<Option<WriterLock>> {
        let _ = space;
        Ok(Some(WriterLock { _file: None }))
    }

    /// Where blob `name` of `space` lives, for messages (its file, locally).
    fn location(&self, space: BlobSpace, name: &str) -> PathBuf;

    /// Where the blobs of `space` live, for messages (their directory, locally).
    fn space_location(&self, space: BlobSpace) -> PathBuf;
}

/// A held writer's lock of a blob space ([`BlobStore::try_lock_writer`]); released on drop.
#[derive(Debug)]
pub struct WriterLock {
    pub(crate) _file: Option<std::fs::File>,
}

/// A store's two halves: the log and the blobs. What a coordinator is opened on
/// ([`CoordinatorOptions::open_on`](crate::CoordinatorOptions::open_on)).
#[derive(Clone)]
pub struct Backend {
    /// The log, a handle able to append every kind (the coordinator appends its own records
    /// through it and hands out a [reserving](LogBackend::reserving) one).
    pub log: Arc<dyn LogBackend>,
    /// The snapshots and cursors.
    pub blobs: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("log", &self.log.as_local().map(Log::dir))
            .field("blobs", &self.blobs.space_location(BlobSpace::Snapshots))
            .finish()
    }
}
