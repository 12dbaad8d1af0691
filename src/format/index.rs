//! Sparse index files (log-format.md, "Index files"): where frames of a sealed segment start.

use super::segment::SEGMENT_HEADER_LEN;
use super::{field, u32_of, u64_of, Damage, Field};
use crate::types::Lsn;

/// `b"MAOSIDX\0"`.
pub const INDEX_MAGIC: [u8; 8] = *b"MAOSIDX\0";
/// Version of the index file layout.
pub const INDEX_VERSION: u32 = 1;
/// Size of the header; the entries follow it.
pub const INDEX_HEADER_LEN: usize = 40;
/// Size of one entry: `u64` LSN, `u64` offset.
pub const INDEX_ENTRY_LEN: usize = 16;

const F_MAGIC: Field = Field::first("index magic", 8);
const F_VERSION: Field = F_MAGIC.then("index version", 4);
const F_COUNT: Field = F_VERSION.then("entry count", 4);
const F_BASE: Field = F_COUNT.then("segment base LSN", 8);
const F_END_LSN: Field = F_BASE.then("end LSN", 8);
const F_END_OFFSET: Field = F_END_LSN.then("end offset", 8);
const _: () = assert!(F_END_OFFSET.end() == INDEX_HEADER_LEN);
const F_ENTRY_LSN: Field = Field::first("entry LSN", 8);
const F_ENTRY_OFFSET: Field = F_ENTRY_LSN.then("entry offset", 8);
const _: () = assert!(F_ENTRY_OFFSET.end() == INDEX_ENTRY_LEN);

/// The contents of an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Base LSN of the segment it indexes.
    pub base: Lsn,
    /// The LSN and offset after the segment's last frame.
    pub end: (Lsn, u64),
    /// (LSN, offset) of indexed frames, in order, the first at the segment's first frame.
    pub entries: Vec<(Lsn, u64)>,
}

impl IndexFile {
    /// The file bytes: header, entries, CRC-32 of all before it.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER_LEN + self.entries.len() * INDEX_ENTRY_LEN + 4);
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&u32::try_from(self.entries.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&self.base.get().to_le_bytes());
        out.extend_from_slice(&self.end.0.get().to_le_bytes());
        out.extend_from_slice(&self.end.1.to_le_bytes());
        for (lsn, offset) in &self.entries {
            out.extend_from_slice(&lsn.get().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks the index file of the segment starting at `base`: layout, checksum,
    /// and entries that start at the first frame, increase and lie before the end.
    ///
    /// # Errors
    /// What is wrong, as text (a short file names the field it lacks).
    pub fn decode(bytes: &[u8], base: Lsn) -> Result<IndexFile, String> {
        IndexFile::check(bytes, base).map_err(|d| d.reason)
    }

    /// Decodes and checks an index file, as [`IndexFile::decode`], saying where it is wrong:
    /// the magic (0), the version (8), a length that does not fit the entry count (where the
    /// file ends or the extra bytes start), the CRC (0: the bytes it covers start there), the
    /// base LSN (16), the first entry that breaks the order or lies past the end (its offset).
    ///
    /// # Errors
    /// What is wrong and at which byte offset.
    pub fn check(bytes: &[u8], base: Lsn) -> Result<IndexFile, Damage> {
        if field(bytes, F_MAGIC)? != INDEX_MAGIC.as_slice() {
            return Err(Damage::field(F_MAGIC, "bad magic"));
        }
        let version = u32_of(bytes, F_VERSION)?;
        if version != INDEX_VERSION {
            return Err(Damage::field(F_VERSION, format!("unsupported version {version}")));
        }
        let count = u32_of(bytes, F_COUNT)? as usize;
        let body_len = count
            .checked_mul(INDEX_ENTRY_LEN)
            .and_then(|n| n.checked_add(INDEX_HEADER_LEN))
            .ok_or_else(|| Damage::field(F_COUNT, format!("{count} entries cannot be")))?;
        if bytes.len() != body_len + 4 {
            return Err(Damage::at(
                bytes.len().min(body_len + 4),
                format!("{} bytes, {} expected for {count} entries", bytes.len(), body_len + 4),
            ));
        }
        let crc_field = Field { name: "index CRC", at: body_len, len: 4 };
        if u32_of(bytes, crc_field)? != crc32fast::hash(bytes.get(..body_len).unwrap_or_default()) {
            return Err(Damage::at(0, "checksum mismatch"));
        }
        if u64_of(bytes, F_BASE)? != base.get() {
            return Err(Damage::field(
                F_BASE,
                format!("an index of another segment (this one starts at LSN {base})"),
            ));
        }
        let end = (Lsn(u64_of(bytes, F_END_LSN)?), u64_of(bytes, F_END_OFFSET)?);
        let mut entries: Vec<(Lsn, u64)> = Vec::with_capacity(count);
        for i in 0..count {
            let at = INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN;
            let lsn = Lsn(u64_of(bytes, Field { at: at + F_ENTRY_LSN.at, ..F_ENTRY_LSN })?);
            let offset = u64_of(bytes, Field { at: at + F_ENTRY_OFFSET.at, ..F_ENTRY_OFFSET })?;
            let follows = entries.last().is_none_or(|&(l, o)| l < lsn && o < offset);
            let first_right = i > 0 || (lsn, offset) == (base, SEGMENT_HEADER_LEN as u64);
            if !(follows && first_right && lsn < end.0 && offset < end.1) {
                return Err(Damage::at(
                    at,
                    "entries out of order, not starting at the first frame, or past the end",
                ));
            }
            entries.push((lsn, offset));
        }
        if entries.is_empty() {
            return Err(Damage::field(
                F_COUNT,
                "entries out of order, not starting at the first frame, or past the end",
            ));
        }
        Ok(IndexFile { base, end, entries })
    }
}
