//! The storage layer: a segmented, checksummed, memory-mapped log that many processes append to.
//!
//! It knows bytes and LSNs, never what a record means. The byte format is log-format.md, whose
//! layouts the crate's `format` module encodes and decodes; the modules here follow it: `io` (the
//! log's file operations, through the I/O seam of [`crate::fs::Storage`]), `lock_file`,
//! `segment`, `scan`, `recovery`, `group` (group commit), `writer` (the append protocol),
//! `durability` and `reader`. ARCHITECTURE.md ("Layers", "The path of a command")
//! walks through them in the order an append meets them.

#[doc(hidden)]
pub mod fuzzing;

mod analysis;
mod audit;
mod check;
#[doc(hidden)]
pub mod compacted_file;
mod compaction;
mod durability;
mod group;
mod index;
mod io;
pub mod journal;
mod lock_file;
pub(crate) use lock_file::{create_lock_file, LOCK_FILE};
mod options;
mod reader;
mod recovery;
mod scan;
mod segment;
mod spare;
mod wake;
mod writeback;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};

pub use audit::AuditReader;
pub(crate) use check::from_error as finding_of;
pub use check::{check_files, DiskUsage, LogCheck};
pub use compaction::KeyedCompaction;
pub(crate) use io::network_filesystem_name;
pub use journal::JournalEntry;
pub(crate) use options::RefusedKinds;
pub use options::{Durability, LogOptions, RecoveryMode, DEFAULT_WRITEBACK_EVERY};
pub use reader::{LogReader, Record};
pub use recovery::{RecoveryReport, TornTailReport};
pub use writer::{fault, Appended};

use self::lock_file::LockFile;
use self::segment::Segment;
use crate::error::{Error, Result};
use crate::types::{Lsn, RecordKind};

/// An open log. Cheap to clone; every clone appends through the same group-commit queue.
///
/// Any number of processes may open the same directory and append at once: appends are
/// serialised by an OS file lock, and each appender first picks up what the others wrote.
///
/// # Closing
///
/// A log may run background threads: the flusher of [`Durability::Flush`], the append thread
/// that leads the group commits of async callers under [`Durability::Sync`], the early
/// writeback thread ([`LogOptions::writeback_every`]) and the `notify` crate's watcher of the
/// log directory ([`Log::wait_for`], [`Log::wait_durable`]). [`Log::close`] on the last handle
/// stops them and waits for them to end. Dropping the last handle (and the last reader made from
/// the log) also closes it: the durable mark is written (a failure is only logged), the `Flush`
/// thread is stopped and waited for, and the others (the append and writeback threads) notice
/// and end by themselves, soon but without anyone waiting for them.
///
/// The waits ([`Log::wait_for`], [`Log::wait_durable`]) are `async` and need a Tokio runtime
/// with its timer enabled (`enable_time` or `enable_all` on the builder): their timeout and the
/// `wake_fallback` look are Tokio timers.
#[derive(Clone)]
pub struct Log {
    shared: Arc<Shared>,
    /// Held by this handle and its clones only (readers hold `shared` alone), so the handle that
    /// takes it back from its `Arc` is the last one ([`Log::close`]).
    handles: Arc<Handles>,
    /// Kinds this handle refuses to append ([`LogOptions::reserve_kinds`], [`Log::with_reserved`]).
    reserved: options::RefusedKinds,
}

/// The token every handle of one log holds a share of (the `handles` field of [`Log`]).
struct Handles;

pub(crate) struct Shared {
    dir: PathBuf,
    opts: LogOptions,
    control: LockFile,
    /// Known segment files by base LSN; opened on first use.
    segments: RwLock<BTreeMap<Lsn, Option<Arc<Segment>>>>,
    writer: writer::Writer,
    recovery: RecoveryReport,
    flusher: durability::Flusher,
    spares: spare::Spares,
    appender: group::Appender,
    wake: wake::Wake,
}

impl Log {
    /// Options for opening the log in `dir` (created if missing).
    pub fn options(dir: impl AsRef<Path>) -> LogOptions {
        LogOptions::new(dir.as_ref())
    }

