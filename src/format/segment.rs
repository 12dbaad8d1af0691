//! The segment file: its header, the durable mark in it, and segment file names (log-format.md,
//! "Segment files", "Segment header", "Durable mark").

use super::frame::FRAME_HEADER_LEN;
use super::{nonzero, put, put_field, u32_at, u64_at, Field};
use crate::types::{Lsn, Timestamp};

/// `b"MAOSSEG\0"`.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MAOSSEG\0";
/// Version of the lock file and compacted-records file layouts, and of the first segment
/// header layout.
pub const FORMAT_VERSION: u32 = 1;
/// The segment header version this build writes: 2 adds the durable mark (bytes 40..52). Version
/// 1 headers are still read.
pub const SEGMENT_VERSION: u32 = 2;
/// Largest segment a header may announce (and the largest `segment_size` option): 1 GiB.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 30;
/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;

// The header, field by field (version 2; in version 1 the durable mark and the reserved bytes
// after it are one reserved field).
const F_MAGIC: Field = Field::first("segment magic", 8);
const F_VERSION: Field = F_MAGIC.then("segment version", 4);
const F_FLAGS: Field = F_VERSION.then("segment flags", 4);
const F_BASE_LSN: Field = F_FLAGS.then("base LSN", 8);
const F_CREATED: Field = F_BASE_LSN.then("creation time", 8);
const F_CAPACITY: Field = F_CREATED.then("capacity", 8);
const F_DURABLE_MARK: Field = F_CAPACITY.then("durable mark", 12);
const F_RESERVED_V2: Field = F_DURABLE_MARK.then("reserved", 8);
const F_CRC: Field = F_RESERVED_V2.then("header CRC", 4);
const _: () = assert!(F_CRC.end() == SEGMENT_HEADER_LEN);
// The durable mark: `u64` LSN, `u32` CRC of those 8 bytes.
const F_MARK_LSN: Field = Field::first("durable mark LSN", 8);
const F_MARK_CRC: Field = F_MARK_LSN.then("durable mark CRC", 4);
const _: () = assert!(F_MARK_CRC.end() == DURABLE_MARK_LEN);

const HDR_VERSION: usize = F_VERSION.at;
const HDR_FLAGS: usize = F_FLAGS.at;
const HDR_BASE_LSN: usize = F_BASE_LSN.at;
const HDR_CREATED: usize = F_CREATED.at;
const HDR_CAPACITY: usize = F_CAPACITY.at;
/// Where the reserved bytes of a version-1 header start.
const HDR_RESERVED: usize = F_DURABLE_MARK.at;
/// Offset of the durable mark in a version-2 header.
pub const HDR_DURABLE_MARK: usize = F_DURABLE_MARK.at;
/// Length of the durable mark.
pub const DURABLE_MARK_LEN: usize = 12;
const HDR_RESERVED_V2: usize = F_RESERVED_V2.at;
const HDR_CRC: usize = F_CRC.at;

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// LSN of the first record in the segment (also the file name).
    pub base_lsn: Lsn,
    /// When the segment was created.
    pub created: Timestamp,
    /// Preallocated file length in bytes.
    pub capacity: u64,
}

/// Why a segment header is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes.
    Short(usize),
    /// Wrong magic bytes.
    Magic,
    /// Header checksum mismatch.
    Checksum {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// Another format version.
    Version(u32),
    /// Flags or reserved bytes are not zero, or the capacity is impossible.
    Invalid(&'static str),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short(n) => write!(f, "only {n} of {SEGMENT_HEADER_LEN} header bytes"),
            HeaderError::Magic => write!(f, "bad magic (not a maos-coord segment)"),
            HeaderError::Checksum { stored, computed } => {
                write!(f, "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            HeaderError::Version(v) => write!(f, "unsupported format version {v}"),
            HeaderError::Invalid(what) => write!(f, "invalid header: {what}"),
        }
    }
}

impl SegmentHeader {
    /// Encodes the header into its 64 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        put_field(&mut b, F_MAGIC, &SEGMENT_MAGIC);
        put(&mut b, HDR_VERSION, &SEGMENT_VERSION.to_le_bytes());
        put(&mut b, HDR_BASE_LSN, &self.base_lsn.0.to_le_bytes());
        put(&mut b, HDR_CREATED, &self.created.0.to_le_bytes());
        put(&mut b, HDR_CAPACITY, &self.capacity.to_le_bytes());
        let crc = header_crc(&b, SEGMENT_VERSION);
        put(&mut b, HDR_CRC, &crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        let b = bytes.get(..SEGMENT_HEADER_LEN).ok_or(HeaderError::Short(bytes.len()))?;
        if b.get(F_MAGIC.range()) != Some(SEGMENT_MAGIC.as_slice()) {
            return Err(HeaderError::Magic);
        }
        let version = u32_at(b, HDR_VERSION);
        let stored = u32_at(b, HDR_CRC);
        let computed = header_crc(b, version);
        if stored != computed {
            return Err(HeaderError::Checksum { stored, computed });
        }
        let reserved_from = match version {
            FORMAT_VERSION => HDR_RESERVED,
            SEGMENT_VERSION => HDR_RESERVED_V2,
            other => return Err(HeaderError::Version(other)),
        };
        if u32_at(b, HDR_FLAGS) != 0 || b.get(reserved_from..HDR_CRC).is_some_and(nonzero) {
            return Err(HeaderError::Invalid("flags or reserved bytes are set"));
        }
        let header = SegmentHeader {
            base_lsn: Lsn(u64_at(b, HDR_BASE_LSN)),
            created: Timestamp(u64_at(b, HDR_CREATED).cast_signed()),
            capacity: u64_at(b, HDR_CAPACITY),
        };
        if header.base_lsn.0 == 0 {
            return Err(HeaderError::Invalid("base LSN 0"));
        }
        if header.capacity < (SEGMENT_HEADER_LEN + FRAME_HEADER_LEN) as u64 {
            return Err(HeaderError::Invalid("capacity smaller than one frame"));
        }
        if header.capacity > MAX_SEGMENT_SIZE {
            return Err(HeaderError::Invalid("capacity larger than 1 GiB"));
        }
        Ok(header)
    }
}

/// The header CRC: of bytes 0..60 in version 1; in version 2 of bytes 0..40 followed by 52..60,
/// leaving out the durable mark, which is rewritten in place and carries its own CRC.
fn header_crc(b: &[u8], version: u32) -> u32 {
    if version == FORMAT_VERSION {
        return crc32fast::hash(b.get(..HDR_CRC).unwrap_or_default());
    }
    let mut h = crc32fast::Hasher::new();
    h.update(b.get(..HDR_DURABLE_MARK).unwrap_or_default());
    h.update(b.get(HDR_RESERVED_V2..HDR_CRC).unwrap_or_default());
    h.finalize()
}

/// The durable mark of a segment header (log-format.md, "Durable mark"): a lower bound of the
/// durable watermark, kept with the data it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurableMark {
    /// A version-1 header: it has no mark, so the watermark within the segment is unknown.
    Unsupported,
    /// A version-2 header whose mark was never written: nothing of the segment was synced by a
    /// sync that recorded its mark.
    Unset,
    /// Every record of the segment below this LSN was on stable storage before the mark was
    /// written.
    Below(Lsn),
    /// The mark's CRC does not match: damaged.
    Damaged,
}

