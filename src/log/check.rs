//! Checking every file of a log directory on its own, reading only: the lock file, each segment
//! (header, every frame, the end of a sealed one, its durable mark), each sparse index against
//! the frames it indexes, and the compacted-records file. Unlike [`Log::verify`](super::Log::verify),
//! which stops at the first problem, it goes on to the next file, so that one report names every
//! damaged file (`maos-coord verify`).

use std::path::{Path, PathBuf};

use super::compacted_file::{CompactedFile, COMPACTED_FILE};
use super::index::index_path;
use super::io;
use super::lock_file::{LOCK_FILE, LOCK_FILE_LEN, LOCK_MAGIC, LOCK_VERSION};
use super::{Log, LogOptions};
use crate::error::{Error, FrameError, Result};
use crate::finding::{FileKind, Finding, Severity};
use crate::format::index::IndexFile;
use crate::format::{self, decode_frame, Decoded, DurableMark, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::types::Lsn;

/// What reading a damaged record or header does to every command (the remedy of a finding of
/// [`Severity::Corruption`] in a segment).
const SEGMENT_REMEDY: &str = "every command that reads this place fails with this error; records \
    below the durable watermark are never cut: restore the file from a copy of the store";
const INDEX_REMEDY: &str = "readers ignore it and scan the segment instead; the next process that \
    reads the segment to its end with write access writes it again";

/// The files of a log directory and their bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Segment files.
    pub segments: u64,
    /// Their bytes (segments are preallocated: their full length, written or not).
    pub segment_bytes: u64,
    /// Sparse index files.
    pub index_files: u64,
    /// Their bytes.
    pub index_bytes: u64,
    /// Bytes of the compacted-records file (0 if there is none).
    pub compacted_bytes: u64,
    /// Bytes of the spare segment, zero-filled ahead of need (log-format.md, "Spare segment");
    /// 0 if there is none.
    pub spare_bytes: u64,
}

impl DiskUsage {
    /// Every byte counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.segment_bytes + self.index_bytes + self.compacted_bytes + self.spare_bytes
    }
}

impl Log {
    /// The log's files and their bytes, as the directory lists them now.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        disk_usage(self.dir())
    }
}

/// The files of the log directory `dir` and their bytes; a file removed while it is listed
/// counts as none.
pub(crate) fn disk_usage(dir: &Path) -> Result<DiskUsage> {
    let mut usage = DiskUsage::default();
    for name in io::list_dir(dir)? {
        let Ok(meta) = std::fs::metadata(dir.join(&name)) else { continue };
        if format::parse_segment_file_name(&name).is_some() {
            usage.segments += 1;
            usage.segment_bytes += meta.len();
        } else if name.strip_suffix(".idx").and_then(format::parse_segment_file_name).is_some() {
            usage.index_files += 1;
            usage.index_bytes += meta.len();
        } else if name == COMPACTED_FILE {
            usage.compacted_bytes = meta.len();
        } else if name == super::segment::SPARE_FILE {
            usage.spare_bytes = meta.len();
        }
    }
    Ok(usage)
}

/// What [`check_files`] found in a log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCheck {
    /// Every problem, file by file (segments in LSN order, each followed by its index).
    pub findings: Vec<Finding>,
    /// First LSN of the oldest segment, if there is one.
    pub first: Option<Lsn>,
    /// The next LSN, as the read-only open found it (`None` if it could not open the log).
    pub next: Option<Lsn>,
    /// The durable watermark the read-only open judged the newest segment against.
    pub durable: Option<Lsn>,
    /// Records read and checked in the segments.
    pub records: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes of the segment files (preallocated length).
    pub segment_bytes: u64,
    /// Index files checked.
    pub index_files: usize,
    /// Records of the compacted-records file, each checked.
    pub compacted_records: u64,
    /// Bytes of the compacted-records file (0 if there is none).
    pub compacted_bytes: u64,
}

impl LogCheck {
    /// Whether any finding is [`Severity::Corruption`].
    #[must_use]
    pub fn corrupt(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Corruption)
    }
}

