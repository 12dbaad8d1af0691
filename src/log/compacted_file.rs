//! The compacted-records file (log-format.md, "Compacted records file"): what keyed compaction
//! kept of the segments it removed. Same frames as a segment, LSNs increasing with gaps, an
//! exact length; replaced as a whole (temporary file, sync, rename, directory sync).

use std::cell::Cell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::io;
use super::reader::Record;
use crate::error::{Error, FrameError, Result};
use crate::format::{self, decode_frame_after, Decoded};
use crate::types::{Lsn, Timestamp};

pub use crate::format::compacted::{CompactedHeader, COMPACTED_FILE, COMPACTED_HEADER_LEN, COMPACTED_MAGIC};

/// An open compacted-records file.
pub struct CompactedFile {
    path: PathBuf,
    map: Mmap,
    header: CompactedHeader,
    max_payload: u32,
}

impl CompactedFile {
    /// Opens the file in `dir`, or `None` if the log was never compacted by key.
    pub fn open(dir: &Path, max_payload: u32) -> Result<Option<CompactedFile>> {
        let path = dir.join(COMPACTED_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let len = io::file_len(&file, &path)?;
        let map = io::map_read(&file, &path, len)?;
        let header = CompactedHeader::decode(&map)
            .map_err(|reason| Error::CorruptHeader { segment: path.clone(), reason })?;
        let expected = COMPACTED_HEADER_LEN as u64 + header.body_len;
        if len != expected {
            return Err(Error::CorruptHeader {
                segment: path,
                reason: format!("file is {len} bytes, its header says {expected}"),
            });
        }
        Ok(Some(CompactedFile { path, map, header, max_payload }))
    }

    /// Checks the range against the log, whose next record gets `next`: the range ends at or
    /// before it (compaction only ever removes records the log holds), else the file does not
    /// belong to this log, and the error names it.
    pub fn check_range(&self, next: Lsn) -> Result<()> {
        if self.header.end > next {
            return Err(Error::CorruptHeader {
                segment: self.path.clone(),
                reason: format!(
                    "its range ends before LSN {}, past the end of the log (next LSN {next})",
                    self.header.end
                ),
            });
        }
        Ok(())
    }

    /// Its header.
    #[must_use]
    pub fn header(&self) -> &CompactedHeader {
        &self.header
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where reading starts: before the first record.
    #[must_use]
    pub fn start(&self) -> Cell<Position> {
        let before_first = Lsn(self.header.first.0.saturating_sub(1));
        Cell::new(Position { offset: COMPACTED_HEADER_LEN as u64, last: before_first, seen: 0 })
    }

    /// The record at `at` (checked: a greater LSN than the one before, inside the range), moving
    /// `at` past it; `None` at the end of the body, once the record count is checked too.
    pub fn next(&self, at: &Cell<Position>) -> Result<Option<Record<'_>>> {
        let Position { offset, last, seen } = at.get();
        let rest = self.map.get(format::offset_index(offset)..).unwrap_or_default();
        let corrupt =
            |reason| Error::Corruption { segment: self.path.clone(), offset, lsn: last.next(), reason };
        if rest.is_empty() {
            if seen != self.header.records {
                return Err(corrupt(FrameError::CountMismatch { header: self.header.records, found: seen }));
            }
            return Ok(None);
        }
        match decode_frame_after(rest, last, self.max_payload) {
            Decoded::Frame(f) if f.lsn >= self.header.end || f.lsn < self.header.first => {
                Err(corrupt(FrameError::LsnMismatch { expected: self.header.end, found: f.lsn }))
            }
            Decoded::Frame(f) if f.flags != 0 => Err(corrupt(FrameError::Reserved { what: "flags" })),
            Decoded::Frame(f) if f.durable_before.is_some() => {
                Err(corrupt(FrameError::Reserved { what: "durable distance" }))
            }
            Decoded::Frame(f) => {
                at.set(Position { offset: offset + f.len as u64, last: f.lsn, seen: seen + 1 });
                Ok(Some(Record { lsn: f.lsn, timestamp: f.timestamp, kind: f.kind, payload: f.payload }))
            }
            Decoded::End => Err(corrupt(FrameError::TruncatedHeader { available: rest.len() })),
            Decoded::Invalid(reason) => Err(corrupt(reason)),
        }
    }

    /// Every record, in LSN order, each checked; stops after the first error.
    pub fn records(&self) -> impl Iterator<Item = Result<Record<'_>>> + '_ {
        let at = self.start();
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let next = self.next(&at).transpose();
            failed = matches!(next, Some(Err(_)));
            next
        })
    }
}

/// A reading position in the compacted-records file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    offset: u64,
    last: Lsn,
    seen: u64,
}

impl Position {
    /// Byte offset in the file of the next frame.
    pub(super) fn offset(self) -> u64 {
        self.offset
    }
}

/// Writes a new compacted-records file under a temporary name; [`CompactedWriter::install`]
/// makes it durable and puts it in place.
pub struct CompactedWriter {
    dir: PathBuf,
    tmp: PathBuf,
    temp: crate::fs::TempFile,
    out: BufWriter<crate::fs::file::FileWriter>,
    first: Lsn,
    last: Lsn,
    records: u64,
    body_len: u64,
    frame: Vec<u8>,
}

