//! Sparse index of one segment: the offset of the first frame after every [`INDEX_INTERVAL`]
//! bytes, in memory for every segment a process reads, and saved beside each sealed segment once
//! some reader has walked all of it (log-format.md, "Index files"). The file is derived data:
//! one that is missing or does not check out is ignored and rebuilt.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::format::index::IndexFile;
use crate::format::SEGMENT_HEADER_LEN;
use crate::types::Lsn;

/// A sparse index entry is added at most once per this many bytes of frames.
pub const INDEX_INTERVAL: u64 = 16 * 1024;

/// Sparse positions of frames in one segment, covering a prefix of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseIndex {
    entries: Vec<(Lsn, u64)>,
    /// The LSN and offset after the last frame, once the whole (sealed) segment is indexed.
    end: Option<(Lsn, u64)>,
    /// Whether the index file is known to exist.
    pub saved: bool,
}

impl SparseIndex {
    /// The index of a segment nobody has read yet: its first frame.
    pub fn new(base: Lsn) -> SparseIndex {
        SparseIndex { entries: vec![(base, SEGMENT_HEADER_LEN as u64)], end: None, saved: false }
    }

    /// An index of positions from the frame of `lsn` at `offset` on (a position given from
    /// outside the segment's own index; see `Segment::hint`).
    pub fn starting_at(lsn: Lsn, offset: u64) -> SparseIndex {
        SparseIndex { entries: vec![(lsn, offset)], end: None, saved: true }
    }

    /// The first indexed LSN.
    pub fn first_lsn(&self) -> Option<Lsn> {
        self.entries.first().map(|&(lsn, _)| lsn)
    }

    /// Records that the frame of `lsn` starts at `offset` (positions arrive in order, and only
    /// from readers that started at an indexed position, so the index stays a prefix).
    pub fn note(&mut self, lsn: Lsn, offset: u64) {
        match self.entries.last() {
            Some(&(last_lsn, last_off)) if lsn > last_lsn && offset >= last_off + INDEX_INTERVAL => {
                self.entries.push((lsn, offset));
            }
            _ => {}
        }
    }

    /// Where to start scanning for `lsn`: the closest indexed position at or before it.
    pub fn lookup(&self, lsn: Lsn) -> (Lsn, u64) {
        let i = self.entries.partition_point(|&(l, _)| l <= lsn);
        self.entries.get(i.saturating_sub(1)).copied().unwrap_or((lsn, SEGMENT_HEADER_LEN as u64))
    }

    /// Marks the segment as read to its end: `end` is the LSN and offset after its last frame.
    pub fn complete(&mut self, end: (Lsn, u64)) {
        self.end = Some(end);
    }

    /// Whether the whole segment is indexed and the file not yet written.
    pub fn wants_saving(&self) -> bool {
        self.end.is_some() && !self.saved
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The file bytes (log-format.md, "Index files").
    pub fn encode(&self, base: Lsn) -> Vec<u8> {
        let end = self.end.unwrap_or((base, SEGMENT_HEADER_LEN as u64));
        IndexFile { base, end, entries: self.entries.clone() }.encode()
    }

    /// Decodes an index file of the segment starting at `base`; `None` unless every check passes.
    pub fn decode(bytes: &[u8], base: Lsn) -> Option<SparseIndex> {
        let file = IndexFile::decode(bytes, base).ok()?;
        Some(SparseIndex { entries: file.entries, end: Some(file.end), saved: true })
    }
}

/// Path of the index file of the segment at `segment_path`.
pub fn index_path(segment_path: &Path) -> PathBuf {
    let mut name = segment_path.as_os_str().to_owned();
    name.push(".idx");
    PathBuf::from(name)
}

/// Loads the index file of a segment, if there is a valid one.
pub fn load(segment_path: &Path, base: Lsn) -> Option<SparseIndex> {
    let bytes = std::fs::read(index_path(segment_path)).ok()?;
    let index = SparseIndex::decode(&bytes, base);
    if index.is_none() {
        tracing::warn!(file = %index_path(segment_path).display(), "ignoring an invalid index file; it will be rebuilt");
    }
    index
}

/// Writes the index file durably (temporary file, sync, rename, directory sync). Several
/// processes may race to write the same index; each uses its own temporary name, and the
/// contents are identical.
pub fn save(dir: &Path, segment_path: &Path, bytes: &[u8]) -> Result<()> {
    let path = index_path(segment_path);
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("index");
    let temp = crate::fs::TempFile::create(dir, stem)?;
    temp.write_all(bytes)?;
    temp.persist(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_entry_at_or_before_is_found() {
        let mut ix = SparseIndex::new(Lsn(10));
        ix.note(Lsn(11), 100); // too close to the previous entry
        ix.note(Lsn(50), 64 + INDEX_INTERVAL);
        ix.note(Lsn(90), 64 + 2 * INDEX_INTERVAL);
        ix.note(Lsn(80), 64 + 3 * INDEX_INTERVAL); // out of order: ignored
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.lookup(Lsn(10)), (Lsn(10), 64));
        assert_eq!(ix.lookup(Lsn(49)), (Lsn(10), 64));
        assert_eq!(ix.lookup(Lsn(50)), (Lsn(50), 64 + INDEX_INTERVAL));
        assert_eq!(ix.lookup(Lsn(1000)), (Lsn(90), 64 + 2 * INDEX_INTERVAL));
    }

    #[test]
    fn index_files_round_trip_and_any_damage_is_rejected() {
        let mut ix = SparseIndex::new(Lsn(10));
        ix.note(Lsn(50), 64 + INDEX_INTERVAL);
        ix.complete((Lsn(70), 64 + 2 * INDEX_INTERVAL));
        let bytes = ix.encode(Lsn(10));
        let back = SparseIndex::decode(&bytes, Lsn(10)).unwrap();
        assert_eq!((back.entries.clone(), back.end), (ix.entries.clone(), ix.end));
        assert!(SparseIndex::decode(&bytes, Lsn(11)).is_none(), "another segment's index");
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(SparseIndex::decode(&damaged, Lsn(10)).is_none(), "bit {bit}");
        }
        assert!(SparseIndex::decode(&bytes[..bytes.len() - 1], Lsn(10)).is_none());
    }
}
