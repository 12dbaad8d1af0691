//! What checking the files of a store finds: one [`Finding`] per problem, naming the file, the
//! byte offset and (for a record) the LSN, how serious it is ([`Severity`]) and what becomes of
//! it. The log's check of its own files (`crate::log::check_files`) and the whole store's
//! (`crate::coordinator::verify_store`) report them.

use std::path::PathBuf;

pub use crate::format::Damage;
use crate::types::Lsn;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Data the store needs does not check out: a record, a header, a snapshot, a cursor, the
    /// lock file. Reading it fails (or, for a snapshot, opening falls back to an older one).
    Corruption,
    /// Bytes or files the next writable open removes by itself (a torn tail above the durable
    /// watermark, never acknowledged as durable; a temporary file of a writer that died);
    /// `maos-coord log repair --apply` does it now.
    Repairable,
    /// Derived data (a segment's sparse index) that readers ignore when it does not check out
    /// and that is written again from the segment.
    Derived,
}

impl Severity {
    /// The severity's name in `snake_case`, as machine output shows it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Corruption => "corruption",
            Severity::Repairable => "repairable",
            Severity::Derived => "derived",
        }
    }
}

/// What kind of file a finding is about (log-format.md, "Directory layout").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// A log segment (`log/NNNNNNNNNNNNNNNNNNNN.seg`).
    Segment,
    /// A segment's sparse index (`log/….seg.idx`).
    Index,
    /// The lock file (`log/log.lock`).
    LockFile,
    /// The compacted-records file (`log/compacted.log`).
    CompactedRecords,
    /// A snapshot (`snapshots/NNNNNNNNNNNNNNNNNNNN.snap`).
    Snapshot,
    /// A durable subscription's cursor file (`cursors/….cursor`).
    Cursor,
    /// A temporary file a writer left (`….PID.N.tmp`).
    Temporary,
    /// The store as a whole (the snapshots together with the log: whether the store can be
    /// rebuilt at all).
    Store,
}

impl FileKind {
    /// The kind's name in `snake_case`, as machine output shows it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            FileKind::Segment => "segment",
            FileKind::Index => "index",
            FileKind::LockFile => "lock_file",
            FileKind::CompactedRecords => "compacted_records",
            FileKind::Snapshot => "snapshot",
            FileKind::Cursor => "cursor",
            FileKind::Temporary => "temporary",
            FileKind::Store => "store",
        }
    }
}

/// One problem with one file of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file (for [`FileKind::Store`], the snapshot directory).
    pub file: PathBuf,
    /// What the file is.
    pub kind: FileKind,
    /// Byte offset in the file where it stops checking out (the start of the range a checksum
    /// covers, when the checksum fails), when there is one place.
    pub offset: Option<u64>,
    /// The LSN of the record at that place, for records.
    pub lsn: Option<Lsn>,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong. For segments, the lock file and the compacted-records file, the message
    /// of the error every command reading that place fails with; for a snapshot, the reason
    /// opening gives when it skips it.
    pub message: String,
    /// What becomes of it, or what to do.
    pub remedy: String,
}

impl Finding {
    /// A finding of `severity` about `file` at `offset`.
    pub(crate) fn new(
        file: impl Into<PathBuf>,
        kind: FileKind,
        severity: Severity,
        offset: Option<u64>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Finding {
        Finding {
            file: file.into(),
            kind,
            offset,
            lsn: None,
            severity,
            message: message.into(),
            remedy: remedy.into(),
        }
    }

    /// The same finding about the record `lsn`.
    #[must_use]
    pub(crate) fn at_lsn(mut self, lsn: Lsn) -> Finding {
        self.lsn = Some(lsn);
        self
    }
}
