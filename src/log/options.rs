//! Options for opening a log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Log;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::{frame_len, FRAME_HEADER_LEN, MAX_SEGMENT_SIZE, SEGMENT_HEADER_LEN};
use crate::fs::StoreAccess;

/// When an append is acknowledged (log-format.md, "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged once the records are in the OS page cache: they survive the death of the
    /// process, not of the machine.
    Buffered,
    /// As `Buffered`, and a background thread syncs at most this long after an append: a crash
    /// of the machine loses at most this window.
    Flush(Duration),
    /// Acknowledged only once the records (and, for a new segment, its directory entry) are on
    /// stable storage. Concurrent callers share syncs (group commit).
    Sync,
}

/// What opening does with an invalid tail of the newest segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Cut off (zero) a torn tail and report it in the [`RecoveryReport`](crate::RecoveryReport).
    TruncateTornTail,
    /// Never cut anything: a torn tail is an [`Error::TornTail`].
    Strict,
}

/// Options for [`Log::options`]; finish with [`LogOptions::open`].
#[derive(Debug, Clone)]
// independent switches of an options builder, each set by its own method
#[allow(clippy::struct_excessive_bools)]
pub struct LogOptions {
    pub(crate) dir: PathBuf,
    pub(crate) segment_size: u64,
    pub(crate) max_record_size: u32,
    pub(crate) durability: Durability,
    pub(crate) recovery: RecoveryMode,
    pub(crate) wake_fallback: Duration,
    pub(crate) writeback_every: u64,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) reserved: std::ops::RangeInclusive<u16>,
    pub(crate) read_only: bool,
    pub(crate) access: StoreAccess,
    pub(crate) allow_insecure_permissions: bool,
    /// The caller (a coordinator) checked the permissions of the whole store already.
    pub(crate) permissions_checked: bool,
    /// Directories above the log's parent whose entries lead to the log (a coordinator's store
    /// and project root), synced with the log's own at the first writable open of a boot.
    pub(crate) name_dirs: Vec<PathBuf>,
    /// A read-only open works from the segment files alone, as after a reboot, even if the lock
    /// file is there (verifying a store whose lock file does not check out).
    pub(crate) ignore_lock_file: bool,
    /// Whether this handle keeps a zero-filled spare segment ready (`None`: no, the default).
    pub(crate) prefill: Option<bool>,
}

/// Default segment size, the largest a segment grows to: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Largest capacity of the first segment of a new store: 1 MiB. The first segment is a 64th of
/// the segment size, at least 8 KiB and at most this; each next segment is twice the one before,
/// up to the segment size.
pub const FIRST_SEGMENT_SIZE: u64 = 1 << 20;
/// Default bytes between requests to start writeback of the newest segment: 2 MiB.
pub const DEFAULT_WRITEBACK_EVERY: u64 = 2 << 20;
/// Default maximum payload size of one record: 1 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: u32 = 1 << 20;

impl LogOptions {
    pub(crate) fn new(dir: &Path) -> LogOptions {
        LogOptions {
            dir: dir.to_owned(),
            segment_size: DEFAULT_SEGMENT_SIZE,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            durability: Durability::Sync,
            recovery: RecoveryMode::TruncateTornTail,
            wake_fallback: Duration::from_millis(50),
            writeback_every: DEFAULT_WRITEBACK_EVERY,
            clock: crate::clock::system(),
            #[allow(clippy::reversed_empty_ranges)]
            reserved: 1..=0,
            read_only: false,
            access: StoreAccess::Private,
            allow_insecure_permissions: false,
            permissions_checked: false,
            name_dirs: Vec::new(),
            ignore_lock_file: false,
            prefill: None,
        }
    }

    /// Who may use the log's files besides their owner ([`StoreAccess`]): the mode of the log
    /// directory when this open creates it, and what [`Log::open`](crate::Log::open) accepts
    /// (it refuses a log directory, or a file in it, that someone else may write to:
    /// [`Error::InsecurePermissions`]). Default [`StoreAccess::Private`]. A coordinator passes the access
    /// recorded in its store.
    #[must_use]
    pub fn access(mut self, access: StoreAccess) -> LogOptions {
        self.access = access;
        self
    }

    /// Directories above the log's parent that lead to it, synced with its own (see
    /// [`LogOptions::name_dirs`](LogOptions)).
    pub(crate) fn name_dirs(mut self, dirs: Vec<PathBuf>) -> LogOptions {
        self.name_dirs = dirs;
        self
    }

