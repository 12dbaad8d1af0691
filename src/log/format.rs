//! Pure encoding and decoding of the on-disk structures, section by section as in log-format.md.
//! No file handles here: everything works on byte slices, so the fuzz targets call it directly.

use crate::error::FrameError;
use crate::types::{Lsn, RecordKind, Timestamp};

// ---- log-format.md, "Segment header" -------------------------------------------------------

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
const HDR_VERSION: usize = 8;
const HDR_FLAGS: usize = 12;
const HDR_BASE_LSN: usize = 16;
const HDR_CREATED: usize = 24;
const HDR_CAPACITY: usize = 32;
const HDR_RESERVED: usize = 40;
/// Offset of the durable mark in a version-2 header: `u64` LSN, `u32` CRC of those 8 bytes.
pub const HDR_DURABLE_MARK: usize = 40;
/// Length of the durable mark.
pub const DURABLE_MARK_LEN: usize = 12;
const HDR_RESERVED_V2: usize = HDR_DURABLE_MARK + DURABLE_MARK_LEN;
const HDR_CRC: usize = 60;

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
        put(&mut b, 0, &SEGMENT_MAGIC);
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
        if b.get(..8) != Some(SEGMENT_MAGIC.as_slice()) {
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
            created: Timestamp(u64_at(b, HDR_CREATED) as i64),
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
        let lsn = u64_at(mark, 0);
        if lsn != 0 && u32_at(mark, 8) == crc32fast::hash(mark.get(..8).unwrap_or_default()) {
            DurableMark::Below(Lsn(lsn))
        } else {
            DurableMark::Damaged
        }
    }

    /// The 12 bytes of a mark saying every record below `lsn` (not 0) is durable.
    #[must_use]
    pub fn encode(lsn: Lsn) -> [u8; DURABLE_MARK_LEN] {
        let mut b = [0u8; DURABLE_MARK_LEN];
        put(&mut b, 0, &lsn.0.to_le_bytes());
        let crc = crc32fast::hash(&lsn.0.to_le_bytes());
        put(&mut b, 8, &crc.to_le_bytes());
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

// ---- log-format.md, "Record frame" ---------------------------------------------------------

/// Size of a frame header; the payload follows it.
pub const FRAME_HEADER_LEN: usize = 32;
/// Frames start and end on multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// Byte 27 of every frame.
pub const FRAME_MARKER: u8 = 0xA7;
/// Flag: the next record belongs to the same atomic batch.
pub const FLAG_BATCH_CONTINUES: u8 = 0x01;
const FR_LEN: usize = 0;
const FR_CRC: usize = 4;
const FR_LSN: usize = 8;
const FR_TIME: usize = 16;
const FR_KIND: usize = 24;
const FR_FLAGS: usize = 26;
const FR_MARKER: usize = 27;
/// Offset of the durable distance: `u32`, 0 or `n`: when the frame was written, every record
/// below `LSN + 1 - n` was durable (segment version 2; log-format.md, "Record frame").
const FR_DURABLE: usize = 28;

/// Total bytes a frame with `payload_len` payload bytes occupies (header, payload, padding).
#[must_use]
pub fn frame_len(payload_len: usize) -> usize {
    (FRAME_HEADER_LEN + payload_len).next_multiple_of(FRAME_ALIGN)
}

/// One decoded frame, borrowing its payload from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Record LSN.
    pub lsn: Lsn,
    /// Record time.
    pub timestamp: Timestamp,
    /// Record kind.
    pub kind: RecordKind,
    /// Flag bits ([`FLAG_BATCH_CONTINUES`]).
    pub flags: u8,
    /// The payload.
    pub payload: &'a [u8],
    /// Bytes the frame occupies, padding included.
    pub len: usize,
    /// From the frame's durable distance: when it was written, every record below this LSN was
    /// on stable storage. `None` when the frame does not say (distance 0).
    pub durable_before: Option<Lsn>,
}

impl Frame<'_> {
    /// Whether the next record belongs to the same atomic batch.
    #[must_use]
    pub fn batch_continues(&self) -> bool {
        self.flags & FLAG_BATCH_CONTINUES != 0
    }
}

/// What lies at a position in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid frame.
    Frame(Frame<'a>),
    /// The end of the written log: a zero header, or fewer zero bytes than a header.
    End,
    /// Bytes that are not a valid frame.
    Invalid(FrameError),
}

/// Appends a frame whose LSN, time, flags and checksum are still unset; [`finalize_frame`] sets
/// them once the append lock has assigned the LSN.
pub fn push_unfinished_frame(out: &mut Vec<u8>, kind: RecordKind, payload: &[u8]) {
    let start = out.len();
    let total = frame_len(payload.len());
    out.resize(start + FRAME_HEADER_LEN, 0);
    out.extend_from_slice(payload);
    out.resize(start + total, 0);
    let header = out.get_mut(start..).unwrap_or_default();
    put(header, FR_LEN, &(payload.len() as u32).to_le_bytes());
    put(header, FR_KIND, &kind.get().to_le_bytes());
    put(header, FR_MARKER, &[FRAME_MARKER]);
}