/// Checks every file of the log that `opts` opens (its directory, record size limit and access),
/// reading only: creates, writes and locks exclusively nothing. `progress` is called with the
/// bytes of each file once it is checked.
///
/// # Errors
/// [`Error::NoStore`] if the directory holds no segment; [`Error::Io`] if it cannot be read or
/// a file in it cannot be opened or mapped; [`Error::InsecurePermissions`] as a read-only open.
/// Damage is never an error: it is a [`Finding`].
pub fn check_files(opts: &LogOptions, progress: &mut dyn FnMut(u64)) -> Result<LogCheck> {
    let dir = opts.dir.clone();
    let mut check = LogCheck::default();
    let lock_damaged = check_lock_file(&dir, &mut check.findings)?;
    let mut read_only = opts.clone().read_only();
    read_only.ignore_lock_file = lock_damaged;
    match Log::open_with(read_only) {
        Ok(log) => {
            check.next = Some(log.next_lsn());
            check.durable = Some(log.durable_lsn());
            note_recovery(&log, &mut check.findings);
        }
        // The newest segment is then read until its frames end; the same damage found again
        // is reported once.
        Err(e) if e.kind() == crate::ErrorKind::Corruption => {
            check.findings.push(from_error(&e, SEGMENT_REMEDY));
        }
        Err(e) => return Err(e),
    }
    let names = io::list_dir(&dir)?;
    let mut bases: Vec<Lsn> = names.iter().filter_map(|n| format::parse_segment_file_name(n)).collect();
    bases.sort_unstable();
    check.first = bases.first().copied();
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(format::segment_file_name(base));
        let end = match bases.get(i + 1) {
            Some(&next_base) => End::Sealed(next_base),
            None => check.next.map_or(End::Unknown, End::Tail),
        };
        let len = check_segment(&dir, &path, base, end, opts.max_record_size, &mut check)?;
        check.segments += 1;
        check.segment_bytes += len;
        progress(len);
    }
    for name in &names {
        let orphan = name
            .strip_suffix(".idx")
            .and_then(format::parse_segment_file_name)
            .filter(|base| bases.binary_search(base).is_err());
        if orphan.is_some() {
            check.findings.push(Finding::new(
                dir.join(name),
                FileKind::Index,
                Severity::Derived,
                None,
                "the index of a segment the log no longer holds",
                "ignored; it may be removed",
            ));
        }
    }
    check_compacted(&dir, opts.max_record_size, check.next, &mut check)?;
    progress(check.compacted_bytes);
    let mut seen = std::collections::HashSet::new();
    check.findings.retain(|f| seen.insert((f.file.clone(), f.offset, f.message.clone())));
    Ok(check)
}

/// Checks the lock file as opening the log does (length, magic, version); true if it does not
/// check out (a missing, empty or all-zero one is a new one, not damage).
fn check_lock_file(dir: &Path, findings: &mut Vec<Finding>) -> Result<bool> {
    let path = dir.join(LOCK_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) => {
            return Ok(false);
        }
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    if bytes.is_empty() || (bytes.len() == LOCK_FILE_LEN && !format::nonzero(&bytes)) {
        return Ok(false);
    }
    let version = bytes.get(8..16).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
    let (offset, error) = if bytes.len() != LOCK_FILE_LEN {
        let reason = format!("length {}, expected {LOCK_FILE_LEN}", bytes.len());
        (bytes.len().min(LOCK_FILE_LEN), Error::CorruptLockFile { path: path.clone(), reason })
    } else if bytes.get(..8) != Some(LOCK_MAGIC.as_slice()) {
        let reason = "bad magic (not a maos-coord lock file)".to_owned();
        (0, Error::CorruptLockFile { path: path.clone(), reason })
    } else if version != Some(LOCK_VERSION) {
        let found = version.map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX));
        let supported = u32::try_from(LOCK_VERSION).unwrap_or(u32::MAX);
        (8, Error::UnsupportedVersion { path: path.clone(), found, supported })
    } else {
        return Ok(false);
    };
    findings.push(Finding::new(
        path,
        FileKind::LockFile,
        Severity::Corruption,
        Some(offset as u64),
        error.to_string(),
        "every command that opens the store fails with this error; it holds no records: removing it \
         (with no process using the store) makes the next open rebuild it from the segments",
    ));
    Ok(true)
}

