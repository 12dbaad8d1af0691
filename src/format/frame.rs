//! Record frames (log-format.md, "Record frame"): encoding, and decoding that never panics,
//! never allocates and checks every field before it trusts it.

use super::{nonzero, put, u32_at, u64_at, Field};
use crate::error::FrameError;
use crate::types::{Lsn, RecordKind, Timestamp};

/// Size of a frame header; the payload follows it.
pub const FRAME_HEADER_LEN: usize = 32;
/// Frames start and end on multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// Byte 27 of every frame.
pub const FRAME_MARKER: u8 = 0xA7;
/// Flag: the next record belongs to the same atomic batch.
pub const FLAG_BATCH_CONTINUES: u8 = 0x01;

// The frame header, field by field.
const F_LEN: Field = Field::first("payload length", 4);
const F_CRC: Field = F_LEN.then("frame CRC", 4);
const F_LSN: Field = F_CRC.then("LSN", 8);
const F_TIME: Field = F_LSN.then("time", 8);
const F_KIND: Field = F_TIME.then("kind", 2);
const F_FLAGS: Field = F_KIND.then("flags", 1);
const F_MARKER: Field = F_FLAGS.then("marker", 1);
/// The durable distance: `u32`, 0 or `n`: when the frame was written, every record below
/// `LSN + 1 - n` was durable (segment version 2; log-format.md, "Record frame").
const F_DURABLE: Field = F_MARKER.then("durable distance", 4);
const _: () = assert!(F_DURABLE.end() == FRAME_HEADER_LEN);

const FR_LEN: usize = F_LEN.at;
const FR_CRC: usize = F_CRC.at;
const FR_LSN: usize = F_LSN.at;
const FR_TIME: usize = F_TIME.at;
const FR_KIND: usize = F_KIND.at;
const FR_FLAGS: usize = F_FLAGS.at;
const FR_MARKER: usize = F_MARKER.at;
const FR_DURABLE: usize = F_DURABLE.at;

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
/// them once the append lock has assigned the LSN. The payload is at most the maximum record size
/// (a `u32`): callers check it first.
#[allow(clippy::cast_possible_truncation)] // the payload length fits the `u32` length field (above)
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
        timestamp: Timestamp(u64_at(frame, FR_TIME).cast_signed()),
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
}