    /// Opens the log in `dir` with default options.
    ///
    /// # Errors
    /// As [`LogOptions::open`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        Log::options(dir).open()
    }

    /// Opens the log in `dir` for reading only, with default options otherwise: see
    /// [`LogOptions::read_only`].
    ///
    /// # Errors
    /// [`Error::NoStore`] if `dir` holds no segment file; corruption of the newest segment as a
    /// writable open reports it.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Log> {
        Log::options(dir).read_only().open()
    }

    fn open_with(opts: LogOptions) -> Result<Log> {
        opts.validate()?;
        let dir = opts.dir.clone();
        let (control, recovery) = if opts.read_only {
            let holds_segments = dir.is_dir()
                && io::list_dir(&dir)?.iter().any(|n| crate::format::parse_segment_file_name(n).is_some());
            if !holds_segments {
                return Err(Error::NoStore { dir });
            }
            io::check_local_filesystem(&dir)?;
            opts.check_permissions()?;
            let lock = if opts.ignore_lock_file { None } else { LockFile::open_read_only(&dir)? };
            recovery::inspect(&dir, lock, &opts)?
        } else {
            crate::fs::create_dir(&dir, opts.access.dir_mode())?;
            io::check_local_filesystem(&dir)?;
            opts.check_permissions()?;
            let (control, _fresh) = LockFile::open(&dir)?;
            let recovery = {
                let _lock = control.adopt_lock();
                let recovery = recovery::recover(&dir, &control, &opts)?;
                sync_names(&dir, &control, &opts.name_dirs)?;
                recovery
            };
            (control, recovery)
        };
        let shared = Arc::new(Shared {
            segments: RwLock::new(BTreeMap::new()),
            writer: writer::Writer::new(),
            flusher: durability::Flusher::new(),
            spares: spare::Spares::new(),
            appender: group::Appender::new(),
            wake: wake::Wake::new(),
            dir,
            opts,
            control,
            recovery,
        });
        shared.refresh_segments()?;
        durability::Flusher::start(&shared);
        spare::Spares::start(&shared);
        let reserved = options::RefusedKinds::default().and(shared.opts.reserved.clone());
        Ok(Log { shared, handles: Arc::new(Handles), reserved })
    }

    /// A handle to this log that refuses to append records of the `kinds` with
    /// [`Error::ReservedKind`], besides those this handle refuses (a handle never accepts a kind
    /// the handle it was made from refuses): the layer that owns those kinds keeps this handle
    /// and hands the reserving one out.
    #[must_use]
    pub fn with_reserved(&self, kinds: std::ops::RangeInclusive<u16>) -> Log {
        Log { shared: self.shared.clone(), handles: self.handles.clone(), reserved: self.reserved.and(kinds) }
    }

    /// Fails with [`Error::ReadOnly`] if the log was opened read-only.
    fn writable(&self, what: &'static str) -> Result<()> {
        if self.shared.opts.read_only {
            Err(Error::ReadOnly { what, dir: self.shared.dir.clone() })
        } else {
            Ok(())
        }
    }

    /// Appends one record with the log's durability; returns its LSN.
    ///
    /// # Errors
    /// As [`Log::append_records`].
    pub fn append(&self, kind: RecordKind, payload: &[u8]) -> Result<Lsn> {
        Ok(self.append_batch(kind, &[payload])?.first)
    }

    /// Appends records of one kind as one atomic batch: after a crash either all of them are in
    /// the log or none is. They get consecutive LSNs.
    ///
    /// # Errors
    /// As [`Log::append_records`].
    pub fn append_batch<P: AsRef<[u8]>>(&self, kind: RecordKind, payloads: &[P]) -> Result<Appended> {
        self.append_records(payloads.iter().map(|p| (kind, p.as_ref())))
    }

    /// Appends records of mixed kinds as one atomic batch.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a log opened read-only; [`Error::RecordTooLarge`] for a payload over the
    /// maximum record size; [`Error::ReservedKind`] for a kind reserved by the layer above
    /// ([`LogOptions::reserve_kinds`]); [`Error::BatchTooLarge`] for a batch that does not fit one segment.
    /// Nothing is appended then.
    ///
    /// Writing fails with [`Error::Io`] (the lock file's lock, the newest segment's write, preallocation or
    /// sync, a new segment's creation), [`Error::CorruptHeader`] if the newest segment's header does not
    /// decode, and [`Error::TornTail`] in [`RecoveryMode::Strict`] when an appender that died left a torn
    /// write to cut; [`Error::Internal`] for a bug (the group commit that carried the batch lost it).
    pub fn append_records<'a>(
        &self,
        records: impl IntoIterator<Item = (RecordKind, &'a [u8])>,
    ) -> Result<Appended> {
        self.writable("append")?;
        let batch = self.encode_unreserved(records)?;
        group::append(&self.shared, batch)
    }

    /// As [`Log::append_records`], for the layer that owns the reserved kinds.
    pub(crate) fn append_owned_records<'a>(
        &self,
        records: impl IntoIterator<Item = (RecordKind, &'a [u8])>,
    ) -> Result<Appended> {
        self.writable("append")?;
        let batch = writer::Pending::encode(records, self.shared.opts.max_record_size)?;
        group::append(&self.shared, batch)
    }

    /// Encodes a batch of the public append functions: kinds reserved by the layer above are
    /// refused.
    fn encode_unreserved<'a>(
        &self,
        records: impl IntoIterator<Item = (RecordKind, &'a [u8])>,
    ) -> Result<writer::Pending> {
        let reserved = self.reserved.clone();
        let mut refused = None;
        let checked = records.into_iter().inspect(|(kind, _)| {
            if reserved.contains(kind.get()) && refused.is_none() {
                refused = Some(kind.get());
            }
        });
        let batch = writer::Pending::encode(checked, self.shared.opts.max_record_size)?;
        match refused {
            Some(kind) => Err(Error::ReservedKind { kind }),
            None => Ok(batch),
        }
    }

    /// Appends a batch that `build` makes while this process holds the append lock: `build` gets
    /// the tail LSN, and every record below it (from any process) is readable at that moment and
    /// nothing else is appended until `build` returns. This is compare-and-append: read what is
    /// new, decide, append, with no other appender in between. `build` returns the records (maybe
    /// none) and a value handed back to the caller, or an error, in which case nothing is
    /// appended. It runs on the thread leading the group commit and must not append itself.
    ///
    /// # Errors
    /// Whatever error `build` returns, and [`Error::ReservedKind`] if it returns a record of a reserved kind:
    /// nothing is appended then. Otherwise as [`Log::append_records`]; [`Error::Internal`] if `build` never
    /// ran (a bug).
    pub fn append_with<T, F>(&self, build: F) -> Result<(Appended, T)>
    where
        F: FnOnce(Lsn) -> Result<Built<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.writable("append")?;
        let (pending, value) = self.deferred(build);
        let appended = group::append(&self.shared, pending)?;
        Ok((appended, take_built(&value)?))
    }

    /// As [`Log::append_with`], for async callers (a thread of the log runs `build`).
    ///
    /// # Errors
    /// As [`Log::append_with`].
    pub async fn append_with_async<T, F>(&self, build: F) -> Result<(Appended, T)>
    where
        F: FnOnce(Lsn) -> Result<Built<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.writable("append")?;
        let (pending, value) = self.deferred(build);
        let appended = group::append_async(&self.shared, pending).await?;
        Ok((appended, take_built(&value)?))
    }

    fn deferred<T, F>(&self, build: F) -> (writer::Pending, Arc<Mutex<Option<T>>>)
    where
        F: FnOnce(Lsn) -> Result<Built<T>> + Send + 'static,
        T: Send + 'static,
    {
        let value = Arc::new(Mutex::new(None));
        let slot = value.clone();
        let max = self.shared.opts.max_record_size;
        let reserved = self.reserved.clone();
        let reserved = move |kind: u16| reserved.contains(kind);
        let pending = writer::Pending::deferred(Box::new(move |tail| {
            let built = build(tail)?;
            if let Some((kind, _)) = built.records.iter().find(|(k, _)| reserved(k.get())) {
                return Err(Error::ReservedKind { kind: kind.get() });
            }
            let batch = writer::Pending::encode(built.records.iter().map(|(k, p)| (*k, p.as_slice())), max)?;
            *lock(&slot) = Some(built.value);
            Ok(batch)
        }));
        (pending, value)
    }

    /// As [`Log::append_records`], for async callers: the task is never blocked on I/O; a
    /// background thread of the log leads the group commits of async callers.
    ///
    /// # Errors
    /// As [`Log::append_records`].
    pub async fn append_records_async<'a>(
        &self,
        records: impl IntoIterator<Item = (RecordKind, &'a [u8])>,
    ) -> Result<Appended> {
        self.writable("append")?;
        let batch = self.encode_unreserved(records)?;
        group::append_async(&self.shared, batch).await
    }

    /// As [`Log::append`], for async callers.
    ///
    /// # Errors
    /// As [`Log::append_records`].
    pub async fn append_async(&self, kind: RecordKind, payload: &[u8]) -> Result<Lsn> {
        Ok(self.append_records_async([(kind, payload)]).await?.first)
    }

    /// Waits until the log holds the record `lsn` (appended by any process), for at most
    /// `timeout`; true if it does. Appends in this process wake waiters at once, other processes'
    /// through file notifications; without them a waiter still looks every `wake_fallback`.
    pub async fn wait_for(&self, lsn: Lsn, timeout: std::time::Duration) -> bool {
        wake::wait_for(&self.shared, lsn, timeout).await
    }

    /// Waits until the record `lsn` is durable, that is until [`Log::durable_lsn`] is past
    /// `lsn`, for at most `timeout`; true if it is (at once if it already was), false if
    /// `timeout` passed first. It waits for whatever makes records durable: a [`Log::sync`], a
    /// `Sync` append or the [`Durability::Flush`] thread of this handle or its clones wakes it
    /// at once, by the same wake-ups as [`Log::wait_for`]. A sync by another process (or
    /// another [`Log::open`] of the directory) raises the watermark in the lock file without a
    /// notification, so it is seen at the next append notification or after at most
    /// `wake_fallback` ([`LogOptions::wake_fallback`]). It never syncs itself.
    pub async fn wait_durable(&self, lsn: Lsn, timeout: std::time::Duration) -> bool {
        wake::wait_durable(&self.shared, lsn, timeout).await
    }

    /// Makes the spare segment that is to follow the newest one, in this thread, unless it is
    /// there already (log-format.md, "Spare segment"): a file of the next segment's capacity,
    /// written with zeros and synced, that the appender rolling over renames into place, so
    /// that appends into it overwrite written blocks. A log that prefills
    /// ([`LogOptions::prefill_segments`]) does this on a thread of its own after each rollover;
    /// this is for a log that does not, and for tests. `true` if it made one.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a log opened read-only; [`Error::Io`] if the file cannot be
    /// written (the disk is full, say); [`Error::CorruptHeader`] if the newest segment's header
    /// does not decode.
    pub fn prepare_spare_segment(&self) -> Result<bool> {
        self.writable("prepare a spare segment")?;
        let newest = self.shared.control.tail().segment;
        let path = self.shared.dir.join(crate::format::segment_file_name(newest));
        let file = io::open_read(&path)?;
        let mut header = [0u8; crate::format::SEGMENT_HEADER_LEN];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut header, 0)
            .map_err(|e| Error::io("read header", &path, e))?;
        let capacity = crate::format::SegmentHeader::decode(&header)
            .map_err(|e| Error::CorruptHeader { segment: path.clone(), reason: e.to_string() })?
            .capacity;
        let wanted = self.shared.opts.next_segment_size(capacity, 0);
        segment::make_spare(&self.shared.dir, wanted, || self.shared.control.lock())
    }

    /// Waits until this log's spare segment thread has made the spares asked of it so far
    /// (returns at once if the log does not prefill): for tests and benchmarks that must not
    /// depend on its timing.
    pub fn wait_for_spare_segment(&self) {
        self.shared.spares.wait_idle();
    }

    /// Makes every record appended so far (by any process) durable; returns the durable
    /// watermark (every LSN below it is on stable storage).
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a log opened read-only; [`Error::Io`] if the newest segment cannot be opened or
    /// synced; [`Error::CorruptHeader`] if its header does not decode.
    pub fn sync(&self) -> Result<Lsn> {
        self.writable("sync")?;
        let tail = self.shared.control.tail_lsn();
        durability::sync_to(&self.shared, tail)?;
        Ok(self.shared.control.durable_lsn())
    }

    /// A reader positioned at `lsn` (which may equal [`Log::next_lsn`], to wait for new records).
    ///
    /// # Errors
    /// [`Error::Compacted`] for an LSN compaction removed; [`Error::LsnOutOfRange`] for LSN 0 or one past
    /// [`Log::next_lsn`]; [`Error::SegmentGap`] if the directory holds no segment file. Opening the segment
    /// that holds `lsn` fails with [`Error::Io`] or [`Error::CorruptHeader`], and reading up to `lsn` as
    /// [`LogReader::next`] does.
    pub fn reader_from(&self, lsn: Lsn) -> Result<LogReader> {
        LogReader::seek(self.shared.clone(), lsn)
    }

    /// Takes note that record `lsn` is at byte `offset` of the segment whose base LSN is
    /// `segment` (what [`LogReader::byte_position`] said, in this process or another): a
    /// reader for `lsn` or a later record of that segment starts there instead of scanning the
    /// segment from its last indexed position. `lsn` may be the next LSN, not written yet. A
    /// reader checks that a valid frame of `lsn` is at the position before it starts there, and
    /// forgets the position otherwise; true if the position was kept for that check.
    ///
    /// # Errors
    /// As [`Log::reader_from`] fails to find the segment.
    pub fn note_position(&self, lsn: Lsn, segment: Lsn, offset: u64) -> Result<bool> {
        if lsn > self.next_lsn() || lsn < self.first_lsn()? {
            return Ok(false);
        }
        let (base, found) = self.shared.segment_containing(lsn)?;
        if base == segment {
            found.hint(lsn, offset);
        }
        Ok(base == segment)
    }

    /// A reader positioned at the first record.
    ///
    /// # Errors
    /// As [`Log::first_lsn`] and [`Log::reader_from`].
    pub fn reader(&self) -> Result<LogReader> {
        self.reader_from(self.first_lsn()?)
    }

    /// LSN of the first record the log holds.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read; [`Error::SegmentGap`] if it holds no segment file.
    pub fn first_lsn(&self) -> Result<Lsn> {
        self.shared.first_lsn()
    }

    /// LSN the next appended record will get; every record below it is readable.
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        self.shared.control.tail_lsn()
    }

    /// Every record below this LSN is known to be on stable storage.
    #[must_use]
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.control.durable_lsn()
    }

    /// Segment syncs that failed in this boot, in any process, whose lost bytes were not written
    /// again yet (log-format.md, "Durability", "A failed sync"): 0 normally. While it is not 0,
    /// no sync makes anything durable; the next append, sync that can take the append lock, or
    /// writable open repairs. 0 for a lock file of another boot (or none).
    #[must_use]
    pub fn unrepaired_sync_failures(&self) -> u64 {
        let control = &self.shared.control;
        if !control.written_this_boot(io::boot_id(&self.shared.dir)) {
            return 0;
        }
        control.sync_failures().saturating_sub(control.sync_repaired())
    }

    /// What recovery found and did when this handle opened the log.
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.shared.recovery
    }

    /// Reads every record and segment the log holds, checking every checksum, header, LSN and
    /// the zero bytes after the last record of each sealed segment.
    ///
    /// # Errors
    /// The first problem found: as [`Log::reader`] and [`LogReader::next`] for the segments; as
    /// [`Log::audit_reader`] and [`AuditReader::next`] for the compacted-records file.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut reader = self.reader()?;
        let first = reader.position();
        let mut records = 0u64;
        let mut payload_bytes = 0u64;
        while let Some(record) = reader.next()? {
            records += 1;
            payload_bytes += record.payload.len() as u64;
        }
        let compacted = self.shared.compacted_file()?;
        let mut compacted_records = 0u64;
        if let Some(file) = &compacted {
            for record in file.records() {
                record?;
                compacted_records += 1;
            }
        }
        Ok(VerifyReport {
            compacted_records,
            first,
            next: reader.position(),
            records,
            payload_bytes,
            segments: read_lock(&self.shared.segments).len(),
        })
    }

    /// Removes (or, with `archive`, moves there) the oldest sealed segments whose records all lie
    /// below `limit`, oldest first, so that the log only ever loses a prefix; returns the files.
    /// The newest segment is never removed. Readers in other processes keep their maps of removed
    /// segments; a reader asking for a removed LSN gets [`Error::Compacted`].
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a log opened read-only; [`Error::Io`] if the compaction lock cannot be taken,
    /// the directory read, a file removed or moved, or a directory created or synced. The segments removed
    /// before a failure stay removed: the log then merely starts later.
    pub fn remove_segments_before(&self, limit: Lsn, archive: Option<&Path>) -> Result<Vec<PathBuf>> {
        self.writable("compaction")?;
        compaction::remove_segments_before(&self.shared, limit, archive)
    }

    /// Keyed compaction: like [`Log::remove_segments_before`], but first rewrites the
    /// compacted-records file to hold every record of its old contents and of the removed
    /// segments for which `keep` says yes (log-format.md, "Compacted records file"). The file is
    /// replaced atomically before any segment is removed, so a crash at any step loses nothing
    /// `keep` wanted. Dense readers ([`Log::reader_from`]) never see compacted records; read them
    /// with [`Log::audit_reader`].
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a log opened read-only; any error `keep` returns. Reading the old
    /// compacted-records file and the segments fails as [`Log::audit_reader`], [`AuditReader::next`] and
    /// [`LogReader::next`] do; writing the new file, or removing segments, with [`Error::Io`]. Before the new
    /// file is in place nothing is removed.
    pub fn compact_keyed(
        &self,
        limit: Lsn,
        archive: Option<&Path>,
        keep: impl FnMut(&Record<'_>) -> Result<bool>,
    ) -> Result<KeyedCompaction> {
        self.writable("compaction")?;
        compaction::compact_keyed(&self.shared, limit, archive, keep)
    }

    /// A reader over everything the store holds for audits: the records keyed compaction kept,
    /// then the log from the end of their range.
    ///
    /// # Errors
    /// [`Error::Io`] if the compacted-records file exists but cannot be opened or mapped;
    /// [`Error::CorruptHeader`] if its header does not decode, disagrees with its length, or its range ends
    /// past the log's end (the file is another store's).
    pub fn audit_reader(&self) -> Result<AuditReader> {
        AuditReader::open(self.shared.clone())
    }

    /// The LSN from which an [`AuditReader`] reads the log itself: the records it returns below
    /// it are those keyed compaction kept (with gaps), those from it on are every record of the
    /// log. The end of the compacted-records file's range, never before the log's first record.
    ///
    /// # Errors
    /// As [`Log::audit_reader`].
    pub fn audit_log_start(&self) -> Result<Lsn> {
        audit::log_start(&self.shared, self.shared.compacted_file()?.as_ref())
    }

    /// The latest `limit` entries of the recovery journal (log-format.md, "Recovery journal"),
    /// oldest first: what recovery in any process cut from the segment files, and when. Reads
    /// only.
    ///
    /// # Errors
    /// [`Error::Io`] if the journal exists but cannot be read.
    pub fn recovery_journal(&self, limit: usize) -> Result<Vec<JournalEntry>> {
        journal::read_latest(&self.shared.dir, limit)
    }

    /// Torn tails this handle cut while appending: bytes of appenders in other processes that
    /// died in the middle of a write (see log-format.md, "Appending").
    #[must_use]
    pub fn repairs(&self) -> Vec<TornTailReport> {
        self.shared.writer.repairs()
    }

    /// The log directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The options the log was opened with.
    #[must_use]
    pub fn opts(&self) -> &LogOptions {
        &self.shared.opts
    }

    /// Closes this handle: `Ok(())` once the log's background threads ended, or at once when
    /// other handles remain.
    ///
    /// When other handles of the log remain (clones of this one; a separate [`Log::open`] of the
    /// same directory is another log), this only drops this handle: the others go on appending
    /// and reading as before, and the last one to go closes the log.
    ///
    /// On the last handle, it stops the log's background threads and waits for each to end (see
    /// [Closing](Log#closing)): the [`Durability::Flush`] thread (a sync it is running finishes
    /// first), the append thread of async callers (after the group it was handed, if any), and
    /// the early writeback thread (after the ranges handed to it). The `notify` crate's watcher
    /// of the log directory is asked to stop but cannot be waited for; it is not one of the
    /// log's threads. Then, on a writable log where this process synced, it writes the newest
    /// segment's durable mark and syncs it, as dropping does (log-format.md, "Durable mark"), so
    /// that the mark covers every sync the threads made. Records not yet durable are not synced
    /// (under [`Durability::Buffered`] or [`Durability::Flush`]): call [`Log::sync`] first for
    /// that. Readers ([`LogReader`], [`AuditReader`]) made from the log keep reading after it.
    ///
    /// Called from a builder of [`Log::append_with_async`] (which runs on the append thread) on
    /// the last handle, it does not wait for the append thread itself, which ends after that
    /// group.
    ///
    /// # Errors
    /// Only on the last handle of a writable log, from the durable mark: [`Error::Io`] if the
    /// append lock cannot be taken, or the newest segment cannot be opened, written or synced;
    /// [`Error::CorruptHeader`] if its header does not decode. The threads have ended then too,
    /// the log is closed, and every record the durable watermark covered stays durable: only the
    /// mark, which says so after a power cut, is missing. Background flushes that failed earlier
    /// were logged (`tracing`) and are not returned.
    pub fn close(self) -> Result<()> {
        let Log { shared, handles, .. } = self;
        if Arc::into_inner(handles).is_none() {
            return Ok(()); // clones of this handle remain; the last one closes the log
        }
        shared.flusher.stop();
        shared.spares.stop();
        group::Appender::stop(&shared);
        shared.writer.writeback.stop();
        shared.wake.stop_watching();
        if shared.opts.read_only {
            return Ok(());
        }
        durability::mark_on_close(&shared)
    }
}