/// What the read-only open would repair: a torn tail, files of writers that died.
fn note_recovery(log: &Log, findings: &mut Vec<Finding>) {
    let report = log.recovery_report();
    if let Some(torn) = &report.torn {
        let what = if torn.removed_file {
            format!("a newest segment of {} bytes, shorter than its header", torn.bytes)
        } else {
            format!(
                "a torn tail: {} bytes at byte offset {} (LSN {} onwards) that are not a complete record, \
                 never acknowledged as durable",
                torn.bytes, torn.offset, torn.lsn
            )
        };
        findings.push(
            Finding::new(
                &torn.segment,
                FileKind::Segment,
                Severity::Repairable,
                Some(torn.offset),
                what,
                "cut by the next writable open (`maos-coord log repair --apply` cuts it now)",
            )
            .at_lsn(torn.lsn),
        );
    }
    for path in &report.removed {
        findings.push(Finding::new(
            path,
            FileKind::Temporary,
            Severity::Repairable,
            None,
            "a file a writer that died left behind",
            "removed by the next writable open (`maos-coord log repair --apply` removes it now)",
        ));
    }
}

/// Where the frames of a segment must end.
#[derive(Debug, Clone, Copy)]
enum End {
    /// A sealed segment: its last record is the one before the next segment's base, and only
    /// zero bytes follow it.
    Sealed(Lsn),
    /// The newest segment: every record below the published tail must be there.
    Tail(Lsn),
    /// The newest segment of a log that could not be opened (the open's error names it).
    Unknown,
}

/// Checks one segment and its index file; returns its length.
fn check_segment(
    dir: &Path,
    path: &Path,
    base: Lsn,
    end: End,
    max: u32,
    check: &mut LogCheck,
) -> Result<u64> {
    let file = io::open_read(path)?;
    let len = io::file_len(&file, path)?;
    let corrupt_header = |reason: String, offset: u64| {
        let error = Error::CorruptHeader { segment: path.to_owned(), reason };
        from_error(&error, SEGMENT_REMEDY).with_offset(offset)
    };
    if len < SEGMENT_HEADER_LEN as u64 {
        let reason = format!("only {len} of {SEGMENT_HEADER_LEN} header bytes");
        check.findings.push(corrupt_header(reason, len));
        return Ok(len);
    }
    let map = io::map_read(&file, path, len)?;
    match SegmentHeader::decode(&map) {
        Err(e) => {
            check.findings.push(corrupt_header(e.to_string(), 0));
            return Ok(len);
        }
        Ok(header) if header.base_lsn != base => {
            let reason = format!("header says base LSN {}, file name says {base}", header.base_lsn);
            check.findings.push(corrupt_header(reason, 0));
            return Ok(len);
        }
        Ok(_) => {}
    }
    let index = load_index(path, base, &mut check.findings);
    let mut walk =
        Walk { next: base, offset: SEGMENT_HEADER_LEN as u64, in_batch: false, index: index.as_ref(), at: 0 };
    let stop = match end {
        End::Sealed(stop) | End::Tail(stop) => stop,
        End::Unknown => Lsn(u64::MAX),
    };
    let result = walk.frames(&map, stop, max, check);
    let sealed = matches!(end, End::Sealed(_));
    let problem = match result {
        Err(problem) => Some(problem),
        Ok(()) if sealed => walk.sealed_end(&map).err(),
        Ok(()) => None,
    };
    let clean = problem.is_none();
    match problem {
        Some(Problem::Frame(offset, reason)) => {
            let error = Error::Corruption { segment: path.to_owned(), offset, lsn: walk.next, reason };
            check.findings.push(from_error(&error, SEGMENT_REMEDY));
        }
        Some(Problem::Missing(offset)) if !matches!(end, End::Unknown) => {
            let error = Error::SegmentGap {
                dir: dir.to_owned(),
                expected: walk.next,
                found: format!("{} ends before LSN {}", path.display(), walk.next),
            };
            check.findings.push(from_error(&error, SEGMENT_REMEDY).with_offset(offset).at_lsn(walk.next));
        }
        Some(Problem::Missing(_)) | None => {}
    }
    if sealed && clean {
        if let DurableMark::Damaged = DurableMark::read(map.get(..SEGMENT_HEADER_LEN).unwrap_or_default()) {
            let reason = "durable mark (bytes 40..52) fails its CRC".to_owned();
            check.findings.push(corrupt_header(reason, format::HDR_DURABLE_MARK as u64));
        }
    }
    if let Some((file, _)) = &index {
        check.index_files += 1;
        if !sealed {
            check.findings.push(Finding::new(
                index_path(path),
                FileKind::Index,
                Severity::Derived,
                None,
                "an index beside the newest segment, which is not sealed",
                "ignored; the next writable open removes it",
            ));
        } else if clean && file.end != (walk.next, walk.offset) {
            check.findings.push(Finding::new(
                index_path(path),
                FileKind::Index,
                Severity::Derived,
                Some(24),
                format!(
                    "says the segment ends before LSN {} at byte offset {}; it ends before LSN {} at byte offset {}",
                    file.end.0, file.end.1, walk.next, walk.offset
                ),
                INDEX_REMEDY,
            ));
        }
    }
    Ok(len)
}

