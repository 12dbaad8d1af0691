//! Verifying a whole store, reading only (`maos-coord verify`): the log's files
//! ([`crate::log::check_files`]: the lock file, every segment and its sparse index, the
//! compacted-records file), that every coordination record decodes (or a tombstone skips it),
//! every snapshot, every durable cursor file, and whether the snapshots cover what compaction
//! removed. Every problem is a [`Finding`] naming the file and
//! the byte offset; nothing stops at the first one.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::backend::BlobSpace;
use crate::error::{Error, Result};
use crate::finding::{FileKind, Finding, Severity};
use crate::format::cursor::CursorState;
use crate::fs::names;
use crate::log::{check_files, Log, LogCheck};
use crate::types::{Lsn, Timestamp};

/// How far [`verify_store`] is: bytes of files checked, of all it will check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyProgress {
    /// Bytes checked so far.
    pub done: u64,
    /// Bytes of every file it checks (segments, the compacted-records file, snapshots, cursors).
    pub total: u64,
}

/// One snapshot file, as [`verify_store`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// The file.
    pub path: PathBuf,
    /// The LSN its name gives.
    pub lsn: Lsn,
    /// Its length in bytes.
    pub bytes: u64,
    /// When it was written, if its header checks out.
    pub written: Option<Timestamp>,
    /// Whether opening the store could load it (it checks out, names its own LSN and is not
    /// ahead of the log).
    pub usable: bool,
}

/// One cursor file, as [`verify_store`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorFile {
    /// The file.
    pub path: PathBuf,
    /// The subscribing agent and the subscription's name.
    pub agent: String,
    /// The subscription's name.
    pub name: String,
    /// Its position, if it checks out.
    pub position: Option<Lsn>,
}

/// What [`verify_store`] checked and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReport {
    /// The store directory.
    pub store: PathBuf,
    /// The log's files: counts, positions, and the log's findings.
    pub log: LogCheck,
    /// Every snapshot file, newest first.
    pub snapshots: Vec<SnapshotFile>,
    /// Every cursor file, by agent and name.
    pub cursors: Vec<CursorFile>,
    /// Every finding: the log's, then the snapshots', the store's and the cursors'.
    pub findings: Vec<Finding>,
}

impl StoreReport {
    /// Whether any finding is [`Severity::Corruption`] (`maos-coord verify` exits with 3).
    #[must_use]
    pub fn corrupt(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Corruption)
    }

    /// How many files were checked: segments, index files, the lock file (if any), the
    /// compacted-records file (if any), snapshots and cursors.
    #[must_use]
    pub fn files(&self) -> usize {
        let log = &self.log;
        let lock = usize::from(self.store.join(names::LOG_DIR).join(crate::log::LOCK_FILE).exists());
        log.segments
            + log.index_files
            + lock
            + usize::from(log.compacted_bytes > 0)
            + self.snapshots.len()
            + self.cursors.len()
    }
}

const SNAPSHOT_REMEDY: &str = "opening the store skips it, falling back to an older snapshot or a full \
    replay of the log; remove it (`maos-coord snapshot` writes a new one)";
const CURSOR_REMEDY: &str = "its subscription (`events tail --cursor`) and compaction fail with this \
    error; removing the file starts the subscription again at the log's first record";

/// Checks every file of the store of the project at `root`, reading only: creates, writes,
/// removes and locks exclusively nothing, so it works on a store its user may only read. When
/// the segments check out, every coordination record is decoded too: one that does not decode
/// and that no tombstone skips is a finding ([`Error::UndecodableRecord`]'s message).
/// `progress` is called after each file.
///
/// # Errors
/// [`Error::NoStore`] if there is no store (or its log holds no segment);
/// [`Error::InsecurePermissions`] for a store others may write to, unless `allow_insecure`;
/// [`Error::Io`] if a directory or file cannot be read. Damage is never an error: it is a
/// [`Finding`] of the report.
pub fn verify_store(
    root: &Path,
    allow_insecure: bool,
    progress: &mut dyn FnMut(VerifyProgress),
) -> Result<StoreReport> {
    let store = super::store_dir(root);
    if !super::store::exists(&store)? {
        return Err(Error::NoStore { dir: store });
    }
    let access = super::checked_access(&store, allow_insecure)?;
    let opts = Log::options(store.join(names::LOG_DIR))
        .access(access)
        .allow_insecure_permissions(allow_insecure)
        .reserve_kinds(crate::model::COORDINATION_KINDS);
    let snapshot_files = files_in(&store.join(BlobSpace::Snapshots.name()), |n| snapshot_lsn(n).is_some())?;
    let cursor_files = files_in(&store.join(BlobSpace::Cursors.name()), |n| {
        crate::subscription::parse_cursor_name(n).is_some()
    })?;
    let mut done = VerifyProgress { done: 0, total: log_bytes(&opts)? };
    done.total += snapshot_files.iter().chain(&cursor_files).map(|(_, len)| len).sum::<u64>();
    let mut advance = |bytes: u64| {
        done.done = (done.done + bytes).min(done.total);
        progress(done);
    };
    let log = check_files(&opts, &mut advance)?;
    let mut findings = log.findings.clone();
    if !log.findings.iter().any(|f| f.kind == FileKind::Segment && f.severity == Severity::Corruption) {
        undecodable(&opts, &mut findings)?;
    }
    let mut snapshots = Vec::new();
    for (path, len) in snapshot_files.iter().rev() {
        snapshots.push(check_snapshot(path, *len, log.next, &mut findings));
        advance(*len);
    }
    check_coverage(&store, &log, &snapshots, &mut findings);
    let mut cursors = Vec::new();
    for (path, len) in &cursor_files {
        cursors.extend(check_cursor(path, log.next, &mut findings)?);
        advance(*len);
    }
    Ok(StoreReport { store, log, snapshots, cursors, findings })
}

