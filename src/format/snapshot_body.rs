//! The body of a version-3 snapshot (log-format.md, "Snapshots", "Body, version 3"): a
//! directory of sections followed by the sections' data, every 4 KiB block of which has a
//! CRC-32 of its own in the directory. A reader checks the directory once (the header's body
//! CRC covers it) and each block the first time it reads from it, the way `LevelDB` and `RocksDB`
//! check the blocks of a table file on read: a process that needs a dozen entries of a large
//! snapshot reads a dozen blocks, not the file.
//!
//! This module knows bytes only: the directory, the checked data, the fixed-size entries of the
//! index sections and the hash that keys them. What the sections hold is the snapshot layer's.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Damage;

/// Bytes per checked block of the data.
pub const BLOCK_SIZE: u32 = 4096;
/// Sections of a version-3 body, in directory order.
pub const SECTIONS: usize = SECTION_COUNT as usize;
/// [`SECTIONS`], as the directory stores it.
const SECTION_COUNT: u32 = 10;
/// Bytes of an entry of the sections keyed by hash (task ids, idempotency keys).
pub const HASH_ENTRY_LEN: usize = 16;
/// Bytes of an entry of the pending section.
pub const PENDING_ENTRY_LEN: usize = 16;

/// The sections, as numbered in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Section {
    /// `MessagePack`: everything but tasks and context (agents, dependencies, barriers, locks,
    /// claim policy, LSN and time).
    Meta = 0,
    /// `MessagePack` tasks, one after the other, in creation order (slot order).
    Tasks = 1,
    /// `u64` offsets into [`Section::Tasks`], one per slot and one past the last.
    TaskOffsets = 2,
    /// [`HashEntry`] per task: its id's hash and slot, sorted.
    TaskIds = 3,
    /// [`HashEntry`] per task with an idempotency key, sorted.
    IdempotencyKeys = 4,
    /// [`PendingEntry`] per pending task, in claim order.
    Pending = 5,
    /// `u32` slot of every in-progress task, ascending.
    InProgress = 6,
    /// Per context key, in key order: `u32` key length, the key, its `MessagePack` history.
    Context = 7,
    /// `u64` offsets into [`Section::Context`], one per key and one past the last.
    ContextOffsets = 8,
    /// Empty, or where the log said the record at the snapshot's LSN is: `u64` base LSN of its
    /// segment, `u64` byte offset there (a hint the log checks before it uses it).
    LogPosition = 9,
}

/// FNV-1a, 64 bits (Fowler, Noll, Vo; draft-eastlake-fnv): the hash that keys the task id and
/// idempotency key sections. Fixed by the format, so every build finds the same entries.
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// An entry of a section keyed by hash: `u64` hash, `u32` slot, `u32` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HashEntry {
    /// [`fnv1a64`] of the id or key.
    pub hash: u64,
    /// The task's slot.
    pub slot: u32,
}

impl HashEntry {
    /// Its 16 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HASH_ENTRY_LEN] {
        let mut out = [0u8; HASH_ENTRY_LEN];
        out[..8].copy_from_slice(&self.hash.to_le_bytes());
        out[8..12].copy_from_slice(&self.slot.to_le_bytes());
        out
    }

    /// The entry in `bytes` (16 of them).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> HashEntry {
        HashEntry { hash: super::u64_at(bytes, 0), slot: super::u32_at(bytes, 8) }
    }
}

/// An entry of the pending section: `u64` creation LSN, `u32` slot, `u8` priority (0 low to 3
/// critical), 3 bytes 0. Sorted by priority (highest first), then LSN, then slot: claim order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    /// The task's creation LSN.
    pub lsn: u64,
    /// The task's slot.
    pub slot: u32,
    /// Its priority, 0 (low) to 3 (critical).
    pub priority: u8,
}

impl PendingEntry {
    /// Its 16 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; PENDING_ENTRY_LEN] {
        let mut out = [0u8; PENDING_ENTRY_LEN];
        out[..8].copy_from_slice(&self.lsn.to_le_bytes());
        out[8..12].copy_from_slice(&self.slot.to_le_bytes());
        out[12] = self.priority;
        out
    }

    /// The entry in `bytes` (16 of them).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> PendingEntry {
        PendingEntry {
            lsn: super::u64_at(bytes, 0),
            slot: super::u32_at(bytes, 8),
            priority: bytes.get(12).copied().unwrap_or(0),
        }
    }
}