/// The index file of the segment at `path`, if there is one that checks out; one that does not
/// is a finding.
fn load_index(path: &Path, base: Lsn, findings: &mut Vec<Finding>) -> Option<(IndexFile, PathBuf)> {
    let index = index_path(path);
    let bytes = match std::fs::read(&index) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            let message = format!("cannot be read: {e}");
            findings.push(Finding::new(
                &index,
                FileKind::Index,
                Severity::Derived,
                None,
                message,
                INDEX_REMEDY,
            ));
            return None;
        }
    };
    match IndexFile::check(&bytes, base) {
        Ok(file) => Some((file, index)),
        Err(damage) => {
            let message = format!("invalid index file: {}", damage.reason);
            findings.push(Finding::new(
                &index,
                FileKind::Index,
                Severity::Derived,
                Some(damage.offset),
                message,
                INDEX_REMEDY,
            ));
            None
        }
    }
}

/// Why the frames of a segment stopped checking out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// Bytes at this offset are not the frame expected there.
    Frame(u64, FrameError),
    /// The frames end (zero bytes) at this offset before the records the segment must hold.
    Missing(u64),
}

/// Walking the frames of one segment.
struct Walk<'a> {
    next: Lsn,
    offset: u64,
    in_batch: bool,
    /// The segment's index and its file, checked entry by entry against the frames.
    index: Option<&'a (IndexFile, PathBuf)>,
    /// The next index entry to meet.
    at: usize,
}

impl Walk<'_> {
    /// Reads frames until the record `stop` (or, for `Lsn(u64::MAX)`, until they end).
    fn frames(&mut self, map: &[u8], stop: Lsn, max: u32, check: &mut LogCheck) -> Result<(), Problem> {
        while self.next < stop {
            let rest = map.get(format::offset_index(self.offset)..).unwrap_or_default();
            match decode_frame(rest, self.next, max) {
                Decoded::Frame(frame) => {
                    self.index_entry(check);
                    check.records += 1;
                    check.payload_bytes += frame.payload.len() as u64;
                    self.in_batch = frame.batch_continues();
                    self.offset += frame.len as u64;
                    self.next = self.next.next();
                }
                Decoded::End if stop == Lsn(u64::MAX) => return Ok(()),
                Decoded::End => return Err(Problem::Missing(self.offset)),
                Decoded::Invalid(reason) => return Err(Problem::Frame(self.offset, reason)),
            }
        }
        Ok(())
    }

    /// Checks the index entry of the frame at the walk's position, if the index has one.
    fn index_entry(&mut self, check: &mut LogCheck) {
        let Some((file, path)) = self.index else { return };
        let Some(&(lsn, offset)) = file.entries.get(self.at) else { return };
        if lsn != self.next {
            return;
        }
        self.at += 1;
        if offset != self.offset {
            let at =
                (format::index::INDEX_HEADER_LEN + (self.at - 1) * format::index::INDEX_ENTRY_LEN) as u64;
            let message =
                format!("the entry of LSN {lsn} says byte offset {offset}; its frame is at {}", self.offset);
            check.findings.push(Finding::new(
                path,
                FileKind::Index,
                Severity::Derived,
                Some(at),
                message,
                INDEX_REMEDY,
            ));
            self.index = None; // one finding per index file
        }
    }

    /// A sealed segment ends after a complete batch, and only zero bytes follow.
    fn sealed_end(&self, map: &[u8]) -> Result<(), Problem> {
        if self.in_batch {
            return Err(Problem::Frame(self.offset, FrameError::IncompleteBatch));
        }
        let rest = map.get(format::offset_index(self.offset)..).unwrap_or_default();
        match rest.iter().position(|&b| b != 0) {
            Some(i) => Err(Problem::Frame(self.offset + i as u64, FrameError::TrailingGarbage)),
            None => Ok(()),
        }
    }
}