/// Every coordination record that does not decode and that no tombstone skips (read only when
/// the segments check out: a reader stops at damage, which the log's check reported already).
/// The log is read from its segment files alone, as after a reboot: a damaged lock file is a
/// finding of its own, not a reason to stop.
fn undecodable(opts: &crate::LogOptions, findings: &mut Vec<Finding>) -> Result<()> {
    let mut opts = opts.clone().read_only();
    opts.ignore_lock_file = true;
    let log = opts.open()?;
    for u in super::find_unreadable(&log)?.into_iter().filter(|u| !u.skipped) {
        let (lsn, offset) = (u.lsn, u.offset);
        let error = Error::UndecodableRecord { lsn, segment: u.segment, offset, reason: u.reason };
        let remedy = "every command that reads it fails with this error; `maos-coord repair --apply` \
            records a tombstone that skips it, keeping its bytes";
        findings.push(crate::log::finding_of(&error, remedy));
    }
    Ok(())
}

/// The bytes the log's check reads: its segments and its compacted-records file.
fn log_bytes(opts: &crate::LogOptions) -> Result<u64> {
    let dir = &opts.dir;
    let files = files_in(dir, |n| {
        crate::format::parse_segment_file_name(n).is_some() || n == crate::log::compacted_file::COMPACTED_FILE
    })?;
    Ok(files.iter().map(|(_, len)| len).sum())
}

/// The files of `dir` whose names `wanted` takes, sorted by name, with their lengths; none if
/// the directory does not exist.
fn files_in(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<Vec<(PathBuf, u64)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if wanted(&name) {
            let path = entry.path();
            let len = entry.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
            out.push((path, len));
        }
    }
    out.sort();
    Ok(out)
}

/// The LSN a snapshot file name gives (`<20 digits>.snap`).
fn snapshot_lsn(name: &str) -> Option<Lsn> {
    let digits =
        name.strip_suffix(".snap").filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))?;
    digits.parse().ok().map(Lsn)
}

/// Checks one snapshot file as opening the store would load it.
fn check_snapshot(path: &Path, bytes: u64, next: Option<Lsn>, findings: &mut Vec<Finding>) -> SnapshotFile {
    let lsn = path.file_name().and_then(|n| n.to_str()).and_then(snapshot_lsn).unwrap_or(Lsn(0));
    let mut file = SnapshotFile { path: path.to_owned(), lsn, bytes, written: None, usable: false };
    let checked = std::fs::File::open(path)
        .map_err(|e| crate::finding::Damage::at(0, format!("cannot open it: {e}")))
        .and_then(|f| crate::snapshot::check_from(BufReader::with_capacity(1 << 20, f)));
    let (offset, reason) = match checked {
        Err(damage) => (damage.offset, damage.reason),
        Ok(checked) => {
            file.written = Some(checked.written);
            if checked.image.next_lsn != lsn {
                (16, format!("holds LSN {} but is named {lsn}", checked.image.next_lsn))
            } else if next.is_some_and(|next| lsn > next) {
                let limit = next.unwrap_or(lsn);
                (16, format!("is ahead of the log, which ends before LSN {limit}"))
            } else {
                file.usable = true;
                return file;
            }
        }
    };
    findings.push(Finding::new(
        path,
        FileKind::Snapshot,
        Severity::Corruption,
        Some(offset),
        reason,
        SNAPSHOT_REMEDY,
    ));
    file
}

/// Whether the store can be opened at all: a log that compaction shortened needs a usable
/// snapshot at or past its first record, as opening checks ([`Error::NoUsableSnapshot`]).
fn check_coverage(store: &Path, log: &LogCheck, snapshots: &[SnapshotFile], findings: &mut Vec<Finding>) {
    let Some(first) = log.first.filter(|first| *first > Lsn::FIRST) else { return };
    let newest = snapshots.iter().find(|s| s.usable).map(|s| s.lsn);
    if newest.is_some_and(|lsn| lsn >= first) {
        return;
    }
    let mut rejected: Vec<String> = findings
        .iter()
        .filter(|f| f.kind == FileKind::Snapshot)
        .map(|f| format!("{}: {}", f.file.display(), f.message))
        .collect();
    if let Some(lsn) = newest {
        rejected.push(format!("the newest usable snapshot ends at LSN {lsn}"));
    }
    let dir = store.join(BlobSpace::Snapshots.name());
    let error = Error::NoUsableSnapshot { dir, first, rejected };
    findings.push(crate::log::finding_of(&error, "every command that opens the store fails with this error"));
}

/// Checks one cursor file as its subscription reads it; `None` if it is gone.
fn check_cursor(path: &Path, next: Option<Lsn>, findings: &mut Vec<Finding>) -> Result<Option<CursorFile>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some((agent, sub)) = crate::subscription::parse_cursor_name(name) else { return Ok(None) };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let mut file = CursorFile { path: path.to_owned(), agent, name: sub, position: None };
    let (offset, reason) = match CursorState::check(&bytes) {
        Err(damage) => (damage.offset, damage.reason),
        Ok(state) if next.is_some_and(|next| state.position > next) => {
            let next = next.unwrap_or(state.position);
            (16, format!("position {} is past the end of the log (next LSN {next})", state.position))
        }
        Ok(state) => {
            file.position = Some(state.position);
            return Ok(Some(file));
        }
    };
    let message = Error::CorruptCursor { path: path.to_owned(), reason }.to_string();
    findings.push(Finding::new(
        path,
        FileKind::Cursor,
        Severity::Corruption,
        Some(offset),
        message,
        CURSOR_REMEDY,
    ));
    Ok(Some(file))
}