/// Encodes a version-3 body from its sections' data: the directory, then the data.
#[must_use]
pub fn encode_body(sections: &[Vec<u8>; SECTIONS]) -> Vec<u8> {
    let data_len: usize = sections.iter().map(Vec::len).sum();
    let blocks = data_len.div_ceil(BLOCK_SIZE as usize);
    let dir_len = directory_len(blocks);
    let mut out = Vec::with_capacity(dir_len + data_len);
    out.extend_from_slice(&BLOCK_SIZE.to_le_bytes());
    out.extend_from_slice(&SECTION_COUNT.to_le_bytes());
    let mut at = 0u64;
    for section in sections {
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&(section.len() as u64).to_le_bytes());
        at += section.len() as u64;
    }
    out.extend_from_slice(&(blocks as u64).to_le_bytes());
    let table = out.len();
    out.resize(dir_len, 0);
    for section in sections {
        out.extend_from_slice(section);
    }
    let (head, data) = out.split_at_mut(dir_len);
    for (i, block) in data.chunks(BLOCK_SIZE as usize).enumerate() {
        let at = table + 4 * i;
        super::put(head, at, &crc32fast::hash(block).to_le_bytes());
    }
    out
}

/// Bytes of the directory of a body whose data has `blocks` blocks.
fn directory_len(blocks: usize) -> usize {
    8 + 16 * SECTIONS + 8 + 4 * blocks
}

/// The directory's length, read from the start of a body (`body` may be only its start): how
/// many bytes the header's body CRC covers.
///
/// # Errors
/// The body is too short for the fixed part, or names another block size or section count.
pub fn directory_len_of(body: &[u8]) -> Result<usize, Damage> {
    let fixed = 8 + 16 * SECTIONS + 8;
    if body.len() < fixed {
        return Err(Damage::at(0, format!("body of {} bytes is shorter than its directory", body.len())));
    }
    let block = super::u32_at(body, 0);
    let count = super::u32_at(body, 4) as usize;
    if block != BLOCK_SIZE || count != SECTIONS {
        return Err(Damage::at(
            0,
            format!(
                "directory names blocks of {block} bytes and {count} sections (expected {BLOCK_SIZE} and {SECTIONS})"
            ),
        ));
    }
    let blocks = super::u64_at(body, fixed - 8);
    usize::try_from(blocks)
        .ok()
        .and_then(|b| b.checked_mul(4))
        .and_then(|t| t.checked_add(fixed))
        .ok_or_else(|| Damage::at(fixed - 8, format!("block count {blocks} does not fit")))
}

/// A version-3 body whose directory checked out: each block of its data is checked the first
/// time it is read. Offsets in errors are from the start of the body.
#[derive(Debug)]
pub struct CheckedBody<B> {
    body: B,
    dir_len: usize,
    sections: [Range<usize>; SECTIONS],
    /// One bit per block: checked already.
    checked: Vec<AtomicU64>,
}