/// Syncs the directories that hold the log (its own, its parent, and `above`), once per boot:
/// they may have been made by an open that failed or died before it synced their names, and
/// they are made durable before anything in them is acknowledged (log-format.md, "Durability",
/// "Names before records"). The lock file's page records it for the boot it names. A directory
/// of `above` this user may enter but not read (a project root of mode 0711) cannot be synced
/// by them and is passed over: its owner synced the name in it when they made it. Append lock
/// held.
fn sync_names(dir: &Path, control: &LockFile, above: &[PathBuf]) -> Result<()> {
    let level = if above.is_empty() { 1 } else { 2 };
    if control.names_synced(level) {
        return Ok(());
    }
    io::sync_dir(dir)?;
    io::sync_dir(dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    for d in above {
        match io::sync_dir(d) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {}
            other => other?,
        }
    }
    control.note_names_synced(level);
    Ok(())
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.dir)
            .field("next_lsn", &self.next_lsn())
            .field("durable_lsn", &self.durable_lsn())
            .finish_non_exhaustive()
    }
}

/// What the builder of [`Log::append_with`] decided: records to append and a value for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built<T> {
    /// Records to append as one atomic batch (none is fine).
    pub records: Vec<(RecordKind, Vec<u8>)>,
    /// Handed back to the caller with the LSNs.
    pub value: T,
}

