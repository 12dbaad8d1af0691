//! One segment file: its header, its read map, its sparse index, and creating new ones
//! (log-format.md, "Segment files").

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use memmap2::Mmap;

use super::index::{self, SparseIndex};
use super::io;
use super::lock;
use crate::error::{Error, Result};
use crate::format::{self, DurableMark, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::types::{Lsn, Timestamp};

/// A segment as readers see it.
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    file: File,
    map: Mutex<Arc<Mmap>>,
    index: Mutex<SparseIndex>,
    /// Positions from one given from outside the index on (a snapshot says where its next
    /// record is), noted by the readers that start there: a reader for that record or a later
    /// one may start at the closest. Kept apart from the index, which stays a prefix of the
    /// segment (and is the one saved).
    hint: Mutex<Option<SparseIndex>>,
    /// Opened for reading only: no index files are written or removed beside it.
    read_only: bool,
}

impl Segment {
    /// Opens an existing segment (for reading and writing, or with `read_only` for reading
    /// only) and checks its header against its name.
    pub fn open(dir: &Path, base: Lsn, read_only: bool) -> Result<Segment> {
        let path = dir.join(format::segment_file_name(base));
        let file = if read_only { io::open_read(&path)? } else { io::open_rw(&path)? };
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
        let index = index::load(&path, base).unwrap_or_else(|| SparseIndex::new(base));
        Ok(Segment {
            index: Mutex::new(index),
            hint: Mutex::new(None),
            map: Mutex::new(Arc::new(map)),
            file,
            path,
            read_only,
        })
    }

    /// Checks the durable mark of a sealed segment (a reader leaving it). Marks are only written
    /// under the append lock into the newest segment, so a sealed segment's mark never changes
    /// and a damaged one is corruption like any other byte.
    pub fn check_sealed_mark(&self) -> Result<()> {
        let map = self.map();
        match DurableMark::read(map.get(..SEGMENT_HEADER_LEN).unwrap_or_default()) {
            DurableMark::Damaged => Err(Error::CorruptHeader {
                segment: self.path.clone(),
                reason: "durable mark (bytes 40..52) fails its CRC".into(),
            }),
            _ => Ok(()),
        }
    }

    /// The durable mark as the page cache holds it now.
    pub fn durable_mark(&self) -> DurableMark {
        DurableMark::read(self.map().get(..SEGMENT_HEADER_LEN).unwrap_or_default())
    }

    /// Writes the durable mark `lsn` into the header (page cache only: it reaches the disk
    /// with the next `fdatasync` of the segment). Call with the append lock held, only for the
    /// newest segment, and only with an LSN every record below which is already durable.
    pub fn write_durable_mark(&self, lsn: Lsn) -> Result<()> {
        write_durable_mark(&self.file, &self.path, lsn)
    }

    /// Creates a new, empty, preallocated segment durably: written under a temporary name,
    /// synced, renamed, directory synced (log-format.md, "Creating a segment"). With
    /// `zero_fill`, its blocks are written with zeros too (log-format.md, "Spare segment").
    pub fn create(dir: &Path, base: Lsn, capacity: u64, zero_fill: bool) -> Result<()> {
        let name = format::segment_file_name(base);
        let temp = crate::fs::TempFile::create(dir, &name)?;
        io::preallocate(temp.file(), temp.path(), capacity)?;
        if zero_fill {
            write_zeros(temp.file(), temp.path(), capacity)?;
        }
        let header = SegmentHeader { base_lsn: base, created: Timestamp::now(), capacity };
        temp.write_all(&header.encode())?;
        temp.persist(&dir.join(&name))
    }

