//! Compaction (log-format.md, "Compaction"): removing a prefix of the log, one sealed segment at a
//! time (unlink or rename into an archive directory, then directory sync), optionally first
//! keeping chosen records of it in the compacted-records file. A crash at any step leaves a log
//! that opens and merely starts later. One compaction at a time per store (`compact.lock`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compacted_file::CompactedWriter;
use super::index::index_path;
use super::reader::Record;
use super::{io, read_lock, Shared};
use crate::error::{Error, Result};
use crate::types::Lsn;

/// What [`super::Log::compact_keyed`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyedCompaction {
    /// The log now starts here (records below it are in the compacted-records file or gone).
    pub new_start: Option<Lsn>,
    /// Records examined (the old compacted-records file and the removed segments).
    pub examined: u64,
    /// Records the compacted-records file now holds.
    pub kept: u64,
    /// Segment and index files removed or archived.
    pub removed: Vec<PathBuf>,
}

/// The exclusive compaction lock of a store, released on drop (closing the file releases it).
struct CompactLock {
    _file: File,
}

impl CompactLock {
    fn take(dir: &Path) -> Result<CompactLock> {
        let path = dir.join(crate::fs::names::COMPACT_LOCK);
        let file = crate::fs::open_or_create(&path, false)?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(CompactLock { _file: file })
    }
}

/// Where the log would start after removing the sealed segments wholly below `limit` (the base of
/// the first segment kept), or `None` if no segment qualifies.
fn new_start(shared: &Shared, limit: Lsn) -> Result<Option<Lsn>> {
    shared.refresh_segments()?;
    let bases: Vec<Lsn> = read_lock(&shared.segments).keys().copied().collect();
    let newest = shared.control.tail_segment();
    let mut start = None;
    for pair in bases.windows(2) {
        let [base, next] = pair else { break };
        if *next > limit || *base >= newest {
            break;
        }
        start = Some(*next);
    }
    Ok(start)
}

pub(super) fn remove_segments_before(
    shared: &Shared,
    limit: Lsn,
    archive: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    let _lock = CompactLock::take(&shared.dir)?;
    match new_start(shared, limit)? {
        Some(start) => remove_below(shared, start, archive),
        None => Ok(Vec::new()),
    }
}

pub(super) fn compact_keyed(
    shared: &Arc<Shared>,
    limit: Lsn,
    archive: Option<&Path>,
    mut keep: impl FnMut(&Record<'_>) -> Result<bool>,
) -> Result<KeyedCompaction> {
    let _lock = CompactLock::take(&shared.dir)?;
    let Some(start) = new_start(shared, limit)? else { return Ok(KeyedCompaction::default()) };
    let old = shared.compacted_file()?;
    let log_first = shared.first_lsn()?;
    let first = old.as_ref().map_or(log_first, |o| o.header().first.min(log_first));
    let mut out = CompactedWriter::create(&shared.dir, first)?;
    let mut examined = 0u64;
    if let Some(old) = &old {
        for record in old.records() {
            let record = record?;
            examined += 1;
            if keep(&record)? {
                out.push(&record)?;
            }
        }
    }
    // Records an interrupted compaction already moved into the old file are not read twice.
    let from = old.as_ref().map_or(log_first, |o| o.header().end.max(log_first));
    if from < start {
        let mut reader = super::reader::LogReader::seek(shared.clone(), from)?;
        while reader.position() < start {
            let Some(record) = reader.next()? else { break };
            examined += 1;
            if keep(&record)? {
                out.push(&record)?;
            }
        }
    }
    // A later limit than an interrupted compaction's never shrinks the compacted range.
    let end = old.as_ref().map_or(start, |o| o.header().end.max(start));
    drop(old);
    let kept = out.install(end)?;
    let removed = remove_below(shared, start, archive)?;
    Ok(KeyedCompaction { new_start: Some(start), examined, kept, removed })
}

/// Removes (or archives) every segment below `start`, oldest first.
fn remove_below(shared: &Shared, start: Lsn, archive: Option<&Path>) -> Result<Vec<PathBuf>> {
    if let Some(dir) = archive {
        crate::fs::create_dir(dir, shared.opts.access.dir_mode())?;
    }
    let bases: Vec<Lsn> = read_lock(&shared.segments).range(..start).map(|(b, _)| *b).collect();
    let mut removed = Vec::new();
    for (step, base) in (3..).zip(bases) {
        let path = shared.dir.join(crate::format::segment_file_name(base));
        for file in [index_path(&path), path.clone()] {
            match move_or_remove(&file, archive) {
                Ok(()) => removed.push(file),
                Err(e) if super::is_not_found(&e) => {} // another process removed it first
                Err(e) => return Err(e),
            }
        }
        // The archive first: a power cut in between then leaves a segment in both places,
        // never in neither.
        if let Some(dir) = archive {
            io::sync_dir(dir)?;
        }
        io::sync_dir(&shared.dir)?;
        super::writer::fault::compaction_step(step);
    }
    shared.refresh_segments()?;
    Ok(removed)
}

fn move_or_remove(file: &Path, archive: Option<&Path>) -> Result<()> {
    match archive {
        Some(dir) => {
            let name = file
                .file_name()
                .ok_or_else(|| Error::internal(format!("the segment {} has no file name", file.display())))?;
            crate::fs::file::rename(file, &dir.join(name))
        }
        None if crate::fs::file::remove(file)? => Ok(()),
        None => Err(Error::io("remove", file, std::io::ErrorKind::NotFound.into())),
    }
}