fn take_built<T>(value: &Mutex<Option<T>>) -> Result<T> {
    lock(value).take().ok_or_else(|| Error::internal("the builder of append_with did not run"))
}

/// What [`Log::verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// First LSN held.
    pub first: Lsn,
    /// LSN after the last record.
    pub next: Lsn,
    /// Records read and checked.
    pub records: u64,
    /// Payload bytes read.
    pub payload_bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Records in the compacted-records file (keyed compaction), each checked.
    pub compacted_records: u64,
}

impl Shared {
    /// Re-reads the directory for segment files (other processes create them).
    fn refresh_segments(&self) -> Result<()> {
        let mut found = BTreeMap::new();
        for name in io::list_dir(&self.dir)? {
            if let Some(base) = crate::format::parse_segment_file_name(&name) {
                found.insert(base, None);
            }
        }
        let mut segments = write_lock(&self.segments);
        for (base, slot) in &mut found {
            if let Some(Some(open)) = segments.get(base) {
                *slot = Some(open.clone());
            }
        }
        *segments = found;
        Ok(())
    }

    /// The compacted-records file, if there is one, with its range checked against the log.
    fn compacted_file(&self) -> Result<Option<compacted_file::CompactedFile>> {
        let file = compacted_file::CompactedFile::open(&self.dir, self.opts.max_record_size)?;
        if let Some(file) = &file {
            file.check_range(self.control.tail_lsn())?;
        }
        Ok(file)
    }

