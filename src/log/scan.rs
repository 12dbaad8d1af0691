//! Walking the frames of one segment: shared by recovery, the appender's repair of a dead
//! writer's bytes, and readers. Pure over byte slices.

use crate::error::FrameError;
use crate::format::{self, decode_frame, Decoded, Frame, FRAME_ALIGN, FRAME_HEADER_LEN, FRAME_MARKER};
use crate::types::{Lsn, Timestamp};

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Zero bytes (or too few zero bytes for a header) at this offset: the written end.
    End {
        /// Offset of the zero header.
        offset: u64,
    },
    /// Bytes that are not the expected frame.
    Invalid {
        /// Offset of the invalid frame.
        offset: u64,
        /// What is wrong.
        reason: FrameError,
    },
}

/// Result of a scan: the last position that ends a complete batch, and why the scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Offset just past the last frame that completes a batch.
    pub committed_offset: u64,
    /// LSN of the next record after the committed frames.
    pub committed_lsn: Lsn,
    /// Time of the last committed frame (the start time if none).
    pub last_time: Timestamp,
    /// Offset of the last committed frame (the start's `last_frame` if none).
    pub last_frame: u64,
    /// LSN the frame at the stop position was expected to carry.
    pub stop_lsn: Lsn,
    /// Why the scan stopped.
    pub stop: Stop,
}

#[cfg(test)]
impl Scanned {
    /// Offset where the scan stopped (past any frames of an incomplete batch).
    pub fn stop_offset(&self) -> u64 {
        match self.stop {
            Stop::End { offset } | Stop::Invalid { offset, .. } => offset,
        }
    }
}

/// Walks frames of `segment` (the whole file image) from `offset`, expecting `lsn` first, until
/// the end or an invalid frame; calls `on_frame` for each valid frame and its offset.
pub fn scan(
    segment: &[u8],
    start: ScanStart,
    max_payload: u32,
    mut on_frame: impl FnMut(&Frame<'_>, u64),
) -> Scanned {
    let mut at = start.offset;
    let mut next = start.lsn;
    let mut committed = start;
    loop {
        let rest = segment.get(format::offset_index(at)..).unwrap_or_default();
        match decode_frame(rest, next, max_payload) {
            Decoded::Frame(frame) => {
                on_frame(&frame, at);
                let frame_at = at;
                at += frame.len as u64;
                next = next.next();
                if !frame.batch_continues() {
                    committed =
                        ScanStart { offset: at, lsn: next, time: frame.timestamp, last_frame: frame_at };
                }
            }
            Decoded::End => return scanned(committed, next, Stop::End { offset: at }),
            Decoded::Invalid(reason) => {
                return scanned(committed, next, Stop::Invalid { offset: at, reason })
            }
        }
    }
}

/// Where a scan starts, and what it reports if it finds no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanStart {
    /// Offset of the first frame to read.
    pub offset: u64,
    /// LSN it must carry.
    pub lsn: Lsn,
    /// Time of the record before it.
    pub time: Timestamp,
    /// Offset of the frame before it in this segment (0 if none).
    pub last_frame: u64,
}

impl ScanStart {
    /// The start of a segment.
    pub fn segment(base: Lsn) -> ScanStart {
        ScanStart { offset: format::SEGMENT_HEADER_LEN as u64, lsn: base, time: Timestamp(0), last_frame: 0 }
    }
}

fn scanned(committed: ScanStart, stop_lsn: Lsn, stop: Stop) -> Scanned {
    Scanned {
        committed_offset: committed.offset,
        committed_lsn: committed.lsn,
        last_time: committed.time,
        last_frame: committed.last_frame,
        stop_lsn,
        stop,
    }
}

/// Whether a valid frame carrying `lsn` starts at an aligned offset in `(after, after + window]`.
///
/// Used to tell corruption in the middle of the newest segment (valid records follow the bad
/// one) from a torn tail (nothing valid follows).
pub fn valid_frame_follows(segment: &[u8], after: u64, lsn: Lsn, max_payload: u32) -> bool {
    let window = (FRAME_HEADER_LEN + max_payload as usize + FRAME_ALIGN) as u64;
    let end = (after + window).min(segment.len() as u64);
    let mut at = after + FRAME_ALIGN as u64;
    while at + FRAME_HEADER_LEN as u64 <= end {
        if let Some(rest) = segment.get(format::offset_index(at)..) {
            // Cheap filters before the checksum: marker byte and LSN field.
            let plausible = rest.get(27) == Some(&FRAME_MARKER) && format::u64_at(rest, 8) == lsn.0;
            if plausible && matches!(decode_frame(rest, lsn, max_payload), Decoded::Frame(_)) {
                return true;
            }
        }
        at += FRAME_ALIGN as u64;
    }
    false
}