impl DurableMark {
    /// Reads the mark of a header (at least [`SEGMENT_HEADER_LEN`] bytes; the header itself is
    /// checked by [`SegmentHeader::decode`]).
    #[must_use]
    pub fn read(header: &[u8]) -> DurableMark {
        if u32_at(header, HDR_VERSION) != SEGMENT_VERSION {
            return DurableMark::Unsupported;
        }
        let Some(mark) = header.get(HDR_DURABLE_MARK..HDR_DURABLE_MARK + DURABLE_MARK_LEN) else {
            return DurableMark::Damaged;
        };
        if !nonzero(mark) {
            return DurableMark::Unset;
        }
        let lsn = u64_at(mark, F_MARK_LSN.at);
        if lsn != 0
            && u32_at(mark, F_MARK_CRC.at)
                == crc32fast::hash(mark.get(F_MARK_LSN.range()).unwrap_or_default())
        {
            DurableMark::Below(Lsn(lsn))
        } else {
            DurableMark::Damaged
        }
    }

    /// The 12 bytes of a mark saying every record below `lsn` (not 0) is durable.
    #[must_use]
    pub fn encode(lsn: Lsn) -> [u8; DURABLE_MARK_LEN] {
        let mut b = [0u8; DURABLE_MARK_LEN];
        put_field(&mut b, F_MARK_LSN, &lsn.0.to_le_bytes());
        let crc = crc32fast::hash(&lsn.0.to_le_bytes());
        put_field(&mut b, F_MARK_CRC, &crc.to_le_bytes());
        b
    }
}

/// The file name of the segment whose first record has `base` (20 zero-padded decimal digits).
#[must_use]
pub fn segment_file_name(base: Lsn) -> String {
    format!("{:020}.seg", base.0)
}

/// Parses a segment file name back into its base LSN.
#[must_use]
pub fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n > 0).map(Lsn)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn header_round_trip_and_bit_flips() {
        let h = SegmentHeader { base_lsn: Lsn(77), created: Timestamp(5), capacity: 1 << 20 };
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(DurableMark::read(&b), DurableMark::Unset);
        b[HDR_DURABLE_MARK..HDR_DURABLE_MARK + DURABLE_MARK_LEN]
            .copy_from_slice(&DurableMark::encode(Lsn(90)));
        assert_eq!(SegmentHeader::decode(&b), Ok(h), "the mark is outside the header CRC");
        assert_eq!(DurableMark::read(&b), DurableMark::Below(Lsn(90)));
        for bit in 0..b.len() * 8 {
            let mut g = b;
            g[bit / 8] ^= 1 << (bit % 8);
            let caught = SegmentHeader::decode(&g).is_err() || DurableMark::read(&g) == DurableMark::Damaged;
            assert!(caught, "bit {bit}");
        }
    }

    #[test]
    fn version_1_headers_are_read_and_have_no_mark() {
        let h = SegmentHeader { base_lsn: Lsn(3), created: Timestamp(5), capacity: 8192 };
        let mut b = h.encode();
        b[HDR_VERSION..HDR_VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&b[..HDR_CRC]);
        b[HDR_CRC..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(DurableMark::read(&b), DurableMark::Unsupported);
        b[45] = 1;
        assert!(SegmentHeader::decode(&b).is_err(), "version 1 covers bytes 40..60 with its CRC");
    }

    #[test]
    fn segment_names_round_trip() {
        let name = segment_file_name(Lsn(1234));
        assert_eq!(name, "00000000000000001234.seg");
        assert_eq!(parse_segment_file_name(&name), Some(Lsn(1234)));
        assert_eq!(parse_segment_file_name("1234.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000000.seg"), None);
    }
}