    /// Makes `segment` the next segment out of the spare in `dir` (log-format.md, "Spare
    /// segment"), if there is one of exactly `capacity` bytes: its header is written and synced
    /// (its other bytes are zero and were synced when it was made), then it is renamed to the
    /// segment's name and the directory synced. `false` (nothing changed) if there is no such
    /// spare. Append lock held: spares are placed and taken only under it.
    pub fn create_from_spare(dir: &Path, base: Lsn, capacity: u64) -> Result<bool> {
        let spare = dir.join(SPARE_FILE);
        let file = match io::open_rw(&spare) {
            Ok(file) => file,
            Err(e) if super::is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        if io::file_len(&file, &spare)? != capacity {
            return Ok(false);
        }
        let header = SegmentHeader { base_lsn: base, created: Timestamp::now(), capacity };
        crate::fs::file::write_at(&file, &spare, &header.encode(), 0)?;
        io::sync_data(&file, &spare)?;
        fault::spare_step(1);
        let path = dir.join(format::segment_file_name(base));
        if !crate::fs::file::rename_new(&spare, &path)? {
            return Err(Error::internal(format!("{} exists already", path.display())));
        }
        fault::spare_step(2);
        io::sync_dir(dir)?;
        Ok(true)
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

    /// Takes `offset` as the position of record `lsn`, which may not be written yet: a reader
    /// checks that a valid frame of `lsn` is there before it starts there.
    pub fn hint(&self, lsn: Lsn, offset: u64) {
        if offset >= SEGMENT_HEADER_LEN as u64 {
            *lock(&self.hint) = Some(SparseIndex::starting_at(lsn, offset));
        }
    }

    /// The closest position from the hint on for `lsn`, if there is one past `indexed` (the
    /// index's answer).
    pub fn hint_for(&self, lsn: Lsn, indexed: Lsn) -> Option<(Lsn, u64)> {
        let hint = lock(&self.hint);
        let hint = hint.as_ref().filter(|h| h.first_lsn().is_some_and(|first| first <= lsn))?;
        Some(hint.lookup(lsn)).filter(|&(found, _)| found > indexed)
    }

    /// Records that the frame of `lsn` starts at `offset`, for a reader that started at a
    /// position [`Segment::hint_for`] gave (positions in order, as for the index).
    pub fn hint_note(&self, lsn: Lsn, offset: u64) {
        if let Some(hint) = lock(&self.hint).as_mut() {
            hint.note(lsn, offset);
        }
    }

    /// Forgets the hinted position (it no longer lands on its frame).
    pub fn forget_hint(&self) {
        *lock(&self.hint) = None;
    }

    /// Where to start scanning for `lsn`: the closest indexed position at or before it.
    pub fn index_lookup(&self, lsn: Lsn) -> (Lsn, u64) {
        lock(&self.index).lookup(lsn)
    }

    /// Forgets an index that does not match the segment (a stale index file) and removes its
    /// file; returns the start of the segment.
    pub fn index_reset(&self, base: Lsn) -> (Lsn, u64) {
        *lock(&self.index) = SparseIndex::new(base);
        if !self.read_only {
            let _ = crate::fs::file::remove(&index::index_path(&self.path));
        }
        tracing::warn!(segment = %self.path.display(), "discarded a stale segment index");
        lock(&self.index).lookup(base)
    }

    /// Records that the frame of `lsn` starts at `offset` (positions must arrive in order).
    pub fn index_note(&self, lsn: Lsn, offset: u64) {
        lock(&self.index).note(lsn, offset);
    }

    /// A reader walked this sealed segment to its end (`end`: LSN and offset after its last
    /// frame): saves the index file if nobody has yet. Failing to save only costs a later scan.
    pub fn index_complete(&self, dir: &Path, base: Lsn, end: (Lsn, u64)) {
        let bytes = {
            let mut index = lock(&self.index);
            index.complete(end);
            if self.read_only || !index.wants_saving() {
                return;
            }
            index.saved = true;
            index.encode(base)
        };
        if let Err(e) = index::save(dir, &self.path, &bytes) {
            tracing::debug!(error = %e, "cannot save a segment index");
        }
    }
}

/// The spare segment of a log directory: a file written with zeros and synced, waiting to
/// become the next segment (log-format.md, "Spare segment").
pub const SPARE_FILE: &str = "segment.spare";

/// Length of the zero-filled chunks written by [`write_zeros`].
const ZERO_CHUNK: usize = 1 << 20;

/// Writes zeros over the first `len` bytes of `file` (real writes: the blocks become written
/// extents, unlike `fallocate`'s unwritten ones). Does not sync.
pub fn write_zeros(file: &File, path: &Path, len: u64) -> Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).map_or(ZERO_CHUNK, |rest| rest.min(ZERO_CHUNK));
        crate::fs::file::write_at(file, path, zeros.get(..n).unwrap_or_default(), at)?;
        fault::zero_fill_chunk();
        at += n as u64;
    }
    Ok(())
}