/// Calls `on_frame` for every intact frame among `segment[from..to]`, walking from `from` with
/// `lsn` expected first and, past bytes that are not the expected frame, resuming at the next
/// aligned offset where an intact frame with a later LSN starts.
///
/// After a power cut, records written after the last sync can reach the disk behind a hole: this
/// finds them (to report which LSNs a cut removes, and the durable watermark their frames carry).
pub fn intact_frames(
    segment: &[u8],
    from: u64,
    to: u64,
    lsn: Lsn,
    max_payload: u32,
    mut on_frame: impl FnMut(&Frame<'_>),
) {
    let (mut at, mut next) = (from, lsn);
    'walk: while at < to {
        if let Some(Decoded::Frame(f)) =
            segment.get(format::offset_index(at)..).map(|b| decode_frame(b, next, max_payload))
        {
            on_frame(&f);
            at += f.len as u64;
            next = next.next();
            continue;
        }
        let mut probe = at + FRAME_ALIGN as u64;
        while probe + FRAME_HEADER_LEN as u64 <= to {
            let rest = segment.get(format::offset_index(probe)..).unwrap_or_default();
            let found = Lsn(format::u64_at(rest, 8));
            if rest.get(27) == Some(&FRAME_MARKER)
                && found > next
                && matches!(decode_frame(rest, found, max_payload), Decoded::Frame(_))
            {
                (at, next) = (probe, found);
                continue 'walk;
            }
            probe += FRAME_ALIGN as u64;
        }
        break;
    }
}

/// LSN of the last intact record among `segment[from..to]` (see [`intact_frames`]), if any.
pub fn last_intact(segment: &[u8], from: u64, to: u64, lsn: Lsn, max_payload: u32) -> Option<Lsn> {
    let mut last = None;
    intact_frames(segment, from, to, lsn, max_payload, |f| last = Some(f.lsn));
    last
}

/// The highest durable watermark recorded by any intact frame of the segment `segment` whose
/// first record is `base` (frames behind holes and damage included), if any records one.
pub fn recorded_durable(segment: &[u8], base: Lsn, max_payload: u32) -> Option<Lsn> {
    let to = nonzero_end(segment, format::SEGMENT_HEADER_LEN as u64);
    let mut highest = None;
    intact_frames(segment, format::SEGMENT_HEADER_LEN as u64, to, base, max_payload, |f| {
        highest = highest.max(f.durable_before);
    });
    highest
}

/// Offset one past the last non-zero byte of `bytes[from..]`, or `from` if all are zero.
pub fn nonzero_end(bytes: &[u8], from: u64) -> u64 {
    let tail = bytes.get(format::offset_index(from)..).unwrap_or_default();
    tail.iter().rposition(|&b| b != 0).map_or(from, |i| from + i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{finalize_frame, push_unfinished_frame, FLAG_BATCH_CONTINUES};
    use crate::types::RecordKind;

    fn log_image(batches: &[&[&[u8]]]) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        let mut lsn = 1;
        for batch in batches {
            for (i, p) in batch.iter().enumerate() {
                let start = out.len();
                push_unfinished_frame(&mut out, RecordKind::new(1).unwrap(), p);
                let flags = if i + 1 < batch.len() { FLAG_BATCH_CONTINUES } else { 0 };
                finalize_frame(&mut out[start..], Lsn(lsn), Timestamp(lsn.cast_signed()), flags);
                lsn += 1;
            }
        }
        out.resize(out.len() + 256, 0);
        out
    }

    #[test]
    fn scan_stops_at_the_zero_end() {
        let img = log_image(&[&[b"a", b"b"], &[b"c"]]);
        let mut seen = Vec::new();
        let s = scan(&img, ScanStart::segment(Lsn(1)), 100, |f, _| seen.push(f.lsn.0));
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(s.committed_lsn, Lsn(4));
        assert_eq!(s.stop, Stop::End { offset: s.committed_offset });
        assert_eq!(s.last_time, Timestamp(3));
    }

    #[test]
    fn an_incomplete_batch_is_not_committed() {
        let mut img = log_image(&[&[b"a"], &[b"b", b"c"]]);
        // Cut the last frame of the second batch.
        let full = scan(&img, ScanStart::segment(Lsn(1)), 100, |_, _| {});
        let last_frame_start = usize::try_from(full.committed_offset).unwrap() - 40;
        img[last_frame_start..].fill(0);
        let s = scan(&img, ScanStart::segment(Lsn(1)), 100, |_, _| {});
        assert_eq!(s.committed_lsn, Lsn(2), "batch b,c is incomplete");
        assert_eq!(s.committed_offset, 64 + 40);
        assert_eq!(s.stop_offset(), last_frame_start as u64);
    }

    #[test]
    fn a_valid_successor_is_found_after_a_damaged_frame() {
        let mut img = log_image(&[&[b"first"], &[b"second"], &[b"third"]]);
        assert!(valid_frame_follows(&img, 64, Lsn(2), 100));
        assert!(!valid_frame_follows(&img, 64, Lsn(7), 100));
        img[64 + 40 + 33] ^= 0x10; // damage frame 2's payload
        let s = scan(&img, ScanStart::segment(Lsn(1)), 100, |_, _| {});
        let Stop::Invalid { offset, .. } = s.stop else { panic!("{s:?}") };
        assert!(valid_frame_follows(&img, offset, Lsn(3), 100));
        assert_eq!(nonzero_end(&img, offset), 64 + 2 * 40 + 32 + 5, "ends with the payload of frame 3");
        let end = img.len() as u64;
        assert_eq!(last_intact(&img, offset, end, Lsn(2), 100), Some(Lsn(3)), "frame 3 behind the damage");
        assert_eq!(last_intact(&img, 64, end, Lsn(1), 100), Some(Lsn(3)));
        assert_eq!(last_intact(&img, offset, offset + 8, Lsn(2), 100), None);
    }
}