/// Sets LSN, time and flags of an unfinished frame (which starts at `frame[0]` and is exactly
/// one frame long) and computes its checksum.
pub fn finalize_frame(frame: &mut [u8], lsn: Lsn, timestamp: Timestamp, flags: u8) {
    finalize_frame_durable(frame, lsn, timestamp, flags, None);
}

/// As [`finalize_frame`], also recording that every record below `durable` (at most `lsn`) was
/// on stable storage when the frame was written: the durable distance `lsn + 1 - durable`, or
/// nothing (0) when `durable` is `None` or the distance does not fit 32 bits.
pub fn finalize_frame_durable(
    frame: &mut [u8],
    lsn: Lsn,
    timestamp: Timestamp,
    flags: u8,
    durable: Option<Lsn>,
) {
    let distance = durable
        .filter(|d| *d <= lsn)
        .and_then(|d| (lsn.0 - d.0).checked_add(1))
        .and_then(|distance| u32::try_from(distance).ok())
        .unwrap_or(0);
    put(frame, FR_DURABLE, &distance.to_le_bytes());
    put(frame, FR_LSN, &lsn.0.to_le_bytes());
    put(frame, FR_TIME, &timestamp.0.to_le_bytes());
    put(frame, FR_FLAGS, &[flags]);
    let crc = frame_crc(frame);
    put(frame, FR_CRC, &crc.to_le_bytes());
}

/// Length in bytes of the (unfinished or finished) frame at the start of `bytes`.
#[must_use]
pub fn encoded_frame_len(bytes: &[u8]) -> usize {
    frame_len(u32_at(bytes, FR_LEN) as usize)
}

/// CRC-32 over the length field and everything after the CRC field, padding included.
fn frame_crc(frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(frame.get(FR_LEN..FR_CRC).unwrap_or_default());
    h.update(frame.get(FR_LSN..).unwrap_or_default());
    h.finalize()
}

/// Decodes the frame at the start of `buf`, which must carry `expected` as its LSN.
///
/// `buf` runs to the end of the readable segment. Never panics and never allocates: the length
/// field is checked against `max_payload` and the buffer before anything is read through it.
#[must_use]
pub fn decode_frame(buf: &[u8], expected: Lsn, max_payload: u32) -> Decoded<'_> {
    decode_frame_where(buf, LsnRule::Exactly(expected), max_payload)
}

/// Decodes the frame at the start of `buf`, whose LSN must be greater than `after`: the frames
/// of the compacted-records file, whose LSNs increase with gaps (log-format.md, "Compacted
/// records file").
#[must_use]
pub fn decode_frame_after(buf: &[u8], after: Lsn, max_payload: u32) -> Decoded<'_> {
    decode_frame_where(buf, LsnRule::Above(after), max_payload)
}

/// Which LSN a frame must carry.
#[derive(Clone, Copy)]
enum LsnRule {
    Exactly(Lsn),
    Above(Lsn),
}

fn decode_frame_where(buf: &[u8], rule: LsnRule, max_payload: u32) -> Decoded<'_> {
    let Some(header) = buf.get(..FRAME_HEADER_LEN) else {
        return if nonzero(buf) {
            Decoded::Invalid(FrameError::TruncatedHeader { available: buf.len() })
        } else {
            Decoded::End
        };
    };
    if !nonzero(header) {
        return Decoded::End;
    }
    let len = u32_at(header, FR_LEN);
    if len > max_payload {
        return Decoded::Invalid(FrameError::LengthTooLarge { len, max: max_payload });
    }
    let total = frame_len(len as usize);
    let Some(frame) = buf.get(..total) else {
        return Decoded::Invalid(FrameError::TruncatedFrame {
            frame_len: total as u64,
            available: buf.len(),
        });
    };
    let stored = u32_at(header, FR_CRC);
    let computed = frame_crc(frame);
    if stored != computed {
        return Decoded::Invalid(FrameError::Checksum { stored, computed });
    }
    check_frame_fields(frame, len, total, rule)
}

