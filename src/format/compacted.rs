//! The header of the compacted-records file (log-format.md, "Compacted records file"); its body
//! is frames ([`super::frame`]) with increasing LSNs.

use super::segment::FORMAT_VERSION;
use super::{put, put_field, u32_at, u64_at, Field};
use crate::types::{Lsn, Timestamp};

/// Name of the compacted-records file in the log directory.
pub const COMPACTED_FILE: &str = "compacted.log";
/// `b"MAOSKEPT"`.
pub const COMPACTED_MAGIC: [u8; 8] = *b"MAOSKEPT";
/// Size of the file header; the first frame starts here.
pub const COMPACTED_HEADER_LEN: usize = 64;

const F_MAGIC: Field = Field::first("compacted magic", 8);
const F_VERSION: Field = F_MAGIC.then("compacted version", 4);
const F_FLAGS: Field = F_VERSION.then("compacted flags", 4);
const F_FIRST: Field = F_FLAGS.then("first LSN", 8);
const F_END: Field = F_FIRST.then("end LSN", 8);
const F_RECORDS: Field = F_END.then("records", 8);
const F_BODY_LEN: Field = F_RECORDS.then("body length", 8);
const F_CREATED: Field = F_BODY_LEN.then("creation time", 8);
const F_RESERVED: Field = F_CREATED.then("reserved", 4);
const F_CRC: Field = F_RESERVED.then("header CRC", 4);
const _: () = assert!(F_CRC.end() == COMPACTED_HEADER_LEN);

const H_VERSION: usize = F_VERSION.at;
const H_FLAGS: usize = F_FLAGS.at;
const H_FIRST: usize = F_FIRST.at;
const H_END: usize = F_END.at;
const H_RECORDS: usize = F_RECORDS.at;
const H_BODY_LEN: usize = F_BODY_LEN.at;
const H_CREATED: usize = F_CREATED.at;
const H_RESERVED: usize = F_RESERVED.at;
const H_CRC: usize = F_CRC.at;

/// The decoded header of the compacted-records file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactedHeader {
    /// First LSN of the compacted range (where the log started before its first compaction).
    pub first: Lsn,
    /// End of the compacted range (exclusive): records from here on are in segments.
    pub end: Lsn,
    /// Number of records the file holds.
    pub records: u64,
    /// Bytes of frames after the header; the file is exactly header plus body.
    pub body_len: u64,
    /// When the file was written.
    pub created: Timestamp,
}

impl CompactedHeader {
    /// Encodes the header into its 64 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; COMPACTED_HEADER_LEN] {
        let mut b = [0u8; COMPACTED_HEADER_LEN];
        put_field(&mut b, F_MAGIC, &COMPACTED_MAGIC);
        put(&mut b, H_VERSION, &FORMAT_VERSION.to_le_bytes());
        put(&mut b, H_FIRST, &self.first.0.to_le_bytes());
        put(&mut b, H_END, &self.end.0.to_le_bytes());
        put(&mut b, H_RECORDS, &self.records.to_le_bytes());
        put(&mut b, H_BODY_LEN, &self.body_len.to_le_bytes());
        put(&mut b, H_CREATED, &self.created.0.to_le_bytes());
        let crc = crc32fast::hash(b.get(..H_CRC).unwrap_or_default());
        put(&mut b, H_CRC, &crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header.
    pub fn decode(bytes: &[u8]) -> std::result::Result<CompactedHeader, String> {
        let b =
            bytes.get(..COMPACTED_HEADER_LEN).ok_or_else(|| format!("only {} header bytes", bytes.len()))?;
        if b.get(F_MAGIC.range()) != Some(COMPACTED_MAGIC.as_slice()) {
            return Err("bad magic (not a compacted-records file)".into());
        }
        let (stored, computed) = (u32_at(b, H_CRC), crc32fast::hash(b.get(..H_CRC).unwrap_or_default()));
        if stored != computed {
            return Err(format!(
                "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ));
        }
        let version = u32_at(b, H_VERSION);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported format version {version}"));
        }
        if u32_at(b, H_FLAGS) != 0 || u32_at(b, H_RESERVED) != 0 {
            return Err("flags or reserved bytes are set".into());
        }
        let header = CompactedHeader {
            first: Lsn(u64_at(b, H_FIRST)),
            end: Lsn(u64_at(b, H_END)),
            records: u64_at(b, H_RECORDS),
            body_len: u64_at(b, H_BODY_LEN),
            created: Timestamp(u64_at(b, H_CREATED).cast_signed()),
        };
        if header.first.0 == 0 || header.end < header.first {
            return Err(format!("impossible range {} to {}", header.first, header.end));
        }
        Ok(header)
    }
}