    /// The caller checked the permissions of the whole store (a coordinator).
    pub(crate) fn permissions_checked(mut self) -> LogOptions {
        self.permissions_checked = true;
        self
    }

    /// Open even if someone the access does not allow may write to the log's files (default
    /// false). Such a log may hold records nobody of its owner wrote.
    #[must_use]
    pub fn allow_insecure_permissions(mut self, allow: bool) -> LogOptions {
        self.allow_insecure_permissions = allow;
        self
    }

    /// The largest size of a segment file (preallocated). Default 64 MiB; a multiple of 4096.
    /// A new store starts with a segment of a 64th of this size (at least 8 KiB, at most 1 MiB:
    /// [`FIRST_SEGMENT_SIZE`]), and each next segment is twice the one before (or as large as
    /// the batch that opens it needs) up to this size, so that a small store stays small on
    /// disk.
    #[must_use]
    pub fn segment_size(mut self, bytes: u64) -> LogOptions {
        self.segment_size = bytes;
        self
    }

    /// Largest payload of one record. Default 1 MiB; must fit a segment.
    #[must_use]
    pub fn max_record_size(mut self, bytes: u32) -> LogOptions {
        self.max_record_size = bytes;
        self
    }

    /// Whether this handle keeps the next segment ready, written with zeros and synced, on a
    /// thread of its own (log-format.md, "Spare segment"): a `Sync` append then overwrites
    /// blocks that are already written, and its `fdatasync` commits no extent metadata. Default:
    /// off (zero-filling writes every segment twice, which only an `fdatasync` per append pays
    /// back; and the thread is not yet stopped when the last handle is dropped rather than
    /// closed while it makes a spare). A handle that prefills also zero-fills the first segment
    /// of a store it creates. Any appender rolling over takes a spare that is ready, whatever its
    /// own setting; [`Log::prepare_spare_segment`](crate::Log::prepare_spare_segment) makes one
    /// without the thread.
    #[must_use]
    pub fn prefill_segments(mut self, on: bool) -> LogOptions {
        self.prefill = Some(on);
        self
    }

    /// Whether this handle zero-fills segments ahead of need ([`LogOptions::prefill_segments`]).
    pub(crate) fn prefills(&self) -> bool {
        !self.read_only && self.prefill.unwrap_or(false)
    }

    /// Capacity of the first segment of a new store: a 64th of the segment size (a multiple of
    /// 4096), at least 8 KiB, at most [`FIRST_SEGMENT_SIZE`].
    pub(crate) fn first_segment_size(&self) -> u64 {
        (self.segment_size / 64 / 4096 * 4096).clamp(8192, FIRST_SEGMENT_SIZE).min(self.segment_size)
    }

    /// Capacity of the segment that follows one of `previous` bytes and opens with a batch of
    /// `batch` bytes: twice the previous one, at least what the batch needs, at most the segment
    /// size.
    pub(crate) fn next_segment_size(&self, previous: u64, batch: u64) -> u64 {
        let needed = (SEGMENT_HEADER_LEN as u64 + batch).next_multiple_of(4096);
        previous.saturating_mul(2).max(needed).min(self.segment_size)
    }