fn check_frame_fields(frame: &[u8], len: u32, total: usize, rule: LsnRule) -> Decoded<'_> {
    let marker = frame.get(FR_MARKER).copied().unwrap_or(0);
    if marker != FRAME_MARKER {
        return Decoded::Invalid(FrameError::BadMarker { found: marker });
    }
    let flags = frame.get(FR_FLAGS).copied().unwrap_or(0);
    if flags & !FLAG_BATCH_CONTINUES != 0 {
        return Decoded::Invalid(FrameError::Reserved { what: "flags" });
    }
    let end = FRAME_HEADER_LEN + len as usize;
    if frame.get(end..total).is_some_and(nonzero) {
        return Decoded::Invalid(FrameError::Reserved { what: "padding" });
    }
    let Some(kind) = RecordKind::from_raw(u16::from_le_bytes([
        frame.get(FR_KIND).copied().unwrap_or(0),
        frame.get(FR_KIND + 1).copied().unwrap_or(0),
    ])) else {
        return Decoded::Invalid(FrameError::Reserved { what: "kind 0" });
    };
    let lsn = Lsn(u64_at(frame, FR_LSN));
    match rule {
        LsnRule::Exactly(expected) if lsn != expected => {
            return Decoded::Invalid(FrameError::LsnMismatch { expected, found: lsn });
        }
        LsnRule::Above(after) if lsn <= after => {
            return Decoded::Invalid(FrameError::LsnNotIncreasing { after, found: lsn });
        }
        _ => {}
    }
    Decoded::Frame(Frame {
        lsn,
        timestamp: Timestamp(u64_at(frame, FR_TIME) as i64),
        kind,
        flags,
        payload: frame.get(FRAME_HEADER_LEN..end).unwrap_or_default(),
        len: total,
        durable_before: match u32_at(frame, FR_DURABLE) {
            0 => None,
            n => lsn.0.checked_add(1).and_then(|l| l.checked_sub(u64::from(n))).map(Lsn),
        },
    })
}

// ---- little helpers (bounds are checked; a short slice reads as zeros) ---------------------

/// Whether any byte is non-zero.
#[must_use]
pub fn nonzero(bytes: &[u8]) -> bool {
    // Word-at-a-time: this runs over whole segment tails during verification.
    let (chunks, rest) = bytes.as_chunks::<8>();
    chunks.iter().any(|c| u64::from_ne_bytes(*c) != 0) || rest.iter().any(|&b| b != 0)
}

pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = buf.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

pub(crate) fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = buf.get(at..at + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(lsn: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_unfinished_frame(&mut out, RecordKind::new(3).unwrap(), payload);
        finalize_frame(&mut out, Lsn(lsn), Timestamp(42), 0);
        out
    }

    #[test]
    fn frame_round_trip_and_alignment() {
        let f = frame(9, b"abc");
        assert_eq!(f.len(), 40);
        match decode_frame(&f, Lsn(9), 1024) {
            Decoded::Frame(d) => {
                assert_eq!(d.payload, b"abc");
                assert_eq!(d.lsn, Lsn(9));
                assert_eq!(d.timestamp, Timestamp(42));
                assert_eq!(d.len, 40);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_durable_distance_round_trips_and_never_overflows() {
        let mut f = frame(9, b"abc");
        finalize_frame_durable(&mut f, Lsn(9), Timestamp(1), 0, Some(Lsn(4)));
        assert!(
            matches!(decode_frame(&f, Lsn(9), 1024), Decoded::Frame(d) if d.durable_before == Some(Lsn(4)))
        );
        finalize_frame_durable(&mut f, Lsn(u64::MAX), Timestamp(1), 0, Some(Lsn(0)));
        assert!(
            matches!(decode_frame(&f, Lsn(u64::MAX), 1024), Decoded::Frame(d) if d.durable_before.is_none())
        );
        finalize_frame_durable(&mut f, Lsn(u64::MAX), Timestamp(1), 0, Some(Lsn(u64::MAX)));
        assert!(
            matches!(decode_frame(&f, Lsn(u64::MAX), 1024), Decoded::Frame(d) if d.durable_before.is_none())
        );
        finalize_frame_durable(&mut f, Lsn(9), Timestamp(1), 0, Some(Lsn(10)));
        assert!(matches!(decode_frame(&f, Lsn(9), 1024), Decoded::Frame(d) if d.durable_before.is_none()));
    }

    #[test]
    fn zero_bytes_are_the_end_and_anything_else_is_invalid() {
        assert_eq!(decode_frame(&[0; 100], Lsn(1), 10), Decoded::End);
        assert_eq!(decode_frame(&[0; 5], Lsn(1), 10), Decoded::End);
        assert!(matches!(
            decode_frame(&[0, 0, 1], Lsn(1), 10),
            Decoded::Invalid(FrameError::TruncatedHeader { available: 3 })
        ));
    }

    #[test]
    fn wrong_lsn_length_and_truncation_are_reported() {
        let f = frame(9, b"abcdefgh");
        assert!(matches!(decode_frame(&f, Lsn(10), 1024), Decoded::Invalid(FrameError::LsnMismatch { .. })));
        assert!(matches!(
            decode_frame(&f, Lsn(9), 4),
            Decoded::Invalid(FrameError::LengthTooLarge { len: 8, max: 4 })
        ));
        assert!(matches!(
            decode_frame(&f[..f.len() - 1], Lsn(9), 1024),
            Decoded::Invalid(FrameError::TruncatedFrame { .. })
        ));
    }

    #[test]
    fn every_single_bit_flip_of_a_frame_is_detected() {
        let f = frame(5, b"payload!x");
        for bit in 0..f.len() * 8 {
            let mut g = f.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode_frame(&g, Lsn(5), 1024), Decoded::Invalid(_)),
                "bit {bit} flip went unnoticed"
            );
        }
    }

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