    fn first_lsn(&self) -> Result<Lsn> {
        if read_lock(&self.segments).is_empty() {
            self.refresh_segments()?;
        }
        read_lock(&self.segments).keys().next().copied().ok_or_else(|| Error::SegmentGap {
            dir: self.dir.clone(),
            expected: self.control.tail_segment(),
            found: "no segment files".into(),
        })
    }

    /// The segment that holds `lsn` (the one with the greatest base at or below it).
    fn segment_containing(&self, lsn: Lsn) -> Result<(Lsn, Arc<Segment>)> {
        let newest_known = read_lock(&self.segments).keys().next_back().copied();
        if newest_known < Some(self.control.tail_segment()) {
            self.refresh_segments()?;
        }
        let base = read_lock(&self.segments).range(..=lsn).next_back().map(|(b, _)| *b);
        match base {
            Some(base) => match self.segment(base) {
                Err(e) if is_not_found(&e) => {
                    // Removed by a compaction (perhaps in another process) since we last looked.
                    self.refresh_segments()?;
                    let first = self.first_lsn()?;
                    if lsn < first {
                        return Err(Error::Compacted { requested: lsn, first });
                    }
                    Ok((base, self.segment(base)?))
                }
                other => Ok((base, other?)),
            },
            None => Err(Error::LsnOutOfRange {
                requested: lsn,
                first: self.first_lsn()?,
                last: Lsn(self.control.tail_lsn().0.saturating_sub(1)),
            }),
        }
    }