    /// When appends are acknowledged. Default [`Durability::Sync`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> LogOptions {
        self.durability = durability;
        self
    }

    /// What to do with a torn tail. Default [`RecoveryMode::TruncateTornTail`].
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> LogOptions {
        self.recovery = mode;
        self
    }

    /// How often a waiting reader looks for new records when no notification came (default
    /// 50 ms): the bound on the delay a missed file notification can cause.
    #[must_use]
    pub fn wake_fallback(mut self, interval: Duration) -> LogOptions {
        self.wake_fallback = interval;
        self
    }

    /// Every `bytes` written to a segment, the appender hands the full pages to a thread of the
    /// log that asks the kernel to start writing them to disk (`sync_file_range`), so that the
    /// sync sealing a full segment finds little left to write instead of holding up one append
    /// for the whole segment. Default 2 MiB; 0 turns it off. Durability is unchanged: nothing
    /// counts as durable on its account.
    #[must_use]
    pub fn writeback_every(mut self, bytes: u64) -> LogOptions {
        self.writeback_every = bytes;
        self
    }

    /// The clock that stamps records (default the system clock). Record times never go
    /// backwards: a batch gets `max(clock, time of the last record)`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> LogOptions {
        self.clock = clock;
        self
    }

    /// Record kinds the layer above owns: the public append functions of this handle refuse
    /// them ([`Error::ReservedKind`]), so nothing but that layer writes records it must be able
    /// to read. A coordinator reserves its kinds ([`crate::model::COORDINATION_KINDS`]) on the
    /// log of its store, and so does the command line. Default: none.
    #[must_use]
    pub fn reserve_kinds(mut self, kinds: std::ops::RangeInclusive<u16>) -> LogOptions {
        self.reserved = kinds;
        self
    }

    /// Open for reading only: nothing in the store is created, written, locked exclusively or
    /// removed, so that a user who may only read the files can read, dump and verify, and a
    /// check never changes what it checks. The directory must hold a store
    /// ([`Error::NoStore`] otherwise). A torn tail is left in place and reported in the
    /// [`RecoveryReport`](crate::RecoveryReport) (`read_only`, `torn`) rather than cut, and
    /// appends, syncs and compaction fail with [`Error::ReadOnly`]. While the lock file is
    /// readable and current, readers see other processes' appends as they are published;
    /// otherwise the log is the records found in the segment files when it was opened.
    #[must_use]
    pub fn read_only(mut self) -> LogOptions {
        self.read_only = true;
        self
    }

    /// Whether [`LogOptions::read_only`] was asked for.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Opens (creating if needed, unless [`LogOptions::read_only`]) and recovers the log.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for options out of range (segment size, a maximum record size that does not
    /// fit a segment, a zero flush interval); [`Error::NetworkFilesystem`] for a directory on a network
    /// filesystem; [`Error::InsecurePermissions`] for a directory or file others may write to (unless
    /// allowed); [`Error::NoStore`] for a read-only open of a directory without segment files.
    ///
    /// Recovery refuses what it may not repair: [`Error::CorruptLockFile`] or [`Error::UnsupportedVersion`]
    /// for the lock file, [`Error::CorruptHeader`] for the newest segment's header, [`Error::Corruption`] for
    /// a damaged record the durable watermark says was acknowledged (or, in a version-1 segment opened cold,
    /// one that an intact record follows), [`Error::TornTail`] for a torn tail in [`RecoveryMode::Strict`].
    /// [`Error::Io`] for any failed file operation.
    pub fn open(self) -> Result<Log> {
        Log::open_with(self)
    }

    /// The durability appends get.
    #[must_use]
    pub fn get_durability(&self) -> Durability {
        self.durability
    }

    /// Bytes a segment of [`LogOptions::segment_size`] offers to frames.
    pub(crate) fn usable_segment_bytes(&self) -> u64 {
        self.segment_size.saturating_sub(SEGMENT_HEADER_LEN as u64)
    }

    /// Refuses a log directory someone else may write to, unless allowed or checked already.
    pub(crate) fn check_permissions(&self) -> Result<()> {
        if self.allow_insecure_permissions || self.permissions_checked {
            return Ok(());
        }
        crate::fs::check(&self.dir, self.access, crate::fs::Owner::of(&self.dir)?)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |name, reason: String| Err(Error::InvalidArgument { name, reason });
        if !self.segment_size.is_multiple_of(4096) || !(8192..=MAX_SEGMENT_SIZE).contains(&self.segment_size)
        {
            return invalid(
                "segment size",
                format!("{} is not a multiple of 4096 from 8192 to 1 GiB", self.segment_size),
            );
        }
        let largest = frame_len(self.max_record_size as usize) as u64;
        if largest > self.usable_segment_bytes() {
            return invalid(
                "maximum record size",
                format!(
                    "a record of {} bytes ({} with its {FRAME_HEADER_LEN}-byte header) does not fit a segment of {} bytes",
                    self.max_record_size, largest, self.segment_size
                ),
            );
        }
        if let Durability::Flush(interval) = self.durability {
            if interval.is_zero() {
                return invalid("flush interval", "must be longer than zero".into());
            }
        }
        Ok(())
    }
}

/// The record kinds a log handle refuses to append ([`LogOptions::reserve_kinds`],
/// [`Log::with_reserved`](super::Log::with_reserved)): a set that a new handle can only grow,
/// so no handle made from one that refuses a kind accepts it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RefusedKinds(Vec<std::ops::RangeInclusive<u16>>);

impl RefusedKinds {
    /// Whether `kind` is refused.
    pub(crate) fn contains(&self, kind: u16) -> bool {
        self.0.iter().any(|range| range.contains(&kind))
    }

    /// These kinds and `more`.
    #[must_use]
    pub(crate) fn and(&self, more: std::ops::RangeInclusive<u16>) -> RefusedKinds {
        let mut kinds = self.0.clone();
        if !more.is_empty() {
            kinds.push(more);
        }
        RefusedKinds(kinds)
    }
}
