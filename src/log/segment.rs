//! One segment file: its header, its read map, its sparse index, and creating new ones
//! (log-format.md, "Segment files").

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use memmap2::Mmap;

use super::format::{self, SegmentHeader, SEGMENT_HEADER_LEN};
use super::io;
use super::lock;
use crate::error::{Error, Result};
use crate::types::{Lsn, Timestamp};

/// A sparse index entry is added at most once per this many bytes of frames.
pub const INDEX_INTERVAL: u64 = 16 * 1024;

/// A segment as readers see it.
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    file: File,
    map: Mutex<Arc<Mmap>>,
    index: Mutex<SparseIndex>,
}

impl Segment {
    /// Opens an existing segment and checks its header against its name.
    pub fn open(dir: &Path, base: Lsn) -> Result<Segment> {
        let path = dir.join(format::segment_file_name(base));
        let file = io::open_rw(&path, false)?;
        let len = io::file_len(&file, &path)?;
        let map = io::map_read(&file, &path, len)?;
        let header = SegmentHeader::decode(&map)
            .map_err(|e| Error::CorruptHeader { segment: path.clone(), reason: e.to_string() })?;
        if header.base_lsn != base {
            return Err(Error::CorruptHeader {
                segment: path,
                reason: format!("header says base LSN {}, file name says {base}", header.base_lsn),
            });
        }
        Ok(Segment { index: Mutex::new(SparseIndex::new(base)), map: Mutex::new(Arc::new(map)), file, path })
    }

    /// Creates a new, empty, preallocated segment durably: written under a temporary name,
    /// synced, renamed, directory synced (log-format.md, "Creating a segment").
    pub fn create(dir: &Path, base: Lsn, capacity: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let name = format::segment_file_name(base);
        let tmp = dir.join(format!("{name}.tmp"));
        let path = dir.join(&name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        io::preallocate(&file, &tmp, capacity)?;
        let header = SegmentHeader { base_lsn: base, created: Timestamp::now(), capacity };
        file.write_all_at(&header.encode(), 0).map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        io::rename_synced(&tmp, &path, dir)
    }

    /// The current read map.
    pub fn map(&self) -> Arc<Mmap> {
        lock(&self.map).clone()
    }

    /// Re-maps the file if it grew since it was mapped (after a truncated segment was
    /// re-extended); returns the map to use.
    pub fn remap_if_grown(&self) -> Result<Arc<Mmap>> {
        let mut map = lock(&self.map);
        let len = io::file_len(&self.file, &self.path)?;
        if len > map.len() as u64 {
            *map = Arc::new(io::map_read(&self.file, &self.path, len)?);
        }
        Ok(map.clone())
    }

    /// The file handle (for syncing).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where to start scanning for `lsn`: the closest indexed position at or before it.
    pub fn index_lookup(&self, lsn: Lsn) -> (Lsn, u64) {
        lock(&self.index).lookup(lsn)
    }

    /// Records that the frame of `lsn` starts at `offset` (positions must arrive in order).
    pub fn index_note(&self, lsn: Lsn, offset: u64) {
        lock(&self.index).note(lsn, offset);
    }
}

/// Sparse positions of frames in one segment, covering a prefix of it.
struct SparseIndex {
    entries: Vec<(Lsn, u64)>,
}

impl SparseIndex {
    fn new(base: Lsn) -> SparseIndex {
        SparseIndex { entries: vec![(base, SEGMENT_HEADER_LEN as u64)] }
    }

    fn note(&mut self, lsn: Lsn, offset: u64) {
        match self.entries.last() {
            Some(&(last_lsn, last_off)) if lsn > last_lsn && offset >= last_off + INDEX_INTERVAL => {
                self.entries.push((lsn, offset));
            }
            _ => {}
        }
    }

    fn lookup(&self, lsn: Lsn) -> (Lsn, u64) {
        let i = self.entries.partition_point(|&(l, _)| l <= lsn);
        self.entries.get(i.saturating_sub(1)).copied().unwrap_or((lsn, SEGMENT_HEADER_LEN as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_index_finds_the_closest_entry_at_or_before() {
        let mut ix = SparseIndex::new(Lsn(10));
        ix.note(Lsn(11), 100); // too close to the previous entry
        ix.note(Lsn(50), 64 + INDEX_INTERVAL);
        ix.note(Lsn(90), 64 + 2 * INDEX_INTERVAL);
        ix.note(Lsn(80), 64 + 3 * INDEX_INTERVAL); // out of order: ignored
        assert_eq!(ix.entries.len(), 3);
        assert_eq!(ix.lookup(Lsn(10)), (Lsn(10), 64));
        assert_eq!(ix.lookup(Lsn(49)), (Lsn(10), 64));
        assert_eq!(ix.lookup(Lsn(50)), (Lsn(50), 64 + INDEX_INTERVAL));
        assert_eq!(ix.lookup(Lsn(1000)), (Lsn(90), 64 + 2 * INDEX_INTERVAL));
    }

    #[test]
    fn created_segment_has_a_valid_header_and_full_length() {
        let dir = tempfile::tempdir().unwrap();
        Segment::create(dir.path(), Lsn(5), 8192).unwrap();
        let seg = Segment::open(dir.path(), Lsn(5)).unwrap();
        assert_eq!(seg.map().len(), 8192);
        assert!(!dir.path().join("00000000000000000005.seg.tmp").exists());
    }

    #[test]
    fn a_segment_under_the_wrong_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Segment::create(dir.path(), Lsn(5), 8192).unwrap();
        std::fs::rename(
            dir.path().join(format::segment_file_name(Lsn(5))),
            dir.path().join(format::segment_file_name(Lsn(6))),
        )
        .unwrap();
        let err = Segment::open(dir.path(), Lsn(6)).err().unwrap();
        assert!(err.to_string().contains("file name says 6"), "{err}");
    }
}