impl CompactedWriter {
    /// Starts a file whose range begins at `first`.
    pub fn create(dir: &Path, first: Lsn) -> Result<CompactedWriter> {
        let temp = crate::fs::TempFile::create(dir, COMPACTED_FILE)?;
        let tmp = temp.path().to_owned();
        let mut out = BufWriter::with_capacity(1 << 20, temp.writer()?);
        out.write_all(&[0u8; COMPACTED_HEADER_LEN]).map_err(|e| Error::io("write", &tmp, e))?;
        Ok(CompactedWriter {
            dir: dir.to_path_buf(),
            tmp,
            temp,
            out,
            first,
            last: Lsn(0),
            records: 0,
            body_len: 0,
            frame: Vec::new(),
        })
    }

    /// Appends a record (LSNs must increase; batch flags are not kept: each record stands alone).
    pub fn push(&mut self, record: &Record<'_>) -> Result<()> {
        if record.lsn <= self.last || record.lsn < self.first {
            return Err(Error::InvalidArgument {
                name: "compacted record",
                reason: format!("LSN {} after LSN {} (range from {})", record.lsn, self.last, self.first),
            });
        }
        self.frame.clear();
        format::push_unfinished_frame(&mut self.frame, record.kind, record.payload);
        format::finalize_frame(&mut self.frame, record.lsn, record.timestamp, 0);
        self.out.write_all(&self.frame).map_err(|e| Error::io("write", &self.tmp, e))?;
        self.last = record.lsn;
        self.records += 1;
        self.body_len += self.frame.len() as u64;
        Ok(())
    }

    /// Writes the header (range ends before `end`), syncs the file, renames it over the old one
    /// and syncs the directory. Returns the number of records.
    pub fn install(self, end: Lsn) -> Result<u64> {
        let CompactedWriter { dir, tmp, temp, out, first, last, records, body_len, .. } = self;
        if end <= last || end < first {
            return Err(Error::InvalidArgument {
                name: "compacted range",
                reason: format!("end {end} is not past the last kept record {last} (range from {first})"),
            });
        }
        let file = out.into_inner().map_err(|e| Error::io("write", &tmp, e.into_error()))?;
        let header = CompactedHeader { first, end, records, body_len, created: Timestamp::now() };
        crate::fs::file::write_at(file.file(), &tmp, &header.encode(), 0)?;
        crate::fs::file::sync_all(file.file(), &tmp)?;
        super::writer::fault::compaction_step(1);
        temp.persist(&dir.join(COMPACTED_FILE))?;
        super::writer::fault::compaction_step(2);
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RecordKind;

    fn write(dir: &Path, lsns: &[u64], end: u64) {
        let mut w = CompactedWriter::create(dir, Lsn(1)).unwrap();
        let kind = RecordKind::new(1).unwrap();
        for &lsn in lsns {
            let payload = lsn.to_le_bytes();
            w.push(&Record {
                lsn: Lsn(lsn),
                timestamp: Timestamp(lsn.cast_signed()),
                kind,
                payload: &payload,
            })
            .unwrap();
        }
        w.install(Lsn(end)).unwrap();
    }

    #[test]
    fn records_round_trip_with_gaps() {
        let dir = tempfile::tempdir().unwrap();
        assert!(CompactedFile::open(dir.path(), 1024).unwrap().is_none());
        write(dir.path(), &[3, 7, 8, 100], 200);
        let file = CompactedFile::open(dir.path(), 1024).unwrap().unwrap();
        assert_eq!((file.header().first, file.header().end, file.header().records), (Lsn(1), Lsn(200), 4));
        let lsns: Vec<u64> = file.records().map(|r| r.unwrap().lsn.0).collect();
        assert_eq!(lsns, [3, 7, 8, 100]);
        assert!(!dir.path().join("compacted.log.tmp").exists());
    }

    #[test]
    fn out_of_order_records_and_short_ranges_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = CompactedWriter::create(dir.path(), Lsn(1)).unwrap();
        let kind = RecordKind::new(1).unwrap();
        w.push(&Record { lsn: Lsn(5), timestamp: Timestamp(0), kind, payload: b"x" }).unwrap();
        assert!(w.push(&Record { lsn: Lsn(5), timestamp: Timestamp(0), kind, payload: b"x" }).is_err());
        assert!(w.install(Lsn(5)).is_err());
    }

    #[test]
    fn every_bit_flip_and_truncation_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[2, 9], 10);
        let path = dir.path().join(COMPACTED_FILE);
        let good = std::fs::read(&path).unwrap();
        let check = |bytes: &[u8]| -> Result<()> {
            std::fs::write(&path, bytes).unwrap();
            let file = CompactedFile::open(dir.path(), 1024)?.unwrap();
            file.records().collect::<Result<Vec<_>>>().map(|_| ())
        };
        check(&good).unwrap();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(check(&bad).is_err(), "bit {bit} flip went unnoticed");
        }
        for cut in 0..good.len() {
            assert!(check(&good[..cut]).is_err(), "cut at {cut} went unnoticed");
        }
    }
}
