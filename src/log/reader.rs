//! Reading: iterate from any LSN through the read maps, seeking with the sparse index
//! (log-format.md, "Reading").

use std::sync::Arc;

use memmap2::Mmap;

use super::index::INDEX_INTERVAL;
use super::segment::Segment;
use super::Shared;
use crate::error::{Error, FrameError, Result};
use crate::format::{self, decode_frame, Decoded, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::types::{Lsn, RecordKind, Timestamp};

/// One record, its payload borrowed from the segment map (no copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its LSN.
    pub lsn: Lsn,
    /// When it was appended.
    pub timestamp: Timestamp,
    /// Its kind.
    pub kind: RecordKind,
    /// Its payload.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Bytes the record takes in the log: its frame, header and padding included
    /// (log-format.md, "Record frame").
    #[must_use]
    pub fn stored_len(&self) -> u64 {
        crate::format::frame_len(self.payload.len()) as u64
    }
}

/// Reads records in LSN order from a starting LSN. Readers never lock: they see every record
/// below the tail published when [`LogReader::next`] is called, from any process.
pub struct LogReader {
    shared: Arc<Shared>,
    segment: Arc<Segment>,
    map: Arc<Mmap>,
    offset: u64,
    next: Lsn,
    in_batch: bool,
    /// The next frame at or past this offset goes into the segment's sparse index.
    index_from: u64,
    /// The positions noted go to the segment's hint, where this reader started, not its index.
    noting_hint: bool,
    /// Base LSN of the current segment, when this reader knows it.
    segment_base: Option<Lsn>,
    /// Offset of the frame last returned, in the current segment.
    last_frame: u64,
}

/// Position and fields of a decoded frame; the payload is `map[start..end]`.
struct Found {
    lsn: Lsn,
    timestamp: Timestamp,
    kind: RecordKind,
    start: usize,
    end: usize,
}

impl LogReader {
    pub(crate) fn seek(shared: Arc<Shared>, lsn: Lsn) -> Result<LogReader> {
        let tail = shared.control.tail_lsn();
        let first = shared.first_lsn()?;
        if lsn < first && lsn >= Lsn::FIRST {
            return Err(Error::Compacted { requested: lsn, first });
        }
        if lsn < first || lsn > tail {
            return Err(Error::LsnOutOfRange { requested: lsn, first, last: Lsn(tail.0.saturating_sub(1)) });
        }
        let (segment_base, segment) = shared.segment_containing(lsn)?;
        let (mut start, mut offset) = segment.index_lookup(lsn);
        let max = shared.opts.max_record_size;
        let map = segment.map();
        // A reader that starts at a hinted position notes what it passes in the hint's
        // positions, not in the index, which must stay a prefix of the segment.
        let mut index_from = offset;
        let mut noting_hint = false;
        if let Some((hinted, at)) = segment.hint_for(lsn, start) {
            if matches!(
                map.get(format::offset_index(at)..).map(|b| decode_frame(b, hinted, max)),
                Some(Decoded::Frame(_))
            ) {
                (start, offset, index_from, noting_hint) = (hinted, at, at, true);
            } else {
                segment.forget_hint();
            }
        }
        let indexed_frame_ok = matches!(
            map.get(format::offset_index(offset)..).map(|b| decode_frame(b, start, max)),
            Some(Decoded::Frame(_))
        );
        if offset != SEGMENT_HEADER_LEN as u64 && !indexed_frame_ok {
            (start, offset) = segment.index_reset(segment_base);
            index_from = offset;
        }
        let mut reader = LogReader {
            map: segment.map(),
            segment,
            shared,
            offset,
            next: start,
            in_batch: false,
            index_from,
            noting_hint,
            segment_base: Some(segment_base),
            last_frame: offset,
        };
        while reader.next < lsn {
            if reader.advance()?.is_none() {
                return Err(Error::LsnOutOfRange {
                    requested: lsn,
                    first,
                    last: Lsn(reader.next.0.saturating_sub(1)),
                });
            }
        }
        Ok(reader)
    }

    /// LSN of the record the next call to [`LogReader::next`] returns.
    #[must_use]
    pub fn position(&self) -> Lsn {
        self.next
    }

    /// Where the record [`LogReader::position`] names would be: the base LSN of the segment the
    /// reader is in and a byte offset there (past the segment's last frame when the record is
    /// not written yet, or is in the next segment). What [`Log::note_position`](super::Log::note_position) takes back.
    #[must_use]
    pub fn byte_position(&self) -> Option<(Lsn, u64)> {
        self.segment_base.map(|base| (base, self.offset))
    }