    /// The segment starting at `base`, opened on first use.
    fn segment(&self, base: Lsn) -> Result<Arc<Segment>> {
        if let Some(Some(seg)) = read_lock(&self.segments).get(&base) {
            return Ok(seg.clone());
        }
        let seg = Arc::new(Segment::open(&self.dir, base, self.opts.read_only)?);
        let mut segments = write_lock(&self.segments);
        let slot = segments.entry(base).or_insert(None);
        Ok(slot.get_or_insert(seg).clone())
    }
}

impl Drop for Shared {
    /// Dropping the last handle (and reader) of the log: the durable mark as [`Log::close`]
    /// writes it, unless a close already did. A failure can only be logged here.
    fn drop(&mut self) {
        if !self.opts.read_only {
            if let Err(e) = durability::mark_on_close(self) {
                tracing::warn!(error = %e, "cannot record the durable mark");
            }
        }
    }
}

pub(crate) fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Starts a background thread of the log named `name` and returns once it runs. The thread
/// names itself as it starts, so from the return on it shows under its name (in
/// `/proc/<pid>/task/*/comm`, debuggers, profilers), never under its parent's.
///
/// # Errors
/// As [`std::thread::Builder::spawn`]: the thread could not be created.
pub(crate) fn spawn_started<F>(name: &str, body: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let (started, running) = std::sync::mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new().name(name.into()).spawn(move || {
        let _ = started.send(());
        body();
    })?;
    // Err only if the thread ended without sending, which it does first: it runs either way.
    let _ = running.recv();
    Ok(handle)
}