/// Checks the compacted-records file, if there is one: header, range, every frame, the count.
fn check_compacted(dir: &Path, max: u32, next: Option<Lsn>, check: &mut LogCheck) -> Result<()> {
    let path = dir.join(COMPACTED_FILE);
    let remedy = "audits (`history`, `maos-coord log dump`) and keyed compaction fail with this error; \
        the state does not depend on it";
    let file = match CompactedFile::open(dir, max) {
        Ok(None) => return Ok(()),
        Ok(Some(file)) => file,
        Err(e @ Error::CorruptHeader { .. }) => {
            check.compacted_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            check.findings.push(from_error(&e, remedy).with_offset(0).kind(FileKind::CompactedRecords));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    check.compacted_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    if let Some(next) = next {
        if let Err(e) = file.check_range(next) {
            check.findings.push(from_error(&e, remedy).with_offset(24).kind(FileKind::CompactedRecords));
            return Ok(());
        }
    }
    for record in file.records() {
        match record {
            Ok(_) => check.compacted_records += 1,
            Err(e) => {
                check.findings.push(from_error(&e, remedy).kind(FileKind::CompactedRecords));
                break;
            }
        }
    }
    Ok(())
}

/// A finding of [`Severity::Corruption`] from the error reading a place fails with: its file,
/// offset and LSN, and its message.
pub(crate) fn from_error(error: &Error, remedy: &str) -> Finding {
    let message = error.to_string();
    let (file, offset, lsn, kind) = match error {
        Error::Corruption { segment, offset, lsn, .. }
        | Error::UndecodableRecord { segment, offset, lsn, .. }
        | Error::TornTail { segment, offset, lsn, .. } => {
            (segment.clone(), Some(*offset), Some(*lsn), FileKind::Segment)
        }
        Error::CorruptHeader { segment, .. } => (segment.clone(), Some(0), None, FileKind::Segment),
        Error::CorruptLockFile { path, .. } => (path.clone(), None, None, FileKind::LockFile),
        Error::CorruptCursor { path, .. } => (path.clone(), None, None, FileKind::Cursor),
        Error::UnsupportedVersion { path, .. } => (path.clone(), None, None, FileKind::Segment),
        Error::SegmentGap { dir, expected, .. } => (dir.clone(), None, Some(*expected), FileKind::Segment),
        Error::NoUsableSnapshot { dir, first, .. } => (dir.clone(), None, Some(*first), FileKind::Store),
        other => (
            PathBuf::new(),
            None,
            None,
            if other.kind() == crate::ErrorKind::Corruption { FileKind::Store } else { FileKind::Segment },
        ),
    };
    let mut finding = Finding::new(file, kind, Severity::Corruption, offset, message, remedy);
    finding.lsn = lsn;
    finding
}

impl Finding {
    /// The same finding at `offset`.
    fn with_offset(mut self, offset: u64) -> Finding {
        self.offset = Some(offset);
        self
    }

    /// The same finding about a file of `kind`.
    fn kind(mut self, kind: FileKind) -> Finding {
        self.kind = kind;
        self
    }
}