    /// Where the record last returned by [`LogReader::next`] is: its segment file and the byte
    /// offset of its frame there.
    #[must_use]
    pub fn last_location(&self) -> (std::path::PathBuf, u64) {
        (self.segment.path.clone(), self.last_frame)
    }

    /// The next record, or `None` once the reader has caught up with the published tail (call
    /// again later to see records appended since). Corruption is an error naming segment,
    /// offset and LSN; it is never skipped.
    ///
    /// # Errors
    /// [`Error::Corruption`] (naming segment, offset and LSN) for a damaged record, and, where a sealed
    /// segment ends, for an incomplete batch or non-zero bytes after its last record;
    /// [`Error::CorruptHeader`] for a sealed segment's damaged durable mark or the next segment's header;
    /// [`Error::SegmentGap`] if the next segment is missing, [`Error::Compacted`] if compaction removed it;
    /// [`Error::Io`] for a failed open, map or directory read. The reader stays where it was: asking again
    /// fails again.
    #[allow(clippy::should_implement_trait)] // lending: the record borrows the reader's map
    pub fn next(&mut self) -> Result<Option<Record<'_>>> {
        let Some(found) = self.advance()? else { return Ok(None) };
        Ok(Some(Record {
            lsn: found.lsn,
            timestamp: found.timestamp,
            kind: found.kind,
            payload: self.map.get(found.start..found.end).unwrap_or_default(),
        }))
    }

    fn advance(&mut self) -> Result<Option<Found>> {
        let max = self.shared.opts.max_record_size;
        loop {
            if self.next >= self.shared.control.tail_lsn() {
                return Ok(None);
            }
            let map = self.map.clone();
            let at = format::offset_index(self.offset);
            let rest = map.get(at..).unwrap_or_default();
            match decode_frame(rest, self.next, max) {
                Decoded::Frame(f) => {
                    if self.offset >= self.index_from {
                        if self.noting_hint {
                            self.segment.hint_note(self.next, self.offset);
                        } else {
                            self.segment.index_note(self.next, self.offset);
                        }
                        self.index_from = self.offset + INDEX_INTERVAL;
                    }
                    let start = at + FRAME_HEADER_LEN;
                    let found = Found {
                        lsn: f.lsn,
                        timestamp: f.timestamp,
                        kind: f.kind,
                        start,
                        end: start + f.payload.len(),
                    };
                    self.in_batch = f.batch_continues();
                    self.last_frame = self.offset;
                    self.offset += f.len as u64;
                    self.next = self.next.next();
                    return Ok(Some(found));
                }
                Decoded::End if !self.grew()? => self.enter_next_segment()?,
                Decoded::Invalid(reason) if !self.grew()? => return Err(self.corruption(self.offset, reason)),
                Decoded::End | Decoded::Invalid(_) => {} // the file grew: read again
            }
        }
    }

    /// Re-maps the segment if its file grew past the current map; true if it did.
    fn grew(&mut self) -> Result<bool> {
        let map = self.segment.remap_if_grown()?;
        let grew = map.len() > self.map.len();
        self.map = map;
        Ok(grew)
    }

    /// The current segment ended below the tail, so it is sealed: check that its batch is
    /// complete and the bytes after its last record are zero, then open the next one.
    fn enter_next_segment(&mut self) -> Result<()> {
        if self.in_batch {
            return Err(self.corruption(self.offset, FrameError::IncompleteBatch));
        }
        let rest = self.map.get(format::offset_index(self.offset)..).unwrap_or_default();
        if let Some(i) = rest.iter().position(|&b| b != 0) {
            return Err(self.corruption(self.offset + i as u64, FrameError::TrailingGarbage));
        }
        self.segment.check_sealed_mark()?;
        if let Some(base) = self.segment_base {
            self.segment.index_complete(&self.shared.dir, base, (self.next, self.offset));
        }
        let segment = match self.shared.segment(self.next) {
            Err(e) if super::is_not_found(&e) => {
                self.shared.refresh_segments()?;
                let first = self.shared.first_lsn()?;
                return Err(if self.next < first {
                    Error::Compacted { requested: self.next, first }
                } else {
                    Error::SegmentGap {
                        dir: self.shared.dir.clone(),
                        expected: self.next,
                        found: format!("{} ends before LSN {}", self.segment.path.display(), self.next),
                    }
                });
            }
            other => other?,
        };
        self.map = segment.map();
        self.segment = segment;
        self.offset = SEGMENT_HEADER_LEN as u64;
        self.index_from = self.offset;
        self.noting_hint = false;
        self.segment_base = Some(self.next);
        Ok(())
    }

    fn corruption(&self, offset: u64, reason: FrameError) -> Error {
        Error::Corruption { segment: self.segment.path.clone(), offset, lsn: self.next, reason }
    }
}