// Lock helpers: a panic while a lock is held leaves plain data behind (positions, maps), which
// stays valid, so poisoning is ignored rather than turned into a second panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_from_a_noted_position_keep_positions_so_later_seeks_start_near_their_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::options(dir.path()).durability(Durability::Buffered).open().unwrap();
        let kind = RecordKind::new(100).unwrap();
        let payload = vec![7u8; 1000];
        for _ in 0..200 {
            log.append(kind, &payload).unwrap();
        }
        // Where record 100 is, as a reader that wrote a snapshot there would say.
        let reader = log.reader_from(Lsn(100)).unwrap();
        let (segment, offset) = reader.byte_position().unwrap();
        drop(reader);
        let log = {
            log.close().unwrap();
            Log::options(dir.path()).durability(Durability::Buffered).open().unwrap()
        };
        assert!(log.note_position(Lsn(100), segment, offset).unwrap());
        let (base, found) = log.shared.segment_containing(Lsn(190)).unwrap();
        assert_eq!(base, segment);
        assert_eq!(found.hint_for(Lsn(190), Lsn::FIRST), Some((Lsn(100), offset)), "only the noted position");
        // A reader from there to the tail notes positions on its way...
        let mut reader = log.reader_from(Lsn(100)).unwrap();
        while reader.next().unwrap().is_some() {}
        // ...so a seek to a later record starts within one index interval of it.
        let (start, at) = found.hint_for(Lsn(190), Lsn::FIRST).unwrap();
        assert!(start > Lsn(100) && start <= Lsn(190), "{start}");
        let mut reader = log.reader_from(Lsn(190)).unwrap();
        let (_, there) = reader.byte_position().unwrap();
        assert!(there - at <= index::INDEX_INTERVAL + 1100, "{at} .. {there}");
        assert_eq!(reader.next().unwrap().unwrap().lsn, Lsn(190));
        // A position that is not a frame of its record is forgotten when a reader tries it.
        assert!(log.note_position(Lsn(150), segment, offset + 8).unwrap());
        assert_eq!(log.reader_from(Lsn(160)).unwrap().next().unwrap().unwrap().lsn, Lsn(160));
        assert_eq!(found.hint_for(Lsn(160), Lsn::FIRST), None);
    }

    #[test]
    fn close_returns_the_error_of_the_durable_mark() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::options(dir.path()).durability(Durability::Sync).open().unwrap();
        log.append(RecordKind::new(100).unwrap(), b"synced").unwrap();
        // The newest segment goes away under the log: the mark cannot be written.
        let base = log.shared.control.tail_segment();
        write_lock(&log.shared.segments).clear();
        std::fs::remove_file(dir.path().join(crate::format::segment_file_name(base))).unwrap();
        let err = log.close().unwrap_err();
        assert!(is_not_found(&err), "{err}");
    }

    #[test]
    fn close_on_a_clone_appends_on() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::options(dir.path()).durability(Durability::Sync).open().unwrap();
        let kind = RecordKind::new(100).unwrap();
        log.append(kind, b"1").unwrap();
        let clone = log.clone();
        log.close().unwrap();
        assert_eq!(clone.append(kind, b"2").unwrap(), Lsn::new(2));
        assert_ne!(
            clone.shared.writer.synced_segment.load(std::sync::atomic::Ordering::Acquire),
            0,
            "not marked yet"
        );
        clone.close().unwrap();
    }
}