/// Makes a spare segment of `capacity` bytes for the log in `dir`, unless one of that size is
/// there: zero-fills a temporary file and syncs it with no lock held, then, under the append
/// lock taken by `lock`, puts it in place of any spare of another size. `true` if it placed one.
pub fn make_spare<L>(dir: &Path, capacity: u64, lock: impl FnOnce() -> Result<L>) -> Result<bool> {
    let spare = dir.join(SPARE_FILE);
    if spare_len(&spare)? == Some(capacity) {
        return Ok(false);
    }
    let temp = crate::fs::TempFile::create(dir, SPARE_FILE)?;
    io::preallocate(temp.file(), temp.path(), capacity)?;
    write_zeros(temp.file(), temp.path(), capacity)?;
    crate::fs::file::sync_all(temp.file(), temp.path())?;
    let _append_lock = lock()?;
    match spare_len(&spare)? {
        Some(len) if len == capacity => return Ok(false),
        Some(_) => {
            crate::fs::file::remove(&spare)?;
        }
        None => {}
    }
    temp.persist_new(&spare)
}

/// The length of the spare file at `path`, if there is one.
fn spare_len(path: &Path) -> Result<Option<u64>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

/// Fault injection for crash tests of spare segments.
#[doc(hidden)]
pub mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};

    static ABORT_AFTER_ZERO_CHUNKS: AtomicU64 = AtomicU64::new(u64::MAX);
    static ABORT_AT_SPARE_STEP: AtomicU64 = AtomicU64::new(u64::MAX);

    /// Arms a fault in zero-filling: the process aborts once `chunks` chunks of 1 MiB of zeros
    /// were written (into a spare or a new segment). For crash tests only.
    pub fn abort_after_zero_chunks(chunks: u64) {
        ABORT_AFTER_ZERO_CHUNKS.store(chunks, Ordering::SeqCst);
    }

    /// Arms a fault in taking the spare as the next segment: the process aborts right after
    /// step `step` (1: its header is written and synced; 2: it is renamed to the segment's
    /// name, the directory not synced yet). For crash tests only.
    pub fn abort_at_spare_step(step: u64) {
        ABORT_AT_SPARE_STEP.store(step, Ordering::SeqCst);
    }

    pub(super) fn zero_fill_chunk() {
        if ABORT_AFTER_ZERO_CHUNKS.load(Ordering::Relaxed) != u64::MAX
            && ABORT_AFTER_ZERO_CHUNKS.fetch_sub(1, Ordering::SeqCst) <= 1
        {
            std::process::abort();
        }
    }

    pub(super) fn spare_step(step: u64) {
        if ABORT_AT_SPARE_STEP.load(Ordering::Relaxed) == step {
            std::process::abort();
        }
    }
}

/// Writes the durable mark `lsn` at bytes 40..52 of the segment `file` (log-format.md, "Durable
/// mark"). Version-2 segments only; the caller holds the append lock.
pub fn write_durable_mark(file: &File, path: &Path, lsn: Lsn) -> Result<()> {
    crate::fs::file::write_at(file, path, &DurableMark::encode(lsn), format::HDR_DURABLE_MARK as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_segment_has_a_valid_header_and_full_length() {
        let dir = tempfile::tempdir().unwrap();
        Segment::create(dir.path(), Lsn(5), 8192, false).unwrap();
        let seg = Segment::open(dir.path(), Lsn(5), false).unwrap();
        assert_eq!(seg.map().len(), 8192);
        let names: Vec<String> = io::list_dir(dir.path()).unwrap();
        assert_eq!(names, ["00000000000000000005.seg"], "no temporary file stays");
    }

    #[test]
    fn a_segment_under_the_wrong_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Segment::create(dir.path(), Lsn(5), 8192, false).unwrap();
        std::fs::rename(
            dir.path().join(format::segment_file_name(Lsn(5))),
            dir.path().join(format::segment_file_name(Lsn(6))),
        )
        .unwrap();
        let err = Segment::open(dir.path(), Lsn(6), true).err().unwrap();
        assert!(err.to_string().contains("file name says 6"), "{err}");
    }
}
