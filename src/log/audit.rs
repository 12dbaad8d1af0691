//! Reading everything the store still holds, for audits: the records kept by keyed compaction
//! (the compacted-records file), then the log from where that file's range ends.

use std::cell::Cell;
use std::sync::Arc;

use super::compacted_file::{CompactedFile, Position};
use super::reader::{LogReader, Record};
use super::Shared;
use crate::error::Result;
use crate::types::Lsn;

/// Reads the compacted records and then the log, in LSN order (with gaps where compaction dropped
/// records). Like [`LogReader`], it lends each record.
pub struct AuditReader {
    shared: Arc<Shared>,
    compacted: Option<Compacted>,
    log: Option<LogReader>,
    /// Byte offset in the compacted-records file of the frame last returned from it.
    last_compacted: Option<u64>,
    /// The LSN after the record last returned from the compacted-records file.
    after_compacted: Lsn,
}

/// Where an audit reader reads the log itself from: after the range of the compacted-records file
/// `compacted`, never before the log's first record.
pub(super) fn log_start(shared: &Shared, compacted: Option<&CompactedFile>) -> Result<Lsn> {
    let first = shared.first_lsn()?;
    Ok(compacted.map_or(first, |c| c.header().end.max(first)))
}

struct Compacted {
    file: CompactedFile,
    at: Cell<Position>,
}

impl AuditReader {
    pub(super) fn open(shared: Arc<Shared>) -> Result<AuditReader> {
        let compacted = shared.compacted_file()?.map(|file| Compacted { at: file.start(), file });
        Ok(AuditReader { shared, compacted, log: None, last_compacted: None, after_compacted: Lsn::FIRST })
    }

    /// Where the log part starts: after the compacted range, never before the log's first record.
    fn log_start(&self) -> Result<Lsn> {
        log_start(&self.shared, self.compacted.as_ref().map(|c| &c.file))
    }

    /// Where the record last returned by [`AuditReader::next`] is: the compacted-records file or
    /// a segment, and the byte offset of its frame there.
    #[must_use]
    pub fn last_location(&self) -> (std::path::PathBuf, u64) {
        match (self.last_compacted, &self.log) {
            (Some(offset), _) => (self.shared.dir.join(super::compacted_file::COMPACTED_FILE), offset),
            (None, Some(reader)) => reader.last_location(),
            (None, None) => (self.shared.dir.clone(), 0),
        }
    }

    /// The LSN after the record last returned ([`Lsn::FIRST`] before the first): the next
    /// record is at or past it (compaction may have dropped records in between).
    #[must_use]
    pub fn position(&self) -> Lsn {
        self.log.as_ref().map_or(self.after_compacted, LogReader::position)
    }

    /// The next record, or `None` once the reader has caught up with the log's published tail.
    ///
    /// # Errors
    /// [`Error::Corruption`](crate::Error::Corruption) naming the compacted-records file and the byte offset,
    /// for a damaged record of that file, one outside its range or out of order, or a record count that
    /// disagrees with its header; past the file, as [`Log::reader_from`](super::Log::reader_from) and
    /// [`LogReader::next`].
    #[allow(clippy::should_implement_trait)] // lending: the record borrows the reader
    pub fn next(&mut self) -> Result<Option<Record<'_>>> {
        if let Some(c) = &self.compacted {
            let offset = c.at.get().offset();
            if let Some(record) = c.file.next(&c.at)? {
                self.last_compacted = Some(offset);
                self.after_compacted = record.lsn.next();
                return Ok(Some(record));
            }
        }
        self.last_compacted = None;
        if self.log.is_none() {
            let start = self.log_start()?;
            self.log = Some(LogReader::seek(self.shared.clone(), start)?);
        }
        match &mut self.log {
            Some(reader) => reader.next(),
            None => Ok(None),
        }
    }
}