impl<B: AsRef<[u8]>> CheckedBody<B> {
    /// Reads the directory of `body`, whose CRC the caller checked (the header's body CRC).
    ///
    /// # Errors
    /// The directory does not fit the body, or a section does not fit the data.
    pub fn new(body: B) -> Result<CheckedBody<B>, Damage> {
        let bytes = body.as_ref();
        let dir_len = directory_len_of(bytes)?;
        let data_len = bytes.len().checked_sub(dir_len).ok_or_else(|| {
            Damage::at(0, format!("body of {} bytes is shorter than its directory ({dir_len})", bytes.len()))
        })?;
        let blocks = data_len.div_ceil(BLOCK_SIZE as usize);
        if directory_len(blocks) != dir_len {
            return Err(Damage::at(
                8 + 16 * SECTIONS,
                format!("the block count does not match {data_len} bytes of data"),
            ));
        }
        let mut sections: [Range<usize>; SECTIONS] = Default::default();
        for (i, range) in sections.iter_mut().enumerate() {
            let at = 8 + 16 * i;
            let (start, len) = (super::u64_at(bytes, at), super::u64_at(bytes, at + 8));
            let end = start.checked_add(len).filter(|&end| end <= data_len as u64);
            let (Some(end), Ok(start)) = (end, usize::try_from(start)) else {
                return Err(Damage::at(
                    at,
                    format!("section {i} ({start}+{len}) lies outside {data_len} bytes of data"),
                ));
            };
            *range = start..usize::try_from(end).unwrap_or(start);
        }
        let checked = (0..blocks.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Ok(CheckedBody { body, dir_len, sections, checked })
    }

    /// The length of the directory (the header's body CRC covers these bytes).
    #[must_use]
    pub fn directory_len(&self) -> usize {
        self.dir_len
    }

    /// Bytes of section `section`.
    #[must_use]
    pub fn section_len(&self, section: Section) -> usize {
        self.range(section).len()
    }

    /// The offset of section `section` from the start of the body.
    #[must_use]
    pub fn section_offset(&self, section: Section) -> usize {
        self.dir_len + self.range(section).start
    }

    /// Where section `section` lies in the data.
    fn range(&self, section: Section) -> Range<usize> {
        self.sections.get(section as usize).cloned().unwrap_or(0..0)
    }

    /// `range` of section `section`, after checking every block it touches.
    ///
    /// # Errors
    /// The range lies outside the section, or a block fails its CRC.
    pub fn read(&self, section: Section, range: Range<usize>) -> Result<&[u8], Damage> {
        let whole = self.range(section);
        let (start, end) = (whole.start.saturating_add(range.start), whole.start.saturating_add(range.end));
        if range.start > range.end || end > whole.end {
            return Err(Damage::at(
                self.dir_len + whole.start,
                format!("{section:?} has {} bytes; {range:?} asked for", whole.len()),
            ));
        }
        self.check(start..end)?;
        self.body.as_ref().get(self.dir_len + start..self.dir_len + end).ok_or_else(|| {
            Damage::at(self.dir_len + start, format!("{section:?} lies past the end of the body"))
        })
    }

    /// The whole of section `section`, checked.
    ///
    /// # Errors
    /// As [`CheckedBody::read`].
    pub fn all(&self, section: Section) -> Result<&[u8], Damage> {
        self.read(section, 0..self.section_len(section))
    }

    /// Checks every block of the data (what `verify` does).
    ///
    /// # Errors
    /// The first block that fails its CRC.
    pub fn check_all(&self) -> Result<(), Damage> {
        let data_len = self.body.as_ref().len() - self.dir_len;
        self.check(0..data_len)
    }

    fn check(&self, range: Range<usize>) -> Result<(), Damage> {
        if range.is_empty() {
            return Ok(());
        }
        let size = BLOCK_SIZE as usize;
        let bytes = self.body.as_ref();
        for block in range.start / size..range.end.div_ceil(size) {
            let (word, bit) = (self.checked.get(block / 64), 1u64 << (block % 64));
            if word.is_some_and(|w| w.load(Ordering::Relaxed) & bit != 0) {
                continue;
            }
            let at = self.dir_len + block * size;
            let data = bytes.get(at..(at + size).min(bytes.len())).unwrap_or_default();
            let stored = super::u32_at(bytes, 8 + 16 * SECTIONS + 8 + 4 * block);
            let computed = crc32fast::hash(data);
            if stored != computed {
                return Err(Damage::at(
                    at,
                    format!(
                        "block {block} checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                    ),
                ));
            }
            if let Some(word) = word {
                word.fetch_or(bit, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Vec<u8> {
        let mut sections: [Vec<u8>; SECTIONS] = Default::default();
        sections[Section::Tasks as usize] = (0..10_000u32).flat_map(u32::to_le_bytes).collect();
        sections[Section::Meta as usize] = b"meta".to_vec();
        encode_body(&sections)
    }

    #[test]
    fn sections_read_back_and_each_block_is_checked_on_first_read() {
        let bytes = body();
        let checked = CheckedBody::new(bytes.as_slice()).unwrap();
        assert_eq!(checked.all(Section::Meta).unwrap(), b"meta");
        assert_eq!(checked.read(Section::Tasks, 4..8).unwrap(), 1u32.to_le_bytes());
        assert!(checked.read(Section::Tasks, 0..40_001).is_err(), "past the section's end");
        assert!(checked.read(Section::Tasks, usize::MAX - 1..usize::MAX).is_err(), "far past it");
        checked.check_all().unwrap();
    }

    #[test]
    fn a_flipped_byte_fails_the_block_that_holds_it_and_names_its_offset() {
        let mut bytes = body();
        let dir = directory_len_of(&bytes).unwrap();
        let at = dir + 4 + 3 * BLOCK_SIZE as usize + 17;
        bytes[at] ^= 1;
        let checked = CheckedBody::new(bytes.as_slice()).unwrap();
        assert!(checked.read(Section::Tasks, 0..4096).is_ok(), "blocks before it read fine");
        let damage = checked.read(Section::Tasks, 3 * 4096..3 * 4096 + 8).unwrap_err();
        assert_eq!(damage.offset, (dir + 3 * BLOCK_SIZE as usize) as u64);
        assert!(damage.reason.contains("block 3 checksum mismatch"), "{}", damage.reason);
    }

    #[test]
    fn a_directory_that_does_not_fit_is_refused() {
        let bytes = body();
        assert!(CheckedBody::new(&bytes[..100]).is_err());
        assert!(CheckedBody::new(&bytes[..bytes.len() - 4096]).is_err(), "a block short of its table");
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
